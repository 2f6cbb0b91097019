"""fxfault's own weight quantizer for plain float layers (opt-in: ``FaultConfig(float_bits=8)``).

With ``float_bits`` set, the tracer opens ``nn.Conv1d/2d/3d`` and ``nn.Linear`` so that their
weights appear in the graph, and every conv/linear whose weight is a parameter read directly
(no quantizer of its own) gets fxfault's quantizer in front of the chain: per-channel symmetric
(``step = max|w_c| / (2^(k-1) - 1)``, codes ``round(w * (1 / step))`` in
``[-(2^(k-1)-1), 2^(k-1)-1]``, as torch.ao's fused fake-quantize computes them) with a
straight-through gradient. The width comes from the ``bits`` globs (``bits={"layer1.*": 4}``)
and otherwise from ``float_bits`` (itself per layer).

A channel whose weights are all zero (a pruned channel) has no range of its own: it gets the
step ``max|W| / 2^(k-1)`` of the whole layer, so that no code its ``k`` bits can hold (a fault
may produce any of them) dequantizes to a weight larger than the layer's clean range. A layer
that is all zero gets ``float32`` epsilon, as torch.ao's observers give it.

In eval mode without autograd, the step sizes and the quantized weight are computed once and
kept by the site (:mod:`fxfault.faults.cache`) while the float weight is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from ..config import FaultConfig
from ..errors import ConfigError
from ..faults.plan import Pass
from ..ops import proxy_call
from .base import ChainNodes, Grid, MatchContext, QuantizerAdapter, Read, SiteMatch

__all__ = ["FloatAdapter", "fake_quantize", "symmetric_scale"]

_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_CONSUMERS: set[Any] = {
    F.conv1d,
    F.conv2d,
    F.conv3d,
    F.linear,
    torch.conv1d,
    torch.conv2d,
    torch.conv3d,
    torch._C._nn.linear,
    torch.ops.aten.conv1d.default,
    torch.ops.aten.conv2d.default,
    torch.ops.aten.conv3d.default,
    torch.ops.aten.linear.default,
}


def _steps(weight: torch.Tensor, bits: int, axis: int) -> torch.Tensor:
    with torch.no_grad():
        w = weight.detach().movedim(axis, 0).reshape(weight.shape[axis], -1)
        amax = torch.maximum(w.amax(dim=1), w.amin(dim=1).neg_()).to(torch.float32)
        step = amax / (2 ** (bits - 1) - 1)
        live = amax > 0
        # a dead channel: every code its k bits can hold, -2^(k-1) included, dequantizes within
        # the layer's clean range (float32 eps when the whole layer is zero). Branch-free, so
        # that it compiles and exports without data-dependent control flow.
        fill = amax.amax() / 2 ** (bits - 1)
        fill = torch.where(fill > 0, fill, torch.full_like(fill, torch.finfo(torch.float32).eps))
        layout = [1] * weight.dim()
        layout[axis] = -1
        return torch.where(live, step, fill).reshape(layout)


def symmetric_scale(
    weight: torch.Tensor, bits: int, axis: int = 0, site: Any = None, pass_: Pass | None = None
) -> torch.Tensor:
    """Per-channel symmetric step sizes along ``axis``: ``max|w| / (2^(bits-1) - 1)``, float32,
    shaped to broadcast over ``weight`` (``(C, 1, 1, 1)`` for a conv weight along axis 0; see the
    module docstring for channels of zeros). With ``site`` and an eval pass, kept while
    ``weight`` is unchanged."""
    traced = proxy_call(symmetric_scale, (weight, bits, axis), {"site": site, "pass_": pass_})
    if traced is not None:
        return traced
    if site is not None and site.cached(pass_):
        buf = site.cache.buffers().sync((weight,), pass_.serial)  # type: ignore[union-attr]
        if buf.scale is None:
            buf.scale = _steps(weight, bits, axis)
        return buf.scale
    return _steps(weight, bits, axis)


def _fake_quantize(weight: torch.Tensor, scale: torch.Tensor, qmin: int, qmax: int, axis: int) -> torch.Tensor:
    if (torch.is_grad_enabled() and weight.requires_grad) or torch.compiler.is_compiling():
        steps = scale.reshape(-1)
        zero = torch.zeros(steps.shape, dtype=torch.int32, device=scale.device)
        return torch.fake_quantize_per_channel_affine(weight, steps, zero, axis, qmin, qmax)
    with torch.no_grad():
        return torch.mul(weight, scale.reciprocal()).round_().clamp_(qmin, qmax).mul_(scale)


def fake_quantize(
    weight: torch.Tensor,
    scale: torch.Tensor,
    qmin: int,
    qmax: int,
    axis: int = 0,
    site: Any = None,
    pass_: Pass | None = None,
) -> torch.Tensor:
    """``clamp(round(w * (1 / scale)), qmin, qmax) * scale`` per channel along ``axis`` (``scale``
    as :func:`symmetric_scale` shapes it), with a straight-through gradient (``torch.fake_quantize_per_channel_affine``'s formula and
    backward). With ``site`` and an eval pass, kept while ``weight`` is unchanged."""
    traced = proxy_call(fake_quantize, (weight, scale, qmin, qmax, axis), {"site": site, "pass_": pass_})
    if traced is not None:
        return traced
    if site is not None and site.cached(pass_):
        buf = site.cache.buffers().sync((weight,), pass_.serial)  # type: ignore[union-attr]
        if buf.qweight is None:
            buf.qweight = _fake_quantize(weight, scale, qmin, qmax, axis)
        return buf.qweight
    return _fake_quantize(weight, scale, qmin, qmax, axis)


def _width(cfg: FaultConfig, layer: str) -> int | None:
    if cfg.float_bits is None:
        return None
    base = cfg.for_layer("float_bits", layer)
    if base is None:
        return None
    override = cfg.bits_override(layer)
    return int(override if override is not None else base)


class FloatAdapter(QuantizerAdapter):
    """Plain float conv/linear weights, quantized by fxfault when ``float_bits`` asks for it."""

    name = "float"

    def describe(self) -> str:
        return "float: a conv/linear weight read without a quantizer, with FaultConfig(float_bits=k)"

    def trace_through(self, model: nn.Module, cfg: FaultConfig) -> Iterable[nn.Module]:
        if cfg.float_bits is None:
            return []
        return [m for n, m in model.named_modules() if type(m) in _LAYERS and _width(cfg, n)]

    def candidate_layers(self, shadow: nn.Module, cfg: FaultConfig) -> Iterable[str]:
        if cfg.float_bits is None:
            return []
        return [n for n, m in shadow.named_modules() if isinstance(m, _LAYERS)]

    def match(self, node: fx.Node, ctx: MatchContext) -> SiteMatch | None:
        if ctx.cfg.float_bits is None or node.op != "call_function" or node.target not in _CONSUMERS:
            return None
        weight = node.args[1] if len(node.args) > 1 else node.kwargs.get("weight")
        if not isinstance(weight, fx.Node) or weight.op != "get_attr":
            return None
        w = ctx.tensor_of(weight)
        if not isinstance(w, nn.Parameter) or w.dim() < 2:
            return None
        layer = str(weight.target).rpartition(".")[0]
        bits = _width(ctx.cfg, layer)
        if bits is None:
            return None
        qmax = 2 ** (bits - 1) - 1
        qmin = -qmax
        if bits < 2:
            raise ConfigError(f"layer {layer!r}: fxfault's symmetric quantizer needs at least 2 bits")

        def build_quantizer(graph: fx.Graph, chain: ChainNodes) -> dict[str, fx.Node]:
            kwargs: dict[str, fx.node.Argument] = {"site": chain.site, "pass_": chain.pass_}
            s = graph.call_function(symmetric_scale, (weight, bits, 0), kwargs)
            out = graph.call_function(fake_quantize, (weight, s, qmin, qmax, 0), kwargs)
            return {"out": out, "scale": s}

        return SiteMatch(
            quantizer=self.name,
            layer=layer,
            node=None,
            bits=bits,
            qmin=qmin,
            qmax=qmax,
            shape=tuple(w.shape),
            grid=Grid(Read(built="scale")),
            build_quantizer=build_quantizer,
            weight=weight,
            consumer=node,
            axis=0,
            stored=str(weight.target),
        )
