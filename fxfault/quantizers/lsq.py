"""Adapter for LSQ-style layers: a layer with a ``quan_w_fn`` weight quantizer module.

The interface (see ``docs/quantizers.md``):

* the layer calls ``quan_w_fn(weight, bits, is_activation=False)`` and ``quan_a_fn(x, bits, ...)``;
  ``bits`` comes from the layer's ``fixed_bits`` or ``bits`` tuple ``(w_bits, a_bits)``;
* the quantizer has ``get_scale(bits, detach=True)``, the step size for that width, and the
  flags ``all_positive`` / ``symmetric`` that fix its code range;
* ``bits`` of ``None`` or ``>= 32`` means identity (no site).

Widths from the config are applied to the tracer's copy of the layer (its ``bits`` or
``fixed_bits``), so the traced quantizer call uses exactly the width of the site.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterable
from typing import Any

import torch
from torch import fx, nn

from ..config import FaultConfig
from ..errors import ConfigError, UnsupportedQuantizerError
from .base import Grid, MatchContext, QuantizerAdapter, Read, SiteMatch

__all__ = ["LSQAdapter", "is_lsq_layer", "is_lsq_quantizer", "lsq_code_range"]


def is_lsq_quantizer(m: Any) -> bool:
    """A module with ``get_scale(bits, ...)``: the LSQ quantizer interface."""
    return isinstance(m, nn.Module) and callable(getattr(m, "get_scale", None))


def is_lsq_layer(m: Any) -> bool:
    """A module with a ``quan_w_fn`` quantizer module and a ``weight``."""
    return isinstance(m, nn.Module) and isinstance(getattr(m, "quan_w_fn", None), nn.Module)


def lsq_code_range(q: nn.Module, bits: int, *, where: str = "") -> tuple[int, int]:
    """Integer code range of an LSQ quantizer at ``bits`` from its ``all_positive`` /
    ``symmetric`` flags (or ``thd_neg`` / ``thd_pos`` for a single-width quantizer)."""
    if hasattr(q, "all_positive") or hasattr(q, "symmetric"):
        if bool(getattr(q, "all_positive", False)):
            return 0, 2**bits - 1
        if bool(getattr(q, "symmetric", False)):
            return -(2 ** (bits - 1)) + 1, 2 ** (bits - 1) - 1
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    thd = (getattr(q, "thd_neg", None), getattr(q, "thd_pos", None))
    if all(t is not None for t in thd) and getattr(q, "bit", None) == bits:
        return int(thd[0]), int(thd[1])  # type: ignore[arg-type]
    raise UnsupportedQuantizerError(
        f"cannot tell the code range of the quantizer {type(q).__name__}{where}: it has neither "
        "'all_positive'/'symmetric' flags nor 'thd_neg'/'thd_pos' for this width. "
        "Register an adapter for it with fxfault.register_quantizer(...)"
    )


def _widths(q: nn.Module) -> list[int] | None:
    mapping = getattr(q, "bit_mapping", None)
    if isinstance(mapping, dict):
        return sorted(int(b) for b in mapping)
    return None


def _check_width(q: nn.Module, bits: int, layer: str) -> None:
    widths = _widths(q)
    if widths is not None:
        if bits not in widths:
            raise ConfigError(
                f"layer {layer!r}: its weight quantizer has no scale for {bits} bits "
                f"(it has scales for {widths}); choose one of those widths"
            )
        return
    try:
        q.get_scale(bits, detach=True)  # type: ignore[operator]
    except (KeyError, IndexError) as e:
        raise ConfigError(
            f"layer {layer!r}: its weight quantizer has no scale for {bits} bits ({e!r})"
        ) from e


def _uninitialised(q: nn.Module, bits: int) -> bool:
    state = getattr(q, "init_state", None)
    mapping = getattr(q, "bit_mapping", None)
    if not isinstance(state, torch.Tensor) or not isinstance(mapping, dict) or bits not in mapping:
        return False
    try:
        return bool(state.reshape(-1)[mapping[bits]] == 0)
    except IndexError:
        return False


class LSQAdapter(QuantizerAdapter):
    """Weight quantizers of LSQ-style layers (``quan_w_fn``)."""

    name = "lsq"

    def describe(self) -> str:
        return (
            "lsq: a call quantizer(weight, bits, is_activation=False) of a module with "
            "get_scale(bits), such as a layer's quan_w_fn, with bits set (bits < 32)"
        )

    def leaf_modules(self, model: nn.Module) -> Iterable[nn.Module]:
        for m in model.modules():
            for attr in ("quan_w_fn", "quan_a_fn"):
                q = getattr(m, attr, None)
                if isinstance(q, nn.Module):
                    yield q
            if is_lsq_quantizer(m):
                yield m

    def candidate_layers(self, shadow: nn.Module, cfg: FaultConfig) -> Iterable[str]:
        return [n for n, m in shadow.named_modules() if is_lsq_layer(m)]

    def prepare(self, shadow: nn.Module, cfg: FaultConfig) -> None:
        for name, m in shadow.named_modules():
            if not is_lsq_layer(m) or not (hasattr(m, "bits") or hasattr(m, "fixed_bits")):
                continue
            fixed = getattr(m, "fixed_bits", None)
            own = fixed if fixed is not None else getattr(m, "bits", None)
            w = cfg.bits_override(name)
            if w is None and own is None:
                w = cfg.bits_default()
            a = cfg.for_layer("act_bits", name) if cfg.act_bits is not None else None
            if w is None and a is None:
                continue
            new_w = w if w is not None else (own[0] if own is not None else 32)
            new_a = a if a is not None else (own[1] if own is not None else 32)
            if new_w is not None and new_w < 32:
                _check_width(m.quan_w_fn, int(new_w), name)
            qa = getattr(m, "quan_a_fn", None)
            qa_widths = _widths(qa) if isinstance(qa, nn.Module) else None
            if a is not None and a < 32 and qa_widths is not None and a not in qa_widths:
                raise ConfigError(
                    f"layer {name!r}: its activation quantizer has no scale for {a} bits "
                    f"(it has {qa_widths})"
                )
            if fixed is not None:
                m.fixed_bits = (new_w, new_a)
            else:
                m.bits = (new_w, new_a)

    def match(self, node: fx.Node, ctx: MatchContext) -> SiteMatch | None:
        if node.op != "call_module":
            return None
        target = str(node.target)
        q = ctx.module(target)
        if not is_lsq_quantizer(q):
            return None
        args = _bind(q, node)
        is_act = args.get("is_activation")
        if is_act is True or (is_act is None and not target.endswith("quan_w_fn")):
            return None
        bits = args.get("bits")
        if isinstance(bits, fx.Node):
            raise UnsupportedQuantizerError(
                f"the bit width of {node.format_node()} is computed at run time; fxfault needs "
                "it fixed when tracing. Set the layer's bits/fixed_bits, or give "
                "FaultConfig(bits={...})"
            )
        if bits is None or bits >= 32:
            return None
        bits = int(bits)
        weight = args.get("x", node.args[0] if node.args else None)
        layer = _layer_of(weight, target)
        where = f" (layer {layer!r})"
        qmin, qmax = lsq_code_range(q, bits, where=where)
        if bits > 16:
            raise UnsupportedQuantizerError(f"{bits}-bit weights{where}: fxfault supports 1..16 bits")
        wt = ctx.tensor_of(weight)
        if wt is None:
            raise UnsupportedQuantizerError(
                f"the weight quantizer {node.format_node()}{where} does not read a parameter "
                "directly, so fxfault cannot tell the weight's shape"
            )
        if _uninitialised(q, bits):
            warnings.warn(
                f"the quantizer of layer {layer!r} has no initialised scale for {bits} bits; "
                "its first forward pass will initialise it from the data, writing into the "
                "parameter that the faulty model shares with your model. Run your model once "
                "(calibration) before fxfault.transform to avoid this.",
                stacklevel=4,
            )
        explicit_scale = args.get("scale")
        probe = explicit_scale if explicit_scale is not None else q.get_scale(bits, detach=True)  # type: ignore[operator]
        reshape = None
        if isinstance(probe, fx.Node):
            probe_t = ctx.tensor_of(probe)
            if probe_t is None:
                raise UnsupportedQuantizerError(
                    f"{node.format_node()}{where} passes a computed scale=; fxfault cannot read it"
                )
            probe = probe_t
        if not isinstance(probe, torch.Tensor):
            probe = torch.as_tensor(probe)
        reshape = _scale_layout(probe, tuple(wt.shape), layer)

        scale = Read(node=explicit_scale) if isinstance(explicit_scale, fx.Node) else Read(
            method=(target, "get_scale", (bits,), {"detach": True})
        )
        return SiteMatch(
            quantizer=self.name,
            layer=layer,
            node=node,
            bits=bits,
            qmin=qmin,
            qmax=qmax,
            shape=tuple(wt.shape),
            grid=Grid(scale, layout=reshape),
            axis=0 if probe.numel() > 1 else None,
            quantizer_module=target,
            stored=str(weight.target) if isinstance(weight, fx.Node) else None,
        )


def _bind(q: nn.Module, node: fx.Node) -> dict[str, Any]:
    """Map the call's arguments to the quantizer's parameter names (x, bits, is_activation...)."""
    try:
        sig = inspect.signature(q.forward)
        bound = sig.bind_partial(*node.args, **node.kwargs)
        out = dict(bound.arguments)
        for key, value in list(out.items()):
            if sig.parameters[key].kind is inspect.Parameter.VAR_KEYWORD:
                out.update(value)
        if "x" not in out and node.args:
            out["x"] = node.args[0]
        if "bits" not in out and len(node.args) > 1:
            out["bits"] = node.args[1]
        return out
    except (TypeError, ValueError):
        out = dict(node.kwargs)
        if node.args:
            out.setdefault("x", node.args[0])
        if len(node.args) > 1:
            out.setdefault("bits", node.args[1])
        if len(node.args) > 2:
            out.setdefault("is_activation", node.args[2])
        return out


def _layer_of(weight: Any, quantizer_target: str) -> str:
    if isinstance(weight, fx.Node) and weight.op == "get_attr":
        return str(weight.target).rpartition(".")[0]
    return quantizer_target.rpartition(".")[0]


def _scale_layout(scale: torch.Tensor, wshape: tuple[int, ...], layer: str) -> tuple[int, ...] | None:
    """How to reshape a scale so that it broadcasts over the weight (None: as it is)."""
    if scale.numel() == 1:
        return None
    if scale.numel() == wshape[0]:
        want = (wshape[0],) + (1,) * (len(wshape) - 1)
        return None if tuple(scale.shape) == want else want
    try:
        torch.broadcast_shapes(tuple(scale.shape), wshape)
    except RuntimeError:
        raise UnsupportedQuantizerError(
            f"layer {layer!r}: the quantizer's scale has shape {tuple(scale.shape)}, which "
            f"neither is per-tensor nor has one entry per output channel of the weight {wshape}"
        ) from None
    return None
