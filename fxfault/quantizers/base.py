"""What a quantizer adapter is, and the record it returns for each quantizer it finds.

An adapter answers, for one quantizer family: *is this graph node a quantizer? For which stored
tensor? With what scale, zero point, code range and bit width?* It can also ask the tracer to
keep modules whole (its quantizers) or to trace through them (layers that hide a weight), and it
may set attributes on the tracer's private copy of the model before tracing (never on the model).

Where the grid lives is described declaratively (:class:`Grid` of :class:`Read`), so that one
piece of code (:mod:`fxfault.graph.chains`) builds the graph nodes for every family.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import fx, nn

from ..config import FaultConfig

__all__ = [
    "ChainNodes",
    "Grid",
    "MatchContext",
    "QuantizerAdapter",
    "Read",
    "SiteMatch",
    "codes_dtype",
    "layout_along",
]


def codes_dtype(bits: int, signed: bool) -> torch.dtype:
    """The smallest integer dtype that holds every ``bits``-bit value (signed or not)."""
    if signed:
        return torch.int8 if bits <= 8 else torch.int16 if bits <= 16 else torch.int32
    return torch.uint8 if bits <= 8 else torch.int32


def layout_along(axis: int, ndim: int) -> tuple[int, ...]:
    """The shape that makes a 1-D per-channel tensor broadcast along ``axis`` of an
    ``ndim``-dimensional tensor: ``(-1, 1, 1, 1)`` for axis 0 of a conv weight."""
    return tuple(-1 if d == axis else 1 for d in range(ndim))


@dataclass(frozen=True)
class Read:
    """How the graph reads one tensor of a grid, exactly one of:

    * ``attr``: a stored tensor, ``get_attr attr`` (``"conv.weight_fake_quant.scale"``);
    * ``method``: a call of a module's method, ``(module target, name, args, kwargs)``
      (``("conv.quan_w_fn", "get_scale", (4,), {"detach": True})``);
    * ``field``: an attribute of a node's value, ``(node, name)`` (a QuantTensor's ``scale``);
    * ``node``: an existing node;
    * ``built``: the node of that name made by :attr:`SiteMatch.build_quantizer`.
    """

    attr: str | None = None
    method: tuple[str, str, tuple[Any, ...], dict[str, Any]] | None = None
    field: tuple[fx.Node, str] | None = None
    node: fx.Node | None = None
    built: str | None = None

    def emit(self, graph: fx.Graph, built: dict[str, fx.Node]) -> fx.Node:
        if self.attr is not None:
            return graph.get_attr(self.attr)
        if self.method is not None:
            target, name, args, kwargs = self.method
            return graph.call_method(name, (graph.get_attr(target), *args), dict(kwargs))
        if self.field is not None:
            return graph.call_function(getattr, self.field)
        if self.node is not None:
            return self.node
        if self.built is not None and self.built in built:
            return built[self.built]
        raise ValueError(f"{self!r} names nothing to read")


@dataclass(frozen=True)
class Grid:
    """Where a site's grid lives: the scale, the zero point (``None`` for symmetric codes), and
    the shape that makes per-channel tensors broadcast over the stored tensor (or ``None``)."""

    scale: Read
    zero_point: Read | None = None
    layout: tuple[int, ...] | None = None

    def emit(self, graph: fx.Graph, built: dict[str, fx.Node]) -> tuple[fx.Node, fx.Node | None]:
        s = self.scale.emit(graph, built)
        z = self.zero_point.emit(graph, built) if self.zero_point is not None else None
        if self.layout is not None:
            s = graph.call_method("reshape", (s, self.layout))
            if z is not None:
                z = graph.call_method("reshape", (z, self.layout))
        return s, z


class ChainNodes(NamedTuple):
    """Nodes a quantizer built by fxfault may pass to its ops: the site and the pass token."""

    site: fx.Node
    pass_: fx.Node


@dataclass
class SiteMatch:
    """One quantizer found in the graph.

    The chain's encode and decode nodes come from ``codec``, or from ``domain``:
    ``domain="float"``: ``node`` outputs the quantized float tensor; the pass inserts
    quantize -> flip -> dequantize -> straight-through after it. ``domain="int"``: ``node``
    outputs integer codes already (PT2E); the pass inserts flip between it and ``consumer``.
    With ``build_quantizer`` (plain float layers) the pass first builds the quantizer in front
    of ``consumer`` from ``weight``: ``build_quantizer(graph, chain)`` returns the quantized
    output and any nodes the grid reads (``{"out": ..., "scale": ...}``).

    :ivar quantizer: the quantizer family (``"lsq"``, ``"torch.ao"``, ...).
    :ivar layer: the module name the site is named after.
    :ivar tensor: ``"weight"`` or ``"activation"``.
    :ivar stored: what identifies the stored tensor (a ``get_attr`` target): quantizers of the
        same stored tensor share one site.
    :ivar quantizer_module: qualified name of the quantizer module, if any.
    """

    quantizer: str
    layer: str
    node: fx.Node | None
    bits: int
    qmin: int
    qmax: int
    shape: tuple[int, ...]
    grid: Grid | None = None
    domain: str = "float"
    consumer: fx.Node | None = None
    axis: int | None = None
    quantizer_module: str | None = None
    build_quantizer: Callable[[fx.Graph, ChainNodes], dict[str, fx.Node]] | None = None
    weight: fx.Node | None = None
    tensor: str = "weight"
    stored: str | None = None
    #: a :class:`~fxfault.quantizers.codecs.Codec` for other families (default: from ``domain``)
    codec: Any = None
    #: the encoding the stored bits have whatever the config says (a float site's format)
    encoding: Any = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def signed(self) -> bool:
        return self.qmin < 0


class MatchContext:
    """What an adapter may look at while matching: the traced graph and the model copy."""

    def __init__(self, root: nn.Module, graph: fx.Graph, cfg: FaultConfig,
                 example_inputs: tuple[Any, ...] | None = None) -> None:
        self.root = root
        self.graph = graph
        self.cfg = cfg
        #: the ``example_inputs`` given to ``fxfault.transform`` (for calibration), if any
        self.example_inputs = example_inputs
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

    def trace_call(self, tracer: Any, module: nn.Module, forward: Any, args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> Any:
        """Trace a call of ``module`` this family needs handled specially (for example, wrap
        the output of a layer that returns a tensor subclass); ``NotImplemented`` lets the
        tracer call it as usual."""
        return NotImplemented

    def candidate_layers(self, shadow: nn.Module, cfg: FaultConfig) -> Iterable[str]:
        """Layer names this adapter could turn into sites (used to check config patterns)."""
        return ()

    def match(self, node: fx.Node, ctx: MatchContext) -> SiteMatch | None:
        """Return a :class:`SiteMatch` if ``node`` is a quantizer of this family."""
        return None

    def describe(self) -> str:
        """One line saying what this adapter looks for (shown when no site is found)."""
        return self.name
