"""Adapter for brevitas layers (``QuantConv2d``, ``QuantLinear``, ...).

brevitas' weight quantizer is a ``WeightQuantProxy`` module returning a ``QuantTensor``. The
tracer keeps ``brevitas.proxy`` / ``brevitas.core`` modules whole, which exposes
``call_module <layer>.weight_quant``. The site reads the quantized float weight (``.value``),
the ``scale`` and ``zero_point`` of that QuantTensor live; the width and signedness come from the
proxy (``bit_width()``, ``is_signed``, ``is_narrow_range``) when transforming. The layer's op
then reads the faulted weight; other readers of the QuantTensor (the bias quantizer, which
derives its scale from the weight's) keep the clean one.

brevitas is never imported by fxfault: the adapter only looks for it when the model's modules
come from it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

import torch
from torch import fx, nn

from ..config import FaultConfig
from ..errors import UnsupportedQuantizerError
from .base import ChainNodes, Grid, MatchContext, QuantizerAdapter, Read, SiteMatch

__all__ = ["BrevitasAdapter"]


def _from_brevitas(m: Any, *packages: str) -> bool:
    mod = type(m).__module__
    return any(mod.startswith(p) for p in packages)


def _weight_proxy_types() -> tuple[type, ...]:
    if "brevitas" not in sys.modules:
        return ()
    try:
        from brevitas.proxy.parameter_quant import WeightQuantProxyFromInjectorBase
    except Exception:  # pragma: no cover - other brevitas layouts
        return ()
    return (WeightQuantProxyFromInjectorBase,)


class BrevitasAdapter(QuantizerAdapter):
    """``weight_quant`` proxies of brevitas layers."""

    name = "brevitas"

    def describe(self) -> str:
        return "brevitas: the weight_quant proxy of a brevitas Quant* layer"

    def leaf_modules(self, model: nn.Module) -> Iterable[nn.Module]:
        if "brevitas" not in sys.modules:
            return []
        return [m for m in model.modules() if _from_brevitas(m, "brevitas.proxy", "brevitas.core")]

    def candidate_layers(self, shadow: nn.Module, cfg: FaultConfig) -> Iterable[str]:
        types = _weight_proxy_types()
        if not types:
            return []
        return [n for n, m in shadow.named_modules() if isinstance(getattr(m, "weight_quant", None), types)]

    def match(self, node: fx.Node, ctx: MatchContext) -> SiteMatch | None:
        types = _weight_proxy_types()
        if not types or node.op != "call_module":
            return None
        target = str(node.target)
        proxy = ctx.module(target)
        if not isinstance(proxy, types):
            return None
        layer = target.rpartition(".")[0]
        where = f"layer {layer!r} ({type(proxy).__name__})"
        if not getattr(proxy, "is_quant_enabled", True):
            return None
        consumers = [u for u in node.users if u.op == "call_function" and u.target in _WEIGHT_OPS]
        if len(consumers) != 1:
            raise UnsupportedQuantizerError(
                f"{where}: expected one conv/linear reading the quantized weight, found "
                f"{[u.format_node() for u in node.users]}; register an adapter with "
                "fxfault.register_quantizer(...)"
            )
        try:
            bits = int(float(proxy.bit_width()))  # type: ignore[operator]
            signed = bool(proxy.is_signed)
            narrow = bool(proxy.is_narrow_range)
        except Exception as e:
            raise UnsupportedQuantizerError(
                f"{where}: cannot read bit_width/is_signed/is_narrow_range ({e}); register an "
                "adapter with fxfault.register_quantizer(...)"
            ) from e
        if not 1 <= bits <= 16:
            raise UnsupportedQuantizerError(f"{where}: {bits}-bit weights; fxfault supports 1..16 bits")
        if signed:
            qmax = 2 ** (bits - 1) - 1
            qmin = -qmax if narrow else -(2 ** (bits - 1))
        else:
            qmin, qmax = 0, 2**bits - 1 - int(narrow)
        weight = ctx.attr(f"{layer}.weight") if layer else None
        if not isinstance(weight, torch.Tensor):
            raise UnsupportedQuantizerError(f"{where}: cannot find the layer's weight parameter")

        def build_quantizer(graph: fx.Graph, chain: ChainNodes) -> dict[str, fx.Node]:
            return {"out": graph.call_function(getattr, (node, "value"))}

        return SiteMatch(
            quantizer=self.name,
            layer=layer,
            node=None,
            bits=bits,
            qmin=qmin,
            qmax=qmax,
            shape=tuple(weight.shape),
            grid=Grid(Read(field=(node, "scale")), Read(field=(node, "zero_point"))),
            build_quantizer=build_quantizer,
            weight=node,
            consumer=consumers[0],
            quantizer_module=target,
            stored=f"{layer}.weight",
        )


_WEIGHT_OPS: set[Any] = {
    torch.conv1d,
    torch.conv2d,
    torch.conv3d,
    torch.conv_transpose1d,
    torch.conv_transpose2d,
    torch.conv_transpose3d,
    torch.nn.functional.linear,
    torch._C._nn.linear,
}
