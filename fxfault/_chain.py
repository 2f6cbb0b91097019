"""Find the fault chains of a transformed graph, from the graph alone.

Used to (re)attach node names and ``node.meta["fxfault"]`` after ``torch.load`` (which rebuilds
the graph from the generated code) and by the inspection and assertion helpers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import fx, nn

__all__ = ["SITES_MODULE", "Chain", "annotate", "find_chains"]

#: name of the submodule of a transformed ``GraphModule`` that holds the ``BitFlip`` sites
SITES_MODULE = "fxfault_sites"

ROLES = ("quantize", "flip", "dequantize", "straight_through")


@dataclass
class Chain:
    """The nodes of one site's chain (``None`` where a node is missing)."""

    target: str
    site: Any
    nodes: dict[str, fx.Node] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(getattr(self.site, "name", self.target))


def _is_op(node: Any, name: str) -> bool:
    from . import ops

    return isinstance(node, fx.Node) and node.op == "call_function" and node.target is getattr(ops, name)


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
        if _is_op(src, "quantize"):
            chain.nodes["quantize"] = src  # type: ignore[assignment]
            chain.nodes["clean"] = src.args[0]  # type: ignore[union-attr,assignment]
            grid = src.args[1]  # type: ignore[union-attr]
            if isinstance(grid, fx.Node):
                chain.nodes["scale"] = grid
            zp = src.args[2]  # type: ignore[union-attr]
            if isinstance(zp, fx.Node):
                chain.nodes["zero_point"] = zp
            ref = src.kwargs.get("site")  # type: ignore[union-attr]
            if isinstance(ref, fx.Node) and ref.op == "get_attr":
                chain.nodes["site"] = ref
            if (
                isinstance(grid, fx.Node)
                and grid.op == "call_method"
                and isinstance(grid.args[0], fx.Node)
                and grid.args[0].op == "get_attr"
                and len(grid.args[0].users) == 1
                and _is_module(root, str(grid.args[0].target))
            ):
                chain.nodes["quantizer"] = grid.args[0]
        elif isinstance(src, fx.Node):
            chain.nodes["codes"] = src
        for user in node.users:
            if _is_op(user, "dequantize") and user.args[0] is node:
                chain.nodes["dequantize"] = user
                for u2 in user.users:
                    if _is_op(u2, "straight_through") and u2.args[1] is user:
                        chain.nodes["straight_through"] = u2
        out.append(chain)
    return out


def annotate(graph: fx.Graph, root: nn.Module) -> None:
    """Give chain nodes their readable names and ``node.meta["fxfault"]`` records."""
    for chain in find_chains(graph, root):
        site = chain.site
        if site is None:
            continue
        names = dict(getattr(site, "nodes", {}))
        base = {
            "site": site.name,
            "layer": site.layer,
            "bits": site.bits,
            "adapter": site.kind,
        }
        for role, node in chain.nodes.items():
            if role in ("clean", "codes"):
                continue
            node.meta["fxfault"] = dict(
                base, role="grid" if role in ("scale", "zero_point", "site", "quantizer") else role
            )
            want = names.get(role)
            if want is None and "flip" in names:
                want = names["flip"][: -len("_flip")] + "_" + role
            if want and node.name != want:
                node._rename(want)
