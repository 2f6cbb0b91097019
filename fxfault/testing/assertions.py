"""Assertions for your own tests of a faulty graph's structure.

Both helpers raise ``AssertionError`` with the offending nodes (``node.format_node()``) in the
message, so a failing test says what is wrong with the graph.

Example::

    >>> from fxfault.testing.assertions import assert_fault_chain, assert_sites
    >>> faulty = fxfault.transform(lsq_small_cnn(), ber=1e-6)
    >>> assert_fault_chain(faulty)
    >>> assert_sites(faulty, layers=["conv*", "fc"], bits={"conv2": 4, "*": 8})
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from fnmatch import fnmatchcase
from typing import Any

from torch import fx, nn

from ..faults.site import BitFlip
from ..graph.access import fault_sites
from ..graph.chains import SITES_MODULE, Chain, find_chains

__all__ = ["assert_fault_chain", "assert_sites"]

_ORDER = ("quantize", "flip", "dequantize", "straight_through")


def _graph_module(gm: Any) -> fx.GraphModule:
    if not isinstance(gm, fx.GraphModule):
        raise TypeError(f"expected a GraphModule returned by fxfault.transform, got {type(gm).__name__}")
    return gm


def _fmt(node: Any) -> str:
    return str(node.format_node()) if isinstance(node, fx.Node) else repr(node)


def _is_op(node: Any, name: str) -> bool:
    from .. import ops

    return isinstance(node, fx.Node) and node.op == "call_function" and node.target is getattr(ops, name)


def _check_chain(chain: Chain) -> list[str]:
    """Problems of one site's chain, each with the offending node(s)."""
    site = chain.site
    name = chain.name
    flip = chain.nodes["flip"]
    if not isinstance(site, BitFlip):
        return [f"site {name!r}: {chain.target} is not a BitFlip module:\n    {_fmt(flip)}"]
    problems: list[str] = []
    if set(site.nodes) == {"flip"}:  # integer-domain site: codes -> flip -> consumer
        if not flip.users:
            problems.append(f"site {name!r}: nothing reads the flip output:\n    {_fmt(flip)}")
        return problems
    missing = [r for r in _ORDER if r not in chain.nodes]
    if missing:
        got = "\n    ".join(f"{r}: {_fmt(n)}" for r, n in chain.nodes.items() if r in _ORDER)
        src = flip.args[0] if flip.args else None
        hint = ""
        if "quantize" in missing:
            hint = f"\n  the flip reads {_fmt(src)} instead of a fxfault.ops.quantize node"
        return [
            f"site {name!r}: the chain quantize -> flip -> dequantize -> straight_through is "
            f"broken, missing {', '.join(missing)}; found:\n    {got}{hint}"
        ]
    q, deq, st = chain.nodes["quantize"], chain.nodes["dequantize"], chain.nodes["straight_through"]
    clean = chain.nodes.get("clean")
    if set(flip.users) != {deq}:
        others = "\n    ".join(_fmt(u) for u in flip.users if u is not deq)
        problems.append(f"site {name!r}: the flip output is read by more than the dequantize:\n    {others}")
    if set(deq.users) != {st}:
        others = "\n    ".join(_fmt(u) for u in deq.users if u is not st)
        problems.append(
            f"site {name!r}: the dequantize output is read by more than the straight-through:\n    {others}"
        )
    # every decode op takes (codes, ..., reference, reference_codes)
    if len(deq.args) < 3 or deq.args[-2] is not clean or deq.args[-1] is not q:
        problems.append(
            f"site {name!r}: the dequantize must read the quantizer output {_fmt(clean)} as its "
            f"reference and the quantize node as its reference codes:\n    {_fmt(deq)}"
        )
    if not st.args or st.args[0] is not clean:
        problems.append(
            f"site {name!r}: the straight-through must take the clean quantizer output "
            f"{_fmt(clean)} first:\n    {_fmt(st)}"
        )
    if not st.users:
        problems.append(f"site {name!r}: nothing reads the straight-through output:\n    {_fmt(st)}")
    if isinstance(clean, fx.Node):
        ours = {q, deq, st}
        leaks = [u for u in clean.users if u not in ours]
        if leaks:
            shown = "\n    ".join(_fmt(u) for u in leaks)
            problems.append(
                f"site {name!r}: these nodes read the raw quantizer output {clean.name} instead of "
                f"{st.name}, so they see no faults:\n    {shown}"
            )
    for role in _ORDER:
        rec = chain.nodes[role].meta.get("fxfault")
        if isinstance(rec, dict) and (rec.get("site") != name or rec.get("bits") != site.bits):
            problems.append(
                f"site {name!r}: node.meta['fxfault'] of the {role} node says site "
                f"{rec.get('site')!r}, {rec.get('bits')} bits (the site has {site.bits}):\n"
                f"    {_fmt(chain.nodes[role])}"
            )
    return problems


def assert_fault_chain(gm: nn.Module) -> None:
    """Assert that every fault site of ``gm`` has a complete, correctly wired chain.

    For each site: quantize -> flip -> dequantize -> straight_through, each reading the one
    before; the consumers read the straight-through output; and nothing but the quantize,
    dequantize and straight-through reads the raw quantizer output. Every site module is called
    by the graph, and every node whose ``node.meta["fxfault"]`` names a chain role belongs to a
    chain.

    Example::

        >>> assert_fault_chain(fxfault.transform(model, ber=1e-6))
    """
    gm = _graph_module(gm)
    container = getattr(gm, SITES_MODULE, None)
    if not isinstance(container, nn.Module):
        raise AssertionError(f"{type(gm).__name__} has no fault sites: it was not made by fxfault.transform")
    chains = find_chains(gm.graph, gm)
    problems: list[str] = []
    if not chains:
        problems.append(f"the graph of {type(gm).__name__} calls no fault site module")
    in_chain: set[fx.Node] = set()
    for chain in chains:
        problems += _check_chain(chain)
        in_chain.update(chain.nodes.values())
    called = {c.target for c in chains}
    for name, module in container.named_children():
        if isinstance(module, BitFlip) and f"{SITES_MODULE}.{name}" not in called:
            problems.append(f"site {module.name!r}: the graph never calls {SITES_MODULE}.{name}")
    for node in gm.graph.nodes:
        rec = node.meta.get("fxfault")
        if isinstance(rec, dict) and rec.get("role") in _ORDER and node not in in_chain:
            problems.append(
                f"site {rec.get('site')!r}: this {rec.get('role')} node is not part of the site's "
                f"chain:\n    {_fmt(node)}"
            )
    if problems:
        raise AssertionError(
            f"{len(problems)} problem{'s' if len(problems) != 1 else ''} with the fault chains "
            f"of {type(gm).__name__}:\n- " + "\n- ".join(problems)
        )


def _matches(name: str, pattern: str) -> bool:
    return name == pattern or fnmatchcase(name, pattern)


def _flip_node(gm: fx.GraphModule, site: BitFlip) -> str:
    for node in gm.graph.nodes:
        if node.op == "call_module" and gm.get_submodule(str(node.target)) is site:
            return str(node.format_node())
    return f"(no node calls site {site.name!r})"


def assert_sites(
    gm: nn.Module,
    layers: Collection[str] | None = None,
    bits: int | Mapping[str, int] | None = None,
) -> None:
    """Assert which sites ``gm`` has, and their bit widths.

    ``layers``: the site names (``fnmatch`` globs allowed) expected, in any order. Each entry
    must match a site, and every site must match an entry.
    ``bits``: one width for every site, or a mapping of site name or glob to width; each entry
    must match a site, an exact name wins over globs and the longest glob wins among globs.

    Example::

        >>> assert_sites(faulty, layers={"conv1", "conv2", "fc"}, bits={"conv2": 4, "*": 8})
    """
    gm = _graph_module(gm)
    if isinstance(layers, str):
        raise TypeError(f"layers must be a list or set of site names, got the string {layers!r}; "
                        f"write [{layers!r}]")
    sites = fault_sites(gm)
    names = [s.name for s in sites]
    problems: list[str] = []
    if layers is not None:
        patterns = list(layers)
        for p in patterns:
            if not any(_matches(n, p) for n in names):
                problems.append(f"expected a site matching {p!r}; the sites are {names}")
        for s in sites:
            if not any(_matches(s.name, p) for p in patterns):
                problems.append(f"unexpected site {s.name!r} (layer {s.layer!r}):\n    {_flip_node(gm, s)}")
    if bits is not None:
        if isinstance(bits, bool) or not isinstance(bits, (int, Mapping)):
            raise TypeError(f"bits must be an int or a mapping of site name/glob to int, got {bits!r}")
        table = {"*": bits} if isinstance(bits, int) else dict(bits)
        if not isinstance(bits, int):
            for p in table:
                if not any(_matches(n, p) for n in names):
                    problems.append(f"bits: {p!r} matches no site; the sites are {names}")
        for s in sites:
            want = _width_for(s.name, table)
            if want is not None and s.bits != want:
                problems.append(
                    f"site {s.name!r} has {s.bits} bits, expected {want}:\n    {_flip_node(gm, s)}"
                )
    if problems:
        raise AssertionError(
            f"{len(problems)} problem{'s' if len(problems) != 1 else ''} with the sites of "
            f"{type(gm).__name__}:\n- " + "\n- ".join(problems)
        )


def _width_for(name: str, table: Mapping[str, int]) -> int | None:
    if name in table:
        return table[name]
    hits = [p for p in table if fnmatchcase(name, p)]
    return table[max(hits, key=len)] if hits else None
