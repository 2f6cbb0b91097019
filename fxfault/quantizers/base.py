"""What a quantizer adapter is, and the record it returns for each weight quantizer it finds.

An adapter answers, for one quantizer family: *is this graph node a weight quantizer? For which
layer? With what scale, zero point, code range and bit width?* It can also ask the tracer to keep
modules whole (its quantizers) or to trace through them (layers that hide a weight), and it may
set attributes on the tracer's private copy of the model before tracing (never on the model).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn

from ..config import FaultConfig

__all__ = ["GridBuilder", "MatchContext", "QuantizerAdapter", "SiteMatch", "codes_dtype"]

#: ``build(graph) -> (scale_node, zero_point_node_or_None)``; called with the graph's insertion
#: point right after the quantizer node, so new nodes land there.
GridBuilder = Callable[[fx.Graph], "tuple[fx.Node, fx.Node | None]"]


def codes_dtype(bits: int, signed: bool) -> torch.dtype:
    """The smallest integer dtype that holds every ``bits``-bit value (signed or not)."""
    if signed:
        return torch.int8 if bits <= 8 else torch.int16 if bits <= 16 else torch.int32
    return torch.uint8 if bits <= 8 else torch.int32


@dataclass
class SiteMatch:
    """One weight quantizer found in the graph.

    ``domain="float"``: ``node`` outputs the quantized float weight; the pass inserts
    quantize -> flip -> dequantize -> straight-through after it. ``domain="int"``: ``node``
    outputs integer codes already (PT2E); the pass inserts flip between it and ``consumer``.
    With ``build_quantizer`` (plain float layers) the pass first builds the quantizer node
    between ``weight`` and ``consumer``.
    """

    adapter: str
    layer: str
    node: fx.Node | None
    bits: int
    qmin: int
    qmax: int
    shape: tuple[int, ...]
    build_grid: GridBuilder | None = None
    domain: str = "float"
    consumer: fx.Node | None = None
    axis: int | None = None
    quantizer: str | None = None  # qualified name of the quantizer module, if any
    #: for layers without a quantizer (fxfault's own): builds the quantizer node in front of
    #: ``consumer`` from ``weight``; ``node`` is ``None`` until then
    build_quantizer: Callable[[fx.Graph], fx.Node] | None = None
    weight: fx.Node | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def signed(self) -> bool:
        return self.qmin < 0


class MatchContext:
    """What an adapter may look at while matching: the traced graph and the model copy."""

    def __init__(self, root: nn.Module, graph: fx.Graph, cfg: FaultConfig) -> None:
        self.root = root
        self.graph = graph
        self.cfg = cfg
        self._modules = dict(root.named_modules(remove_duplicate=False))

    def module(self, target: str) -> nn.Module:
        return self._modules[target] if target in self._modules else self.root.get_submodule(target)

    def attr(self, target: str) -> Any:
        obj: Any = self.root
        for part in target.split("."):
            obj = getattr(obj, part)
        return obj

    def tensor_of(self, node: Any) -> torch.Tensor | None:
        """The tensor a ``get_attr`` node reads, or ``None`` for any other node."""
        if isinstance(node, fx.Node) and node.op == "get_attr":
            value = self.attr(str(node.target))
            if isinstance(value, torch.Tensor):
                return value
        return None


class QuantizerAdapter:
    """Base class of quantizer adapters. Subclasses override what they need."""

    #: short name shown in site tables (``"lsq"``, ``"torch.ao"``, ...)
    name: str = "base"

    def leaf_modules(self, model: nn.Module) -> Iterable[nn.Module]:
        """Modules the tracer must keep whole (this family's quantizers)."""
        return ()

    def trace_through(self, model: nn.Module, cfg: FaultConfig) -> Iterable[nn.Module]:
        """Modules the tracer must trace into even though torch.fx would keep them whole."""
        return ()

    def prepare(self, shadow: nn.Module, cfg: FaultConfig) -> None:
        """Set trace-time attributes on the tracer's private copy of the model."""

    def candidate_layers(self, shadow: nn.Module, cfg: FaultConfig) -> Iterable[str]:
        """Layer names this adapter could turn into sites (used to check config patterns)."""
        return ()

    def match(self, node: fx.Node, ctx: MatchContext) -> SiteMatch | None:
        """Return a :class:`SiteMatch` if ``node`` is a weight quantizer of this family."""
        return None

    def describe(self) -> str:
        """One line saying what this adapter looks for (shown when no site is found)."""
        return self.name
