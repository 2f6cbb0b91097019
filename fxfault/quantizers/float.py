"""fxfault's own weight quantizer for plain float layers (opt-in: ``FaultConfig(float_bits=8)``).

With ``float_bits`` set, the tracer opens ``nn.Conv1d/2d/3d`` and ``nn.Linear`` so that their
weights appear in the graph, and every conv/linear whose weight is a parameter read directly
(no quantizer of its own) gets fxfault's quantizer in front of the chain: per-channel symmetric
(``step = max|w_c| / (2^(k-1) - 1)``, codes ``round(w * (1 / step))`` in
``[-(2^(k-1)-1), 2^(k-1)-1]``, as torch.ao's fused fake-quantize computes them) with a
straight-through gradient. The width comes from the ``bits`` globs (``bits={"layer1.*": 4}``)
and otherwise from ``float_bits`` (itself per layer).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from .. import ops
from ..config import FaultConfig
from .base import MatchContext, QuantizerAdapter, SiteMatch

__all__ = ["FloatAdapter"]

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
            from ..errors import ConfigError

            raise ConfigError(f"layer {layer!r}: fxfault's symmetric quantizer needs at least 2 bits")
        holder: dict[str, fx.Node] = {}

        layout = (-1,) + (1,) * (w.dim() - 1)

        def build_quantizer(graph: fx.Graph) -> fx.Node:
            kwargs: dict[str, fx.node.Argument] = {"cache": True} if ctx.cfg.cache else {}
            s = graph.call_function(ops.symmetric_scale, (weight, bits, 0), kwargs)
            holder["scale"] = s
            return graph.call_function(ops.fake_quantize, (weight, s, qmin, qmax, 0))

        def build_grid(graph: fx.Graph) -> tuple[fx.Node, fx.Node | None]:
            return graph.call_method("reshape", (holder["scale"], layout)), None

        return SiteMatch(
            adapter=self.name,
            layer=layer,
            node=None,
            bits=bits,
            qmin=qmin,
            qmax=qmax,
            shape=tuple(w.shape),
            build_grid=build_grid,
            build_quantizer=build_quantizer,
            weight=weight,
            consumer=node,
            axis=0,
        )
