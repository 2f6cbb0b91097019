"""The graph ops of a fault chain: ``quantize``, ``dequantize`` and ``straight_through``.

Each op is a plain function that the transformed graph calls by name. In eager mode it runs a
zero-copy fast path; under ``torch.compile`` or ``torch.export`` it calls the matching custom
op (``torch.ops.fxfault.*``, registered with :mod:`torch.library`), so the op stays one named
node through Dynamo, AOTAutograd and Inductor.

``quantize(x, scale, zero_point, qmin, qmax, dtype)``
    ``clamp(round(x / scale) + zero_point, qmin, qmax)`` as integers of ``dtype``.
``dequantize(codes, scale, zero_point, reference, reference_codes)``
    ``(codes - zero_point) * scale``, except that where ``codes`` equals ``reference_codes`` the
    result is ``reference`` bit for bit. A quantizer's own arithmetic can differ from
    ``code * scale`` in the last bit (LSQ's gradient-scaled step size does), so this keeps
    unfaulted weights exactly as the quantizer made them; ``ber=0`` is bit-identical.
``straight_through(clean, faulted, zero_faulted=False)``
    Forward: ``faulted``. Backward: the gradient goes to ``clean`` unchanged (the
    ``x_f.detach() + (x_q - x_q.detach())`` rule), or zeroed where the value was changed
    when ``zero_faulted`` is true.
``flip_bits(codes, site)`` (custom op only)
    Calls the live :class:`~fxfault.faults.BitFlip` with handle ``site``.
"""

from __future__ import annotations

import sys
import weakref
from typing import Any

import numpy as np
import torch

from ._numpy_views import numpy_ok
from .faults.site import lookup_site

__all__ = [
    "dequantize",
    "fake_quantize",
    "quantize",
    "straight_through",
    "symmetric_scale",
    "token",
    "values_at",
]


# --------------------------------------------------------------------------------------------
# eager implementations
# --------------------------------------------------------------------------------------------
def _quantize_impl(
    x: torch.Tensor,
    scale: torch.Tensor,
    zero_point: torch.Tensor | None,
    qmin: int,
    qmax: int,
    dtype: torch.dtype,
) -> torch.Tensor:
    with torch.no_grad():
        q = torch.div(x, scale)
        q.round_()
        if zero_point is not None:
            q.add_(zero_point)
        q.clamp_(qmin, qmax)
        return q.to(dtype)


def values_at(t: torch.Tensor, shape: torch.Size | tuple[int, ...], flat: torch.Tensor) -> torch.Tensor:
    """Entries of ``t`` broadcast to ``shape`` at the flat indices ``flat``, without expanding."""
    if t.numel() == 1:
        return t.reshape(())
    tb = torch.broadcast_to(t, shape)
    return tb[torch.unravel_index(flat, tuple(shape))]


def _changed_positions(codes: torch.Tensor, reference_codes: torch.Tensor) -> torch.Tensor:
    hint = getattr(codes, "_fxfault_patch", None)
    if hint is not None and hint[0] is reference_codes:
        return hint[1]
    return torch.nonzero((codes != reference_codes).reshape(-1)).squeeze(1)


def _dequantize_impl(
    codes: torch.Tensor,
    scale: torch.Tensor,
    zero_point: torch.Tensor | None,
    reference: torch.Tensor,
    reference_codes: torch.Tensor,
) -> torch.Tensor:
    with torch.no_grad():
        if codes is reference_codes:
            return reference
        changed = _changed_positions(codes, reference_codes)
        out = reference.detach().clone(memory_format=torch.contiguous_format)
        if changed.numel():
            shape = out.shape
            vals = codes.reshape(-1)[changed].to(torch.float64)
            if zero_point is not None:
                vals = vals - values_at(zero_point, shape, changed).to(torch.float64)
            s = values_at(scale, shape, changed)
            out.view(-1)[changed] = (vals.to(s.dtype) * s).to(out.dtype)
        return out


def _dequantize_fast(
    site: Any,
    codes: torch.Tensor,
    scale: torch.Tensor,
    zero_point: torch.Tensor | None,
    reference: torch.Tensor,
    reference_codes: torch.Tensor,
) -> torch.Tensor:
    hint = getattr(codes, "_fxfault_patch", None)
    if hint is None or hint[0] is not reference_codes:
        return _dequantize_impl(codes, scale, zero_point, reference, reference_codes)
    _, changed, generation = hint
    grid = (token(scale), token(zero_point))
    buf = site._memo.get("dequantize")
    with torch.no_grad():
        if buf is not None and buf["codes"] is reference_codes and buf["grid"] == grid:
            out = buf["out"]
            if buf["generation"] == generation:
                return out  # type: ignore[no-any-return]
            prev = buf["changed"]
        else:
            out = reference.detach().clone(memory_format=torch.contiguous_format)
            prev = None
        if numpy_ok(out, codes, scale, zero_point, reference):
            _patch_numpy(out, prev, changed, codes, scale, zero_point, reference)
        else:
            if prev is not None:
                out.view(-1)[prev] = reference.reshape(-1)[prev]  # undo last pass's faults
            if changed.numel():
                shape = out.shape
                vals = codes.reshape(-1)[changed].to(torch.float64)
                if zero_point is not None:
                    vals = vals - values_at(zero_point, shape, changed).to(torch.float64)
                s = values_at(scale, shape, changed)
                out.view(-1)[changed] = (vals.to(s.dtype) * s).to(out.dtype)
    site._memo["dequantize"] = {
        "codes": reference_codes, "grid": grid, "generation": generation, "changed": changed,
        "out": out,
    }
    return out


def _patch_numpy(
    out: torch.Tensor,
    prev: torch.Tensor | None,
    changed: torch.Tensor,
    codes: torch.Tensor,
    scale: torch.Tensor,
    zero_point: torch.Tensor | None,
    reference: torch.Tensor,
) -> None:
    """CPU: restore ``prev`` from ``reference`` and write the faulted values at ``changed``,
    through NumPy views (cheap for few faults)."""
    on = out.view(-1).numpy()
    if prev is not None:
        p = prev.numpy()
        on[p] = reference.detach().reshape(-1).numpy()[p]
    if not changed.numel():
        return
    c = changed.numpy()
    vals = codes.detach().reshape(-1).numpy()[c].astype(np.float64)
    shape = tuple(out.shape)
    multi = np.unravel_index(c, shape) if scale.numel() > 1 or (
        zero_point is not None and zero_point.numel() > 1
    ) else None
    if zero_point is not None:
        z = zero_point.detach().to(torch.float64)
        vals = vals - (np.broadcast_to(z.numpy(), shape)[multi] if multi is not None else float(z.reshape(())))
    s_t = scale.detach()
    s = np.broadcast_to(s_t.numpy(), shape)[multi] if multi is not None and s_t.numel() > 1 else s_t.reshape(()).numpy()
    on[c] = (vals.astype(s.dtype) * s).astype(on.dtype)


class _StraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, clean: torch.Tensor, faulted: torch.Tensor, zero_faulted: bool) -> torch.Tensor:
        ctx.zero_faulted = zero_faulted
        if zero_faulted and ctx.needs_input_grad[0]:
            ctx.save_for_backward(faulted != clean)
        return faulted.view_as(faulted)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:
        if ctx.zero_faulted:
            (changed,) = ctx.saved_tensors
            grad = grad.masked_fill(changed, 0.0)
        return grad, None, None


# --------------------------------------------------------------------------------------------
# graph-facing functions
# --------------------------------------------------------------------------------------------
def _proxy_call(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> Any:
    """When torch.fx re-traces generated code (``torch.load``), record ``fn`` as one node."""
    kwargs = kwargs or {}
    for a in (*args, *kwargs.values()):
        if isinstance(a, torch.fx.Proxy):
            return a.tracer.create_proxy("call_function", fn, args, kwargs)
    return None


def token(t: torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor, ...] | None) -> tuple[Any, ...] | None:
    """What identifies a tensor's current contents without reading them: storage, view and
    version counter (bumped by every in-place write, including optimizer steps)."""
    if t is None:
        return None
    if isinstance(t, (list, tuple)):
        return tuple(token(x) for x in t)
    return (t.data_ptr(), t._version, t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype)


def quantize(
    x: torch.Tensor,
    scale: torch.Tensor,
    zero_point: torch.Tensor | None,
    qmin: int,
    qmax: int,
    dtype: torch.dtype,
    source: list[torch.Tensor] | None = None,
    site: Any = None,
) -> torch.Tensor:
    """Integer codes of the quantized float tensor ``x`` (see the module docstring).

    ``source`` (the tensors the quantizer's output is a function of: the raw weight, and e.g.
    BatchNorm statistics folded into it) and ``site`` (the site module) only serve the eval-mode
    cache of persistent faults: when the site allows it and ``source``, ``scale`` and
    ``zero_point`` are unchanged since the last call, the previous codes are returned.
    """
    traced = _proxy_call(quantize, (x, scale, zero_point, qmin, qmax, dtype), {"source": source, "site": site})
    if traced is not None:
        return traced
    if torch.compiler.is_compiling():
        # codes carry no gradient; detaching keeps AOTAutograd from asking for a formula
        return torch.ops.fxfault.quantize(x.detach(), scale, zero_point, qmin, qmax, dtype)
    keep = getattr(site, "_keep_clean", None)
    if keep is not None:  # fxfault.training.clean_quantized_weights
        if x.requires_grad:
            x.retain_grad()
        keep[site.name] = x
    if site is not None and source is not None and site.codes_cache_ok():
        key = (token(source), token(scale), token(zero_point), qmin, qmax, dtype, x.shape, x.device)
        memo = site._memo.get("quantize")
        if memo is not None and memo[0] == key:
            return memo[1]  # type: ignore[no-any-return]
        codes = _quantize_impl(x, scale, zero_point, qmin, qmax, dtype)
        site._memo["quantize"] = (key, codes)
        return codes
    return _quantize_impl(x, scale, zero_point, qmin, qmax, dtype)


def dequantize(
    codes: torch.Tensor,
    scale: torch.Tensor,
    zero_point: torch.Tensor | None,
    reference: torch.Tensor,
    reference_codes: torch.Tensor,
    site: Any = None,
    in_place: bool = False,
) -> torch.Tensor:
    """Floats of ``codes``; unchanged codes give ``reference`` exactly (see the module docstring).

    With ``site``, in eval mode without autograd, the result lives in a buffer of the site:
    last pass's faulted entries are restored from ``reference`` and this pass's written, in
    time proportional to the number of faults (the clean codes being the memoised ones, the
    clean weight is unchanged). ``in_place=True`` (set only by the graphs that
    :func:`fxfault.transform` writes) also allows writing the faulted values into
    ``reference`` itself when nothing else can see it.
    """
    traced = _proxy_call(
        dequantize,
        (codes, scale, zero_point, reference, reference_codes),
        {"site": site, "in_place": in_place} if in_place else {"site": site},
    )
    if traced is not None:
        return traced
    if torch.compiler.is_compiling():
        # the faulted weight's gradient goes through straight_through, not through here
        return torch.ops.fxfault.dequantize(codes, scale, zero_point, reference.detach(), reference_codes)
    if site is not None and codes is not reference_codes and site.codes_cache_ok():
        # Nothing but the calling graph's local variable and this call holds the clean weight:
        # it is a fresh output of the quantizer that no one else reads, and the faulted values
        # can be written into it directly: no copy, and the layer then reads weights that are
        # still in cache. (Checked conservatively: any other holder, view or shared storage,
        # and autograd, all send the call to the copying paths.)
        many = _many_faults(codes, reference)
        if (
            in_place
            and not (many and site.fast_ok())
            and sys.getrefcount(reference) <= _FREE_REFS
            and _private(reference)
        ):
            return _patch_in_place(codes, scale, zero_point, reference, reference_codes)
        if site.fast_ok():
            return _dequantize_fast(site, codes, scale, zero_point, reference, reference_codes)
    return _dequantize_impl(codes, scale, zero_point, reference, reference_codes)


def _free_refs() -> int:
    """``sys.getrefcount`` of the clean weight inside :func:`dequantize` when only the generated
    code's local variable holds it (3 on CPython 3.11: that variable, this call's parameter and
    ``getrefcount``'s argument). Measured on this interpreter with the same call shape, since
    interpreters that borrow stack references count fewer."""

    def callee(
        codes: Any, scale: Any, zero_point: Any, reference: Any, reference_codes: Any,
        site: Any = None, in_place: bool = False,
    ) -> int:
        return sys.getrefcount(reference)

    def caller() -> int:
        q = torch.empty(0)
        return callee(None, None, None, q, None, site=None, in_place=True)

    return caller()


#: the reference count of a clean weight that nothing but the calling graph holds
_FREE_REFS = _free_refs()


def _many_faults(codes: torch.Tensor, reference: torch.Tensor) -> bool:
    """More faulted entries than a buffer of the faulted weight is worth rewriting each pass
    (for repeating maps, where the buffer makes a repeated pass free)."""
    hint = getattr(codes, "_fxfault_patch", None)
    return hint is not None and int(hint[1].numel()) * 64 > reference.numel()


def _private(t: torch.Tensor) -> bool:
    """No view, no autograd, no other tensor on the same storage."""
    if torch.is_grad_enabled() or t.requires_grad or t._base is not None or not t.is_contiguous():
        return False
    if isinstance(t, torch.nn.Parameter) or type(t) is not torch.Tensor:
        return False
    # no other holder of this TensorImpl (a view's base link, a DLPack capsule, C++ code)
    use_count = getattr(t, "_use_count", None)
    if use_count is not None and int(use_count()) != 1:
        return False
    # the Python storage object made here holds one reference, the tensor the other
    return int(torch._C._storage_Use_Count(t.untyped_storage()._cdata)) == 2


def _patch_in_place(
    codes: torch.Tensor,
    scale: torch.Tensor,
    zero_point: torch.Tensor | None,
    reference: torch.Tensor,
    reference_codes: torch.Tensor,
) -> torch.Tensor:
    changed = _changed_positions(codes, reference_codes)
    with torch.no_grad():
        if numpy_ok(codes, scale, zero_point, reference):
            _patch_numpy(reference, None, changed, codes, scale, zero_point, reference)
        elif changed.numel():
            shape = reference.shape
            vals = codes.reshape(-1)[changed].to(torch.float64)
            if zero_point is not None:
                vals = vals - values_at(zero_point, shape, changed).to(torch.float64)
            s = values_at(scale, shape, changed)
            reference.view(-1)[changed] = (vals.to(s.dtype) * s).to(reference.dtype)
    return reference


def straight_through(clean: torch.Tensor, faulted: torch.Tensor, zero_faulted: bool = False) -> torch.Tensor:
    """``faulted`` in the forward pass; the gradient of ``clean`` in the backward pass."""
    traced = _proxy_call(straight_through, (clean, faulted, zero_faulted))
    if traced is not None:
        return traced
    if torch.compiler.is_compiling():
        return torch.ops.fxfault.straight_through(clean, faulted, zero_faulted)
    if faulted is clean:
        return clean
    if not (torch.is_grad_enabled() and clean.requires_grad):
        return faulted
    return _StraightThrough.apply(clean, faulted, zero_faulted)


# --------------------------------------------------------------------------------------------
# fxfault's own weight quantizer (for plain float layers, FaultConfig(float_bits=...))
# --------------------------------------------------------------------------------------------
#: eval-mode memo of symmetric_scale: id(weight) -> (weakref to the weight, token, bits, axis,
#: scale); see clear_scales(). (Keyed by id: tensors compare elementwise, not by identity.)
_SCALES: dict[int, tuple[Any, Any, int, int, torch.Tensor]] = {}


def clear_scales() -> None:
    """Forget the memoised step sizes of fxfault's own quantizer (see :func:`symmetric_scale`)."""
    _SCALES.clear()


def symmetric_scale(weight: torch.Tensor, bits: int, axis: int = 0, cache: bool = False) -> torch.Tensor:
    """Per-channel symmetric step sizes along ``axis``: ``max|w| / (2^(bits-1) - 1)`` (a 1-D
    tensor; a channel of zeros gets step 1).

    With ``cache`` (``FaultConfig(cache=True)``), without autograd, the steps of an unchanged
    weight (same storage and version counter) are reused: the same tensor comes back, which
    also lets the site reuse its clean codes and fault buffers.
    """
    traced = _proxy_call(symmetric_scale, (weight, bits, axis), {"cache": cache} if cache else None)
    if traced is not None:
        return traced
    memo = cache and not torch.is_grad_enabled() and not torch.compiler.is_compiling()
    if memo:
        key = token(weight)
        hit = _SCALES.get(id(weight))
        if hit is not None and hit[0]() is weight and hit[1:4] == (key, bits, axis):
            return hit[4]
    with torch.no_grad():
        w = weight.detach().movedim(axis, 0).reshape(weight.shape[axis], -1)
        amax = torch.maximum(w.amax(dim=1), w.amin(dim=1).neg_()).to(torch.float32)
        qmax = 2 ** (bits - 1) - 1
        scale = torch.where(amax > 0, amax / qmax, torch.ones_like(amax))
    if memo:
        if len(_SCALES) > 4096:  # drop the entries of weights that no longer exist
            for k in [k for k, v in _SCALES.items() if v[0]() is None]:
                del _SCALES[k]
        _SCALES[id(weight)] = (weakref.ref(weight), key, bits, axis, scale)
    return scale


def fake_quantize(
    weight: torch.Tensor, scale: torch.Tensor, qmin: int, qmax: int, axis: int = 0
) -> torch.Tensor:
    """``clamp(round(w * (1 / scale)), qmin, qmax) * scale`` per channel along ``axis``, with a
    straight-through gradient (``torch.fake_quantize_per_channel_affine``'s formula and
    backward; without autograd, the same arithmetic in place on one new tensor)."""
    traced = _proxy_call(fake_quantize, (weight, scale, qmin, qmax, axis))
    if traced is not None:
        return traced
    if (torch.is_grad_enabled() and weight.requires_grad) or torch.compiler.is_compiling():
        zero = torch.zeros(scale.shape, dtype=torch.int32, device=scale.device)
        return torch.fake_quantize_per_channel_affine(weight, scale, zero, axis, qmin, qmax)
    shape = [1] * weight.dim()
    shape[axis] = -1
    s = scale.reshape(shape)
    with torch.no_grad():
        return torch.mul(weight, s.reciprocal()).round_().clamp_(qmin, qmax).mul_(s)


# --------------------------------------------------------------------------------------------
# custom ops (used under torch.compile / torch.export)
# --------------------------------------------------------------------------------------------
@torch.library.custom_op("fxfault::quantize", mutates_args=())
def _quantize_op(
    x: torch.Tensor,
    scale: torch.Tensor,
    zero_point: torch.Tensor | None,
    qmin: int,
    qmax: int,
    dtype: torch.dtype,
) -> torch.Tensor:
    return _quantize_impl(x, scale, zero_point, qmin, qmax, dtype)


@_quantize_op.register_fake
def _(x, scale, zero_point, qmin, qmax, dtype):  # type: ignore[no-untyped-def]
    return torch.empty_like(x, dtype=dtype, memory_format=torch.contiguous_format)


@torch.library.custom_op("fxfault::dequantize", mutates_args=())
def _dequantize_op(
    codes: torch.Tensor,
    scale: torch.Tensor,
    zero_point: torch.Tensor | None,
    reference: torch.Tensor,
    reference_codes: torch.Tensor,
) -> torch.Tensor:
    out = _dequantize_impl(codes, scale, zero_point, reference, reference_codes)
    return out.clone() if out is reference else out


@_dequantize_op.register_fake
def _(codes, scale, zero_point, reference, reference_codes):  # type: ignore[no-untyped-def]
    return torch.empty_like(reference, memory_format=torch.contiguous_format)


@torch.library.custom_op("fxfault::straight_through", mutates_args=())
def _straight_through_op(clean: torch.Tensor, faulted: torch.Tensor, zero_faulted: bool) -> torch.Tensor:
    return faulted.clone()


@_straight_through_op.register_fake
def _(clean, faulted, zero_faulted):  # type: ignore[no-untyped-def]
    return torch.empty_like(faulted)


def _st_setup(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
    clean, faulted, zero_faulted = inputs
    ctx.zero_faulted = zero_faulted
    ctx.save_for_backward(faulted != clean if zero_faulted else None)


def _st_backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
    if ctx.zero_faulted:
        (changed,) = ctx.saved_tensors
        grad = grad.masked_fill(changed, 0.0)
    return grad, None, None


_straight_through_op.register_autograd(_st_backward, setup_context=_st_setup)


@torch.library.custom_op("fxfault::flip_bits", mutates_args=())
def _flip_bits_op(codes: torch.Tensor, site: int) -> torch.Tensor:
    out = lookup_site(site).inject(codes)
    return out.clone() if out is codes else out


@_flip_bits_op.register_fake
def _(codes, site):  # type: ignore[no-untyped-def]
    return torch.empty_like(codes, memory_format=torch.contiguous_format)
