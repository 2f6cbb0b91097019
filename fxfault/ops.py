"""The graph ops of a fault chain: ``quantize``, ``dequantize`` and ``straight_through``.

Each op is a plain function that the transformed graph calls by name. In eager mode it computes
its result directly (in eval mode, from the site's buffers: :mod:`fxfault.faults.cache`); under
``torch.compile`` or ``torch.export`` it calls the matching custom op (``torch.ops.fxfault.*``,
registered with :mod:`torch.library`), so the op stays one named node through Dynamo,
AOTAutograd and Inductor.

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

The keyword arguments ``site``, ``sources`` and ``pass_`` connect an op to its fault site and to
the forward pass (see :mod:`fxfault.faults.cache`); called without them, the ops are pure.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .faults.cache import flat, gather, numpy_ok, scatter
from .faults.plan import Pass, lookup

__all__ = ["dequantize", "quantize", "straight_through", "values_at"]


# --------------------------------------------------------------------------------------------
# arithmetic
# --------------------------------------------------------------------------------------------
_NP_DTYPES = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}
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


def values_at(t: torch.Tensor, shape: torch.Size | tuple[int, ...], positions: Any, view: Any = None) -> Any:
    """Entries of ``t`` broadcast to ``shape`` at the flat ``positions`` (NumPy array or
    tensor), without expanding ``t``: a NumPy array or scalar for CPU tensors NumPy can view,
    else a tensor. Only the dimensions along which ``t`` varies cost work (one for the usual
    per-channel scale). ``view`` is ``flat(t)`` when the caller has it."""
    view = flat(t) if view is None else view
    if t.numel() == 1:
        return view[0]
    if isinstance(view, np.ndarray) != isinstance(positions, np.ndarray):
        positions = positions.cpu().numpy() if isinstance(view, np.ndarray) else torch.as_tensor(
            positions, device=view.device)
    tshape = (1,) * (len(shape) - t.dim()) + tuple(t.shape)
    sel: Any = 0
    inner = 1
    stride = 1  # t's contiguous stride along the dimensions it varies in
    for d in range(len(shape) - 1, -1, -1):
        if tshape[d] > 1:
            sel = sel + (positions // inner) % shape[d] * stride
            stride *= tshape[d]
        inner *= shape[d]
    return view[sel]


def decode_at(
    codes: Any,
    scale: torch.Tensor,
    zero_point: torch.Tensor | None,
    out: torch.Tensor,
    index: Any,
) -> Any:
    """``(codes - zero_point) * scale`` at the flat ``index`` positions, in ``out``'s dtype
    (NumPy arithmetic on the CPU, where it is cheapest for a handful of values). ``codes`` is
    a tensor or its :func:`~fxfault.faults.cache.flat` view."""
    shape = out.shape
    vals = gather(codes, index)
    if isinstance(vals, np.ndarray) and numpy_ok(scale) and numpy_ok(out) and (
        zero_point is None or numpy_ok(zero_point)
    ):
        v = vals.astype(np.float64)
        if zero_point is not None:
            v = v - np.asarray(values_at(zero_point, shape, index), dtype=np.float64)
        s = np.asarray(values_at(scale, shape, index))
        return (v.astype(s.dtype) * s).astype(_NP_DTYPES[out.dtype])
    dev = out.device
    t = torch.as_tensor(vals, device=dev).to(torch.float64)
    if zero_point is not None:
        t = t - torch.as_tensor(values_at(zero_point, shape, index), device=dev).to(torch.float64)
    st = torch.as_tensor(values_at(scale, shape, index), device=dev)
    return (t.to(st.dtype) * st).to(out.dtype)


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
        changed = torch.nonzero((codes != reference_codes).reshape(-1)).squeeze(1)
        out = reference.detach().clone(memory_format=torch.contiguous_format)
        if changed.numel():
            scatter(out, changed, decode_at(codes, scale, zero_point, out, changed))
        return out


class _StraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, clean: torch.Tensor, faulted: torch.Tensor, zero_faulted: bool) -> torch.Tensor:
        ctx.zero_faulted = zero_faulted
        if zero_faulted and ctx.needs_input_grad[0]:
            ctx.save_for_backward(faulted != clean)
        return faulted.view_as(faulted)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:
        return _st_backward(ctx, grad)


# --------------------------------------------------------------------------------------------
# graph-facing functions
# --------------------------------------------------------------------------------------------
_Proxy = torch.fx.Proxy


def proxy_call(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> Any:
    """When torch.fx re-traces generated code (``torch.load``), record ``fn`` as one node.

    The first argument of every fxfault op is a value computed by the graph, so it is a
    ``Proxy`` exactly when the code is being traced (one ``isinstance`` per call)."""
    first = args[0]
    if isinstance(first, _Proxy):
        return first.tracer.create_proxy("call_function", fn, args, kwargs or {})
    return None


def quantize(
    x: torch.Tensor,
    scale: torch.Tensor,
    zero_point: torch.Tensor | None,
    qmin: int,
    qmax: int,
    dtype: torch.dtype,
    site: Any = None,
    sources: list[torch.Tensor] | None = None,
    pass_: Pass | None = None,
) -> torch.Tensor:
    """Integer codes of the quantized float tensor ``x`` (see the module docstring).

    With ``site``, ``sources`` (the stored tensors the codes are a function of) and an eval
    pass, the clean codes are computed once and kept while ``sources`` are unchanged.
    """
    traced = proxy_call(
        quantize, (x, scale, zero_point, qmin, qmax, dtype), {"site": site, "sources": sources, "pass_": pass_}
    )
    if traced is not None:
        return traced
    if torch.compiler.is_compiling():
        # codes carry no gradient; detaching keeps AOTAutograd from asking for a formula
        return torch.ops.fxfault.quantize(x.detach(), scale, zero_point, qmin, qmax, dtype)
    if site is not None:
        site.observe_clean(x)
        if sources is not None and site.cached(pass_):
            buf = site.cache.buffers().sync(sources, pass_.serial)  # type: ignore[union-attr]
            if buf.codes is None:
                buf.codes = _quantize_impl(x, scale, zero_point, qmin, qmax, dtype)
            return buf.codes
    return _quantize_impl(x, scale, zero_point, qmin, qmax, dtype)


def dequantize(
    codes: torch.Tensor,
    scale: torch.Tensor,
    zero_point: torch.Tensor | None,
    reference: torch.Tensor,
    reference_codes: torch.Tensor,
    site: Any = None,
    pass_: Pass | None = None,
) -> torch.Tensor:
    """Floats of ``codes``; unchanged codes give ``reference`` exactly (see the module docstring).

    With ``site`` and an eval pass, the result is the site's faulted-weight buffer, updated in
    time proportional to the number of faults (the flip of the same pass recorded where the
    codes changed).
    """
    traced = proxy_call(
        dequantize, (codes, scale, zero_point, reference, reference_codes), {"site": site, "pass_": pass_}
    )
    if traced is not None:
        return traced
    if torch.compiler.is_compiling():
        # the faulted weight's gradient goes through straight_through, not through here
        return torch.ops.fxfault.dequantize(codes, scale, zero_point, reference.detach(), reference_codes)
    if codes is reference_codes:
        return reference
    if site is not None and site.cached(pass_):
        out = faulted_buffer(site, pass_, reference,  # type: ignore[arg-type]
                             lambda view, at: decode_at(view, scale, zero_point, reference, at), codes)
        if out is not None:
            return out
    return _dequantize_impl(codes, scale, zero_point, reference, reference_codes)


def faulted_buffer(site: Any, pass_: Pass, reference: torch.Tensor, values: Any, codes: torch.Tensor) -> Any:
    """The decode step of a chain from the site's eval buffers: ``reference`` with
    ``values(codes view, positions)`` at the positions the flip of this pass changed (kept while
    the map is unchanged); ``None`` when this pass's flip did not use the buffers."""
    buf = site.cache.buffers()
    flipped = buf.flipped
    if flipped is None or flipped[0] != pass_.index or flipped[1] is None:
        return None
    patch = flipped[1]
    ready = buf.current("fweight", patch.key)
    if ready is not None:
        return ready
    return buf.write("fweight", reference, patch, values(buf.flat(codes), patch.positions))


def straight_through(clean: torch.Tensor, faulted: torch.Tensor, zero_faulted: bool = False) -> torch.Tensor:
    """``faulted`` in the forward pass; the gradient of ``clean`` in the backward pass."""
    traced = proxy_call(straight_through, (clean, faulted, zero_faulted))
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


@torch.library.custom_op("fxfault::next_pass", mutates_args=())
def _next_pass_op(plan: int) -> torch.Tensor:
    return torch.tensor(lookup(plan).next_index(), dtype=torch.int64)


@_next_pass_op.register_fake
def _(plan):  # type: ignore[no-untyped-def]
    return torch.empty((), dtype=torch.int64)


@torch.library.custom_op("fxfault::flip_bits", mutates_args=())
def _flip_bits_op(codes: torch.Tensor, site: int, pass_index: torch.Tensor | None) -> torch.Tensor:
    s = lookup(site)
    index = s.plan.next_index() if pass_index is None else int(pass_index)
    out = s.inject(codes, Pass(index, False))
    return out.clone() if out is codes else out


@_flip_bits_op.register_fake
def _(codes, site, pass_index):  # type: ignore[no-untyped-def]
    return torch.empty_like(codes, memory_format=torch.contiguous_format)
