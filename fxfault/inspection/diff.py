"""What the pass inserted, site by site: the diff between a model and its faulty graph.

The diff is read from the fault chains of the faulty graph (the original model is never traced
or run): for each site, the nodes fxfault added, in graph order, with their roles, and the
consumers that now read the straight-through output instead of the quantizer's output.

Example::

    >>> faulty = fxfault.transform(model, ber=1e-6)
    >>> d = fxfault.diff(model, faulty)
    >>> [n.role for n in d.sites[0].inserted]
    ['grid', 'grid', 'grid', 'quantize', 'flip', 'dequantize', 'straight_through']
    >>> print(d)
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any, cast

from torch import fx, nn

from ..graph.access import fault_sites
from ..graph.chains import PASS_NODE, SITES_MODULE, find_chains
from ..quantizers import own
from .export import fault_records, target_text

__all__ = ["GraphDiff", "InsertedNode", "Rewire", "SiteDiff", "diff"]


@dataclass(frozen=True)
class InsertedNode:
    """A node that fxfault added to the graph."""

    name: str
    role: str
    op: str
    target: str
    code: str


@dataclass(frozen=True)
class Rewire:
    """A consumer (e.g. the conv) that now reads ``reads`` where it used to read ``was``."""

    consumer: str
    reads: str
    was: str
    code: str


@dataclass(frozen=True)
class SiteDiff:
    """The changes of one fault site."""

    site: str
    layer: str
    layer_type: str
    quantizer: str
    bits: int
    module: str
    quantizer_output: str
    inserted: tuple[InsertedNode, ...]
    rewired: tuple[Rewire, ...]

    @property
    def adapter(self) -> str:
        """Deprecated alias of :attr:`quantizer` (the quantizer family)."""
        warnings.warn("SiteDiff.adapter is deprecated; use SiteDiff.quantizer", DeprecationWarning, stacklevel=2)
        return self.quantizer


@dataclass(frozen=True)
class GraphDiff:
    """Every site's changes; ``print(diff)`` shows them as text."""

    model: str
    nodes_before: int
    nodes_after: int
    sites: tuple[SiteDiff, ...]
    #: the pass clock every transformed graph starts with (``fxfault_pass``)
    clock: InsertedNode | None = None

    @property
    def inserted(self) -> int:
        """The number of nodes fxfault added (the chains and the pass clock)."""
        return sum(len(s.inserted) for s in self.sites) + (self.clock is not None)

    @property
    def rewired(self) -> int:
        """The number of consumers that now read a fault chain's output."""
        return sum(len(s.rewired) for s in self.sites)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable data."""
        return asdict(self)

    def text(self) -> str:
        """The diff as readable lines (``+`` an inserted node, ``~`` a rewired consumer)."""
        n = len(self.sites)
        lines = [
            f"fxfault diff of {self.model}: {n} site{'s' if n != 1 else ''}, {self.inserted} nodes "
            f"inserted ({self.nodes_before} -> {self.nodes_after} nodes), {self.rewired} "
            f"consumer{'s' if self.rewired != 1 else ''} rewired, {n} module"
            f"{'s' if n != 1 else ''} added under {SITES_MODULE}"
        ]
        if self.clock is not None:
            lines.append(f"  + {self.clock.name}  {self.clock.role}  {self.clock.op} {self.clock.target}")
        for s in self.sites:
            lines.append("")
            lines.append(
                f"site {s.site} (layer {s.layer}: {s.layer_type}, {s.quantizer} quantizer, "
                f"{s.bits} bits), module {s.module}, after {s.quantizer_output}"
            )
            width = max((len(i.name) for i in s.inserted), default=0)
            for i in s.inserted:
                lines.append(f"  + {i.name.ljust(width)}  {i.role:<16}  {i.op} {i.target}")
            for r in s.rewired:
                lines.append(f"  ~ {r.consumer} now reads {r.reads} instead of {r.was}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()


def _inserted(node: fx.Node, role: str) -> InsertedNode:
    return InsertedNode(node.name, role, node.op, target_text(node), str(node.format_node()))


def _own_quantizer(node: fx.Node) -> bool:
    return node.op == "call_function" and node.target in (own.fake_quantize, own.symmetric_scale)


def diff(model: nn.Module, gm: nn.Module) -> GraphDiff:
    """What :func:`fxfault.transform` inserted into ``gm`` (made from ``model``), site by site.

    Neither argument is changed. ``model`` gives the layers' classes and is checked to hold
    every site's layer; a ``ValueError`` says so when ``gm`` was made from another model.

    Example::

        >>> d = fxfault.diff(model, fxfault.transform(model, ber=1e-6))
        >>> d.sites[0].rewired[0].reads
        'conv1_weight_straight_through'
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"diff needs the original nn.Module first, got {type(model).__name__}")
    site_modules = fault_sites(gm)  # raises TypeError for a model fxfault did not transform
    gm = cast(fx.GraphModule, gm)
    order = {n: i for i, n in enumerate(gm.graph.nodes)}
    records = fault_records(gm)
    by_site: dict[str, list[fx.Node]] = {}
    for node, rec in records.items():
        by_site.setdefault(str(rec.get("site")), []).append(node)
    chains = {c.name: c for c in find_chains(gm.graph, gm)}
    out: list[SiteDiff] = []
    for site in site_modules:
        try:
            layer_type = type(model.get_submodule(site.layer)).__name__
        except AttributeError:
            raise ValueError(
                f"site {site.name!r} is layer {site.layer!r}, which {type(model).__name__} does "
                "not have; pass the model that fxfault.transform was given"
            ) from None
        chain = chains.get(site.name)
        members = set(by_site.get(site.name, []))
        if chain is not None:
            members |= {n for r, n in chain.nodes.items() if r not in ("clean", "codes")}
        ordered = sorted(members, key=order.__getitem__)
        inserted = tuple(_inserted(n, records.get(n, {}).get("role", "grid")) for n in ordered)
        source: fx.Node | None = None
        last: fx.Node | None = None
        if chain is not None:
            source = chain.nodes.get("clean") or chain.nodes.get("codes")
            last = chain.nodes.get("straight_through") or (
                chain.nodes.get("flip") if "quantize" not in chain.nodes else None
            )
        was = source.name if source is not None else "?"
        if source is not None and _own_quantizer(source):  # fxfault's own quantizer (float_bits)
            inserted = (_inserted(source, "quantizer"), *inserted)
            members.add(source)
            weight = source.args[0] if source.args else None
            was = weight.name if isinstance(weight, fx.Node) else was
            source = weight if isinstance(weight, fx.Node) else source
        rewired: tuple[Rewire, ...] = ()
        if last is not None:
            rewired = tuple(
                Rewire(u.name, last.name, was, str(u.format_node())) for u in last.users if u not in members
            )
        out.append(
            SiteDiff(
                site=site.name,
                layer=site.layer,
                layer_type=layer_type,
                quantizer=site.quantizer,
                bits=site.bits,
                module=chain.target if chain is not None else "",
                quantizer_output=source.name if source is not None else "?",
                inserted=inserted,
                rewired=rewired,
            )
        )
    clock = next((_inserted(n, "pass") for n in gm.graph.nodes if n.name == PASS_NODE), None)
    total = len(gm.graph.nodes)
    added = sum(len(s.inserted) for s in out) + (clock is not None)
    return GraphDiff(type(model).__name__, total - added, total, tuple(out), clock)
