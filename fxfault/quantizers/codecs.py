"""Codecs: how a site's stored value becomes integer codes in the graph, and comes back.

A chain is ``value -> encode -> flip -> decode [-> straight_through]``. The codec of a site says
which nodes ``encode`` and ``decode`` are:

* :class:`GridCodec` — a quantizer's float output on an integer grid: ``fxfault.ops.quantize``
  and ``fxfault.ops.dequantize`` with the grid's scale and zero point;
* :class:`IntCodec` — the value already is integer codes (PT2E): no encode, no decode, the
  consumer reads the flipped codes.

Other families add codecs (float formats, integer weights inside tensor subclasses or packed
modules); every encode/decode op is registered in :data:`ENCODE_OPS` / :data:`DECODE_OPS` so
that :func:`fxfault.graph.chains.find_chains` recognises the chain in any graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from torch import fx

from .. import ops
from ..errors import AdapterError
from .base import Grid, SiteMatch, codes_dtype

__all__ = ["DECODE_OPS", "ENCODE_OPS", "ChainContext", "Codec", "GridCodec", "IntCodec", "codec_of"]

#: graph functions that encode a stored value into codes, or decode codes back
ENCODE_OPS: set[Any] = {ops.quantize}
DECODE_OPS: set[Any] = {ops.dequantize}


class ChainContext(NamedTuple):
    """What encode/decode nodes may pass to their ops: the site (a ``get_attr`` node), the pass
    token, and the stored tensors the clean codes depend on (``None``: an input)."""

    site: fx.Node
    pass_: fx.Node
    sources: list[fx.Node] | None


class Codec:
    """Base class (see the module docstring)."""

    #: a straight-through node follows decode (the value carries a gradient)
    straight_through: bool = True

    def emit_grid(self, graph: fx.Graph, built: dict[str, fx.Node]) -> dict[str, fx.Node]:
        """Nodes that encode and decode read (``{"scale": ..., "zero_point": ...}``)."""
        return {}

    def encode(self, graph: fx.Graph, value: fx.Node, ctx: ChainContext) -> fx.Node:
        return value

    def decode(self, graph: fx.Graph, flipped: fx.Node, codes: fx.Node, value: fx.Node,
               ctx: ChainContext) -> fx.Node:
        return flipped


@dataclass
class GridCodec(Codec):
    """Codes ``clamp(round(x / scale) + zero_point, qmin, qmax)`` of a quantizer's output."""

    grid: Grid
    qmin: int
    qmax: int
    bits: int

    def __post_init__(self) -> None:
        self._grid: dict[str, fx.Node] = {}

    def emit_grid(self, graph: fx.Graph, built: dict[str, fx.Node]) -> dict[str, fx.Node]:
        scale, zp = self.grid.emit(graph, built)
        self._grid = {"scale": scale} | ({"zero_point": zp} if zp is not None else {})
        return self._grid

    def encode(self, graph: fx.Graph, value: fx.Node, ctx: ChainContext) -> fx.Node:
        dtype = codes_dtype(self.bits, self.qmin < 0)
        return graph.call_function(
            ops.quantize,
            (value, self._grid["scale"], self._grid.get("zero_point"), self.qmin, self.qmax, dtype),
            {"site": ctx.site, "sources": ctx.sources, "pass_": ctx.pass_},
        )

    def decode(self, graph: fx.Graph, flipped: fx.Node, codes: fx.Node, value: fx.Node,
               ctx: ChainContext) -> fx.Node:
        return graph.call_function(
            ops.dequantize,
            (flipped, self._grid["scale"], self._grid.get("zero_point"), value, codes),
            {"site": ctx.site, "pass_": ctx.pass_},
        )


class IntCodec(Codec):
    """The value is integer codes already: the consumer reads the flipped codes."""

    straight_through = False


def codec_of(m: SiteMatch) -> Codec:
    """The codec of a match: its own, or the one its ``domain`` implies."""
    if m.codec is not None:
        return m.codec  # type: ignore[no-any-return]
    if m.domain == "int":
        return IntCodec()
    if m.grid is None:
        raise AdapterError(
            f"the {m.quantizer!r} quantizer adapter returned a float-domain site without a grid "
            f"(layer {m.layer!r}); this is a bug in the adapter, not in your model"
        )
    return GridCodec(m.grid, m.qmin, m.qmax, m.bits)
