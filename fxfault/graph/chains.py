"""Insert the fault chains into a graph, and find them again in a graph.

Every transformed graph starts with the pass clock, ``fxfault_pass = self.fxfault_plan()``, and
holds one chain per site:

* *float* sites (a quantizer outputs floats on an integer grid)::

      q -> quantize -> flip -> dequantize -> straight_through -> consumers of q

* *int* sites (the codes exist already, as in PT2E graphs)::

      codes -> flip -> consumer

:func:`find_chains` reads the chains back from the graph alone (exports, diffs, assertions, and
re-annotating a graph that ``torch.load`` rebuilt from the generated code).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from torch import fx, nn

from .. import ops
from ..faults.plan import FaultPlan
from ..faults.site import BitFlip
from ..quantizers.base import ChainNodes, SiteMatch
from ..quantizers.codecs import DECODE_OPS, ENCODE_OPS, ChainContext, codec_of

__all__ = [
    "CHAIN_ROLES",
    "PASS_NODE",
    "PLAN_MODULE",
    "SITES_MODULE",
    "Chain",
    "annotate",
    "find_chains",
    "insert_chain",
    "insert_plan",
    "rewire_shared",
]

#: the submodule of a transformed ``GraphModule`` that holds the ``BitFlip`` sites
SITES_MODULE = "fxfault_sites"
#: the submodule holding the :class:`~fxfault.faults.plan.FaultPlan` (the pass clock)
PLAN_MODULE = "fxfault_plan"
#: the name of the node that starts every forward pass
PASS_NODE = "fxfault_pass"
CHAIN_ROLES = ("quantize", "flip", "dequantize", "straight_through")
_GRID_ROLES = ("scale", "zero_point", "site", "quantizer", "source")


def insert_plan(gm: fx.GraphModule, plan: FaultPlan) -> fx.Node:
    """Add the plan, and the ``fxfault_pass`` node before the first node that is not an input."""
    gm.add_submodule(PLAN_MODULE, plan)
    graph = gm.graph
    first = next(n for n in graph.nodes if n.op != "placeholder")
    with graph.inserting_before(first):
        return graph.create_node("call_module", PLAN_MODULE, (), {}, name=PASS_NODE)


def _stem(site: BitFlip) -> str:
    return site.name.replace(".", "_").replace("#", "_").replace(":", "_") + "_" + (
        "weight" if site.tensor == "weight" else "act"
    )


def node_names(site: BitFlip) -> dict[str, str]:
    stem = _stem(site)
    return {role: f"{stem}_{role}" for role in CHAIN_ROLES}


def _walk_sources(roots: Iterable[fx.Node], stop: set[fx.Node]) -> dict[str, fx.Node | None] | None:
    """What the clean value of a chain is a function of, by target: ``get_attr`` reads and
    called modules (a module stands for all its parameters and buffers), with an existing
    ``get_attr`` node where there is one. ``None`` when it depends on an input."""
    found: dict[str, fx.Node | None] = {}
    seen: set[fx.Node] = set()
    stack = list(roots)
    while stack:
        n = stack.pop()
        if n in seen or n in stop:
            continue
        seen.add(n)
        if n.op == "placeholder":
            return None
        if n.op == "get_attr":
            found[str(n.target)] = n
        elif n.op == "call_module":
            found.setdefault(str(n.target), None)
            stack.extend(n.all_input_nodes)
        elif n.op in ("call_function", "call_method"):
            stack.extend(n.all_input_nodes)
    return found


def _source_nodes(gm: fx.GraphModule, graph: fx.Graph, found: dict[str, fx.Node | None]) -> list[fx.Node]:
    """One node per source (a new ``get_attr`` for a module read only by a call); reads of a
    module's own tensors are covered by the module."""
    modules = [t for t in found if isinstance(gm.get_submodule(t) if _is_module(gm, t) else None, nn.Module)]
    nodes: list[fx.Node] = []
    for target, node in sorted(found.items()):
        if any(target.startswith(m + ".") for m in modules):
            continue
        if node is None:
            node = graph.get_attr(target)
        nodes.append(node)
    return nodes


def insert_chain(gm: fx.GraphModule, m: SiteMatch, site: BitFlip, target: str, pass_node: fx.Node) -> dict[str, fx.Node]:
    """Insert the chain of ``m`` for ``site`` (registered at ``target``); returns its nodes by
    role (``quantize`` and ``dequantize`` are the codec's encode and decode nodes)."""
    graph = gm.graph
    codec = codec_of(m)
    built: dict[str, fx.Node] = {}
    nodes: dict[str, fx.Node] = {}
    if m.build_quantizer is not None:
        if m.consumer is None or m.weight is None:
            raise _contract(m, "builds a quantizer without a weight and a consumer")
        with graph.inserting_before(m.consumer):
            nodes["site"] = graph.get_attr(target)
            built = m.build_quantizer(graph, ChainNodes(nodes["site"], pass_node))
        m.consumer.replace_input_with(m.weight, built["out"])
    q = built.get("out", m.node)
    if q is None:
        raise _contract(m, "returned a site without a node")
    # a built quantizer sits right before its consumer, and so does its chain
    where = m.consumer if m.build_quantizer is not None else q.next
    with graph.inserting_before(where):
        site_ref = nodes.get("site") or graph.get_attr(target)
        nodes["site"] = site_ref
        grid = codec.emit_grid(graph, built)
        found = _walk_sources([q, *grid.values()], {pass_node, site_ref}) if site.tensor == "weight" else None
        sources = _source_nodes(gm, graph, found) if found is not None else None
        ctx = ChainContext(site_ref, pass_node, sources)
        codes = codec.encode(graph, q, ctx)
        kwargs: dict[str, Any] = {"sources": sources} if codes is q and sources is not None else {}
        flip = graph.call_module(target, (codes, pass_node), kwargs)
        dec = codec.decode(graph, flip, codes, q, ctx)
        out = dec
        if codec.straight_through:
            out = graph.call_function(ops.straight_through, (q, dec, site.gradient == "zero_faulted"))
            nodes["straight_through"] = out
    site.cacheable = sources is not None
    ours = {codes, flip, dec, out, *nodes.values()}
    if m.consumer is not None and m.build_quantizer is None and not codec.straight_through:
        m.consumer.replace_input_with(q, out)
    else:
        q.replace_all_uses_with(out, delete_user_cb=lambda u: u not in ours)
    if codes is not q:
        nodes["quantize"] = codes
    nodes["flip"] = flip
    if dec is not flip:
        nodes["dequantize"] = dec
    nodes.update(grid)
    return nodes


def rewire_shared(m: SiteMatch, first: SiteMatch, nodes: dict[str, fx.Node]) -> None:
    """A later read of an already faulted stored tensor reads the first chain's output."""
    out = nodes.get("straight_through") or nodes.get("dequantize") or nodes["flip"]
    if m.build_quantizer is not None:
        if m.consumer is None or m.weight is None:
            raise _contract(m, "builds a quantizer without a weight and a consumer")
        m.consumer.replace_input_with(m.weight, out)
    elif m.consumer is not None and not codec_of(m).straight_through:
        if m.node is None:
            raise _contract(m, "returned a site without a node")
        m.consumer.replace_input_with(m.node, out)
    elif m.node is not None:
        m.node.replace_all_uses_with(out)


def _contract(m: SiteMatch, what: str) -> Exception:
    from ..errors import AdapterError

    return AdapterError(
        f"the {m.quantizer!r} quantizer adapter {what} (layer {m.layer!r}); this is a bug in "
        "the adapter, not in your model"
    )


# --------------------------------------------------------------------------------------------
# reading chains back
# --------------------------------------------------------------------------------------------
@dataclass
class Chain:
    """The nodes of one site's chain (roles that are missing are absent)."""

    target: str
    site: Any
    nodes: dict[str, fx.Node] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(getattr(self.site, "name", self.target))


def _is_op(node: Any, fns: set[Any]) -> bool:
    return isinstance(node, fx.Node) and node.op == "call_function" and node.target in fns


def _is_module(root: nn.Module, target: str) -> bool:
    try:
        root.get_submodule(target)
        return True
    except AttributeError:
        return False


def find_chains(graph: fx.Graph, root: nn.Module) -> list[Chain]:
    """One :class:`Chain` per ``call_module`` of a site, in graph order."""
    out: list[Chain] = []
    prefix = SITES_MODULE + "."
    for node in graph.nodes:
        if node.op != "call_module" or not str(node.target).startswith(prefix):
            continue
        try:
            site = root.get_submodule(str(node.target))
        except AttributeError:
            site = None
        chain = Chain(str(node.target), site, {"flip": node})
        src = node.args[0] if node.args else None
        if _is_op(src, ENCODE_OPS):
            chain.nodes["quantize"] = src  # type: ignore[assignment]
            chain.nodes["clean"] = src.args[0]  # type: ignore[union-attr,assignment]
            is_grid = src.target is ops.quantize  # type: ignore[union-attr]
            grid = src.args[1] if is_grid else None  # type: ignore[union-attr]
            if isinstance(grid, fx.Node):
                chain.nodes["scale"] = grid
            zp = src.args[2] if is_grid else None  # type: ignore[union-attr]
            if isinstance(zp, fx.Node):
                chain.nodes["zero_point"] = zp
            ref = src.kwargs.get("site")  # type: ignore[union-attr]
            if isinstance(ref, fx.Node) and ref.op == "get_attr":
                chain.nodes["site"] = ref
            for s in src.kwargs.get("sources") or ():  # type: ignore[union-attr]
                if isinstance(s, fx.Node) and len(s.users) == 1 and s.op == "get_attr":
                    chain.nodes.setdefault("source", s)
            if (
                isinstance(grid, fx.Node)
                and grid.op == "call_method"
                and isinstance(grid.args[0], fx.Node)
                and grid.args[0].op == "get_attr"
                and _is_module(root, str(grid.args[0].target))
            ):
                chain.nodes["quantizer"] = grid.args[0]
        elif isinstance(src, fx.Node):
            chain.nodes["codes"] = src
        for user in node.users:
            if _is_op(user, DECODE_OPS) and user.args[0] is node:
                chain.nodes["dequantize"] = user
                for u2 in user.users:
                    if _is_op(u2, {ops.straight_through}) and u2.args[1] is user:
                        chain.nodes["straight_through"] = u2
        out.append(chain)
    return out


def record(site: Any, role: str) -> dict[str, Any]:
    """The ``node.meta["fxfault"]`` record of a chain node."""
    return {
        "site": site.name,
        "layer": site.layer,
        "tensor": site.tensor,
        "quantizer": site.quantizer,
        "bits": site.bits,
        "role": role,
    }


def annotate(graph: fx.Graph, root: nn.Module) -> None:
    """Give chain nodes their readable names and ``node.meta["fxfault"]`` records."""
    for node in graph.nodes:
        if node.op == "call_module" and node.target == PLAN_MODULE and node.name != PASS_NODE:
            node._rename(PASS_NODE)
    for chain in find_chains(graph, root):
        site = chain.site
        if site is None:
            continue
        names = dict(getattr(site, "nodes", {}))
        for role, node in chain.nodes.items():
            if role in ("clean", "codes"):
                continue
            node.meta["fxfault"] = record(site, "grid" if role in _GRID_ROLES else role)
            want = names.get(role)
            if want is None and "flip" in names:
                want = names["flip"][: -len("_flip")] + "_" + role
            if want and node.name != want:
                node._rename(want)
