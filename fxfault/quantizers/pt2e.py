"""Adapter for PT2E graphs (``torch.export`` + ``prepare_pt2e`` / ``convert_pt2e``).

After ``convert_pt2e`` a weight is an integer tensor (``get_attr``, when folded) or the output
of a ``quantize_per_channel`` / ``quantize_per_tensor`` node (when not folded), feeding a
``quantized_decomposed.dequantize_per_*`` node. The codes already exist, so the site is a
single flip node on that integer path, right before the dequantize node. Layer names come from
the ``nn_module_stack`` metadata of the op that consumes the dequantized weight.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx

from ..errors import UnsupportedQuantizerError
from .base import MatchContext, QuantizerAdapter, SiteMatch
from .torch_ao import bits_for_range

__all__ = ["PT2EAdapter"]


def _packet(name: str) -> Any:
    try:
        import torch.ao.quantization.fx._decomposed
    except Exception:  # pragma: no cover - very old or trimmed builds
        return None
    ns = getattr(torch.ops, "quantized_decomposed", None)
    return getattr(ns, name, None) if ns is not None else None


def _is(node: Any, name: str) -> bool:
    if not isinstance(node, fx.Node) or node.op != "call_function":
        return False
    packet = getattr(node.target, "_overloadpacket", node.target)
    want = _packet(name)
    return want is not None and packet is want


class PT2EAdapter(QuantizerAdapter):
    """Integer weights feeding ``quantized_decomposed.dequantize_per_{channel,tensor}``."""

    name = "pt2e"

    def describe(self) -> str:
        return "pt2e: an integer weight feeding quantized_decomposed.dequantize_per_* (convert_pt2e)"

    def match(self, node: fx.Node, ctx: MatchContext) -> SiteMatch | None:
        per_channel = _is(node, "dequantize_per_channel")
        if not (per_channel or _is(node, "dequantize_per_tensor")):
            return None
        src = node.args[0]
        if not isinstance(src, fx.Node):
            return None
        codes_t = ctx.tensor_of(src)
        if codes_t is not None:
            shape = tuple(codes_t.shape)
            stored = str(src.target)
        elif _is(src, "quantize_per_channel") or _is(src, "quantize_per_tensor"):
            w = ctx.tensor_of(src.args[0])
            if w is None:
                return None  # an activation: quantize of a computed value
            shape = tuple(w.shape)
            stored = str(src.args[0].target)  # type: ignore[union-attr]
        else:
            return None
        args = list(node.args) + [None] * 8
        if per_channel:
            axis, qmin, qmax, dtype = args[3], args[4], args[5], args[6]
        else:
            axis, qmin, qmax, dtype = None, args[3], args[4], args[5]
        dtype = node.kwargs.get("dtype", dtype)
        if not isinstance(qmin, int) or not isinstance(qmax, int):
            raise UnsupportedQuantizerError(
                f"{node.format_node()}: the code range is not static; fxfault needs it fixed"
            )
        if dtype is not None and dtype not in (torch.int8, torch.uint8, torch.int16, torch.int32):
            raise UnsupportedQuantizerError(f"{node.format_node()}: codes of dtype {dtype} are not supported")
        bits = bits_for_range(qmin, qmax)
        if bits > 16:
            raise UnsupportedQuantizerError(f"{node.format_node()}: {bits}-bit codes; fxfault supports 1..16")
        return SiteMatch(
            quantizer=self.name,
            layer=_layer_name(node),
            node=src,
            bits=bits,
            qmin=qmin,
            qmax=qmax,
            shape=shape,
            domain="int",
            consumer=node,
            axis=int(axis) if isinstance(axis, int) else None,
            stored=stored,
        )


def _layer_name(deq: fx.Node) -> str:
    """The module path of the op that consumes the dequantized weight (or the node's name)."""
    for user in deq.users:
        stack = user.meta.get("nn_module_stack")
        if stack:
            path = list(stack.values())[-1][0]
            if isinstance(path, str) and path:
                return path.replace("L['self'].", "").replace("L__self___", "")
    src = deq.args[0]
    return str(src.target) if isinstance(src, fx.Node) and src.op == "get_attr" else deq.name
