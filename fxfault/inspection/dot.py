"""Write a graph from :func:`fxfault.export.to_networkx` as Graphviz DOT text (no pydot needed).

Fault nodes are filled in one colour per role, each site's nodes sit in a box labelled with the
site and its bit width, and a legend explains the colours.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["ROLE_STYLE", "to_dot"]

#: role -> (fill colour, border colour, font colour)
ROLE_STYLE: dict[str, tuple[str, str, str]] = {
    "quantize": ("#90caf9", "#0d47a1", "#000000"),
    "flip": ("#e53935", "#7f0000", "#ffffff"),
    "dequantize": ("#a5d6a7", "#1b5e20", "#000000"),
    "straight_through": ("#ffe082", "#e65100", "#000000"),
    "grid": ("#eceff1", "#78909c", "#37474f"),
    "pass": ("#e1bee7", "#4a148c", "#000000"),
    "other": ("#ffffff", "#9e9e9e", "#212121"),
}
_IO_FILL = "#e0e0e0"
_COLLAPSED_FILL = "#f5f5f5"
_FAULT_EDGE = "#b71c1c"
_EDGE = "#757575"


def _html(text: Any) -> str:
    return (
        str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def _quote(text: Any) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _shape_text(shape: Any, dtype: Any) -> str:
    """``2×3×8×8 float32``; several outputs are separated by commas."""
    if shape is None:
        return ""
    if isinstance(shape, (tuple, list)) and all(isinstance(s, int) for s in shape):
        dims = "\u00d7".join(str(s) for s in shape) if shape else "scalar"
        dt = str(dtype).replace("torch.", "") if dtype is not None else ""
        return f"{dims} {dt}".strip()
    if isinstance(shape, (tuple, list)):
        dtypes = list(dtype) if isinstance(dtype, (tuple, list)) else [dtype] * len(shape)
        parts = [_shape_text(s, d) for s, d in zip(shape, dtypes)]
        return _short(", ".join(p for p in parts if p))
    return _short(str(shape))


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _node_lines(d: Mapping[str, Any], stem: str = "") -> tuple[str, list[str]]:
    """The bold title and the small lines of a node's label (``stem`` shortens chain names)."""
    op, role = d.get("op", ""), d.get("role", "other")
    name = str(d.get("name", ""))
    target = str(d.get("target", ""))
    if op == "collapsed":
        n = d.get("count", 0)
        return f"\u2026 {n} node{'s' if n != 1 else ''}", [_short(target)]
    title = "\u2026" + name[len(stem) :] if stem and name.startswith(stem) and name != stem else name
    lines: list[str] = []
    if role == "flip":
        lines.append(f"BitFlip \u00b7 {d.get('bits')} bits")
        if d.get("rates"):
            lines.append(f"rates {d['rates']}")
    elif role in ("quantize", "dequantize", "straight_through"):
        if title == name:  # not shortened inside a site's box: say what it is
            lines.append(f"{role.replace('_', '-')} \u00b7 {d.get('bits')} bits")
    elif role == "grid" and target.startswith("fxfault_sites."):
        lines.append("the site module")
    elif role == "grid" or op in ("call_function", "call_method"):
        if target != name and (op != "get_attr" or target.replace(".", "_") != name):
            lines.append(_short(target))
    elif op == "call_module":
        module = d.get("module")
        same = target.replace(".", "_") == name
        lines.append(_short(str(module) if same and module else f"{target}: {module}" if module else target))
    elif op == "get_attr" and target.replace(".", "_") != name:
        lines.append(_short(target))
    shape = _shape_text(d.get("shape"), d.get("dtype"))
    if shape:
        lines.append(shape)
    return title, lines


def _node_stmt(node: str, d: Mapping[str, Any], stem: str = "") -> str:
    title, lines = _node_lines({"name": node, **d}, stem)
    role = d.get("role", "other")
    op = d.get("op", "")
    fill, border, font = ROLE_STYLE.get(role, ROLE_STYLE["other"])
    tooltip = f"{node}: {d.get('op', '')} {d.get('target', '')}".strip()
    attrs = {"fillcolor": fill, "color": border, "fontcolor": font, "tooltip": tooltip}
    small = "".join(f'<br/><font point-size="11">{_html(x)}</font>' for x in lines)
    label = f"<<b>{_html(title)}</b>{small}>"
    if op in ("placeholder", "output"):
        attrs.update(shape="ellipse", fillcolor=_IO_FILL)
    elif op == "collapsed":
        attrs.update(shape="box", style="dashed,filled", fillcolor=_COLLAPSED_FILL)
    elif role == "grid":
        attrs.update(style="rounded,dashed,filled")
    elif role != "other":
        attrs.update(penwidth="2" if role != "flip" else "3")
    parts = [f"label={label}"] + [f"{k}={_quote(v)}" for k, v in attrs.items()]
    return f"    {_quote(node)} [{', '.join(parts)}];"


def _legend() -> str:
    cells = []
    for role in ("quantize", "flip", "dequantize", "straight_through", "grid"):
        fill, border, font = ROLE_STYLE[role]
        cells.append(
            f'<td bgcolor="{fill}" border="1" color="{border}"><font color="{font}">'
            f"{role.replace('_', '-')}</font></td>"
        )
    return '<table border="0" cellspacing="4" cellpadding="4"><tr>' + "".join(cells) + "</tr></table>"


def _stem(members: list[str], graph: Any) -> str:
    """The common name prefix of a site's nodes (``conv1_weight_``), from its flip node."""
    for n in members:
        if graph.nodes[n].get("role") == "flip" and str(n).endswith("_flip"):
            stem = str(n)[: -len("flip")]
            return stem if all(str(m).startswith(stem) for m in members) else ""
    return ""


def to_dot(graph: Any, *, rankdir: str = "TB", title: str | None = None) -> str:
    """DOT text of ``graph`` (a ``networkx.DiGraph`` from :func:`fxfault.export.to_networkx`).

    Example::

        >>> text = to_dot(fxfault.to_networkx(faulty))
        >>> text.startswith("digraph")
        True
    """
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"rankdir must be one of TB, LR, BT, RL, got {rankdir!r}")
    g_attrs = dict(graph.graph)
    sites = list(g_attrs.get("sites") or [])
    if title is None:
        model = g_attrs.get("model", "GraphModule")
        n = len(sites)
        title = f"{model}: {n} fault site{'s' if n != 1 else ''} (fxfault {g_attrs.get('fxfault_version', '')})"
    out = [
        f"digraph {_quote(g_attrs.get('model', 'fxfault'))} {{",
        f"    graph [rankdir={rankdir}, fontname=\"Helvetica\", fontsize=16, labelloc=t, "
        f"nodesep=0.25, ranksep=0.35, label=<<table border=\"0\"><tr><td><b>{_html(title)}</b></td>"
        f"</tr><tr><td>{_legend()}</td></tr></table>>];",
        '    node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=12, '
        'margin="0.12,0.05", height=0.3];',
        f'    edge [color="{_EDGE}", arrowsize=0.7];',
    ]
    by_site: dict[str, list[str]] = {}
    loose: list[str] = []
    for node, d in graph.nodes(data=True):
        site = d.get("site")
        if site is not None and d.get("role", "other") != "other":
            by_site.setdefault(str(site), []).append(node)
        else:
            loose.append(node)
    for i, (site, members) in enumerate(by_site.items()):
        bits = graph.nodes[members[0]].get("bits")
        adapter = graph.nodes[members[0]].get("adapter")
        extra = f" \u00b7 {adapter}" if adapter else ""
        stem = _stem(members, graph)
        names = f'<br/><font point-size="11">nodes {_html(stem)}\u2026</font>' if stem else ""
        out.append(f"    subgraph cluster_site_{i} {{")
        out.append(
            f'        label=<site <b>{_html(site)}</b> \u00b7 {_html(bits)} bits{_html(extra)}{names}>; '
            f'style="rounded,filled"; fillcolor="#fff8f6"; color="{_FAULT_EDGE}"; '
            'fontsize=14; fontcolor="#7f0000";'
        )
        out.extend("    " + _node_stmt(n, graph.nodes[n], stem) for n in members)
        out.append("    }")
    out.extend(_node_stmt(n, graph.nodes[n]) for n in loose)
    for u, v in graph.edges():
        du, dv = graph.nodes[u], graph.nodes[v]
        fault = du.get("role", "other") != "other" and (
            dv.get("role", "other") != "other" or du.get("role") in ("straight_through", "flip")
        )
        style = f' [color="{_FAULT_EDGE}", penwidth=1.6]' if fault else ""
        out.append(f"    {_quote(u)} -> {_quote(v)}{style};")
    out.append("}")
    return "\n".join(out) + "\n"
