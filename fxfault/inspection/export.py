"""See the faulty graph: a networkx view and export to JSON, GraphML, DOT, SVG and Python code.

Example::

    >>> faulty = fxfault.transform(lsq_small_cnn(), ber=1e-3)
    >>> g = fxfault.to_networkx(faulty)
    >>> g.nodes["conv1_weight_flip"]["role"], g.nodes["conv1_weight_flip"]["bits"]
    ('flip', 8)
    >>> fxfault.export(faulty, "cnn.svg")                   # format chosen by the suffix
    PosixPath('cnn.svg')
    >>> fxfault.export(big, "near.dot", neighbourhood=2)    # only nodes near a fault node

Exporting never changes the model: shapes come from a forward pass run with faults disabled,
without gradients, in eval mode, and the node metadata that pass writes is restored.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn
from torch.fx.node import _get_qualified_name
from torch.fx.passes.shape_prop import TensorMetadata

from .._version import __version__
from ..errors import GraphvizError
from ..faults.rates import describe
from ..graph.access import fault_sites, plan_of
from ..graph.chains import PLAN_MODULE, SITES_MODULE, find_chains, record
from ..runtime.control import disabled
from .dot import to_dot

__all__ = [
    "GRAPH_SUFFIXES",
    "RENDERED_SUFFIXES",
    "ROLES",
    "SCHEMA",
    "SUFFIXES",
    "GraphvizError",
    "export",
    "fault_records",
    "keep_neighbourhood",
    "read_json",
    "to_dot",
    "to_networkx",
]

#: the ``role`` attribute of a node of :func:`to_networkx`
ROLES = ("quantize", "flip", "dequantize", "straight_through", "grid", "pass", "other")
#: the ``"schema"`` field of a JSON export
SCHEMA = "fxfault-graph"
SCHEMA_VERSION = 1
#: formats rendered by the Graphviz ``dot`` program
RENDERED_SUFFIXES = (".svg", ".png", ".pdf")
#: formats that hold the graph (where ``neighbourhood`` and ``example_inputs`` apply)
GRAPH_SUFFIXES = (".json", ".graphml", ".dot", *RENDERED_SUFFIXES)
#: every format :func:`export` writes
SUFFIXES = (*GRAPH_SUFFIXES, ".py")

_CHAIN_ROLES = {"quantize", "flip", "dequantize", "straight_through"}
_GRID_ROLES = {"scale", "zero_point", "site", "quantizer", "source"}


# --------------------------------------------------------------------------------------------
# networkx view
# --------------------------------------------------------------------------------------------
def _check_gm(gm: Any) -> fx.GraphModule:
    if not isinstance(gm, fx.GraphModule):
        raise TypeError(
            f"expected a torch.fx.GraphModule (a model returned by fxfault.transform), got "
            f"{type(gm).__name__}; call fxfault.transform(model, cfg) first"
        )
    return gm


def target_text(node: fx.Node) -> str:
    """A node's target as text: a module path, a method name, or a function's qualified name."""
    t = node.target
    if isinstance(t, str):
        return t
    try:
        return _get_qualified_name(t)
    except Exception:  # a callable torch.fx cannot name
        return str(getattr(t, "__qualname__", getattr(t, "__name__", repr(t))))


def fault_records(gm: fx.GraphModule) -> dict[fx.Node, dict[str, Any]]:
    """``{node: {"site", "layer", "bits", "adapter", "role"}}`` for every fault-chain node.

    Read from ``node.meta["fxfault"]`` (copies), completed from the chain structure where a
    node lost its record.
    """
    out: dict[fx.Node, dict[str, Any]] = {}
    for node in gm.graph.nodes:
        rec = node.meta.get("fxfault")
        if isinstance(rec, dict) and rec.get("role"):
            out[node] = dict(rec)
        elif node.op == "call_module" and node.target == PLAN_MODULE:
            out[node] = {"role": "pass", "site": None}
    if not isinstance(getattr(gm, SITES_MODULE, None), nn.Module):
        return out
    for chain in find_chains(gm.graph, gm):
        if chain.site is None:
            continue
        for role, node in chain.nodes.items():
            if node in out or role not in _CHAIN_ROLES | _GRID_ROLES:
                continue
            out[node] = record(chain.site, "grid" if role in _GRID_ROLES else role)
    _grid_closure(out)
    return out


def _grid_closure(out: dict[fx.Node, dict[str, Any]]) -> None:
    """Mark as grid the nodes that only feed a site's grid nodes (an adapter's reads of the
    scale buffers): every other node of the traced model still has its own users."""
    stack = [(a, rec) for n, rec in out.items() if rec.get("role") == "grid" for a in n.all_input_nodes]
    while stack:
        node, rec = stack.pop()
        if node in out or node.op in ("placeholder", "output") or not node.users:
            continue
        if all(out.get(u, {}).get("role") == "grid" and out[u].get("site") == rec.get("site") for u in node.users):
            out[node] = dict(rec, role="grid")
            stack.extend((a, rec) for a in node.all_input_nodes)


@contextlib.contextmanager
def _quiet_forward(gm: fx.GraphModule) -> Iterator[None]:
    """Faults off, no gradients, eval mode, the fault streams untouched; every module's mode
    restored afterwards."""
    modes = [(m, m.training) for m in gm.modules()]
    with contextlib.ExitStack() as stack:
        if isinstance(getattr(gm, SITES_MODULE, None), nn.Module):
            stack.enter_context(disabled(gm))
            plan = plan_of(gm)
            plan.hold()
            stack.callback(plan.release, advance=False)
        stack.enter_context(torch.no_grad())
        for m, _ in modes:
            m.training = False  # not .eval(): that would also clear the sites' caches
        try:
            yield
        finally:
            for m, flag in modes:
                m.training = flag


def _meta_of(value: Any) -> tuple[Any, Any]:
    if isinstance(value, TensorMetadata):
        return tuple(int(s) for s in value.shape), str(value.dtype)
    if isinstance(value, (tuple, list)):
        pairs = [_meta_of(v) for v in value]
        return tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)
    if isinstance(value, dict):
        return _meta_of(list(value.values()))
    return None, None


def _shapes(gm: fx.GraphModule, example_inputs: Any) -> dict[fx.Node, tuple[Any, Any]]:
    from torch.fx.passes.shape_prop import ShapeProp

    if isinstance(example_inputs, torch.Tensor):
        args: tuple[Any, ...] = (example_inputs,)
    elif isinstance(example_inputs, (tuple, list)):
        args = tuple(example_inputs)
    else:
        raise TypeError(
            "example_inputs must be a tensor or a tuple of the forward's inputs, got "
            f"{type(example_inputs).__name__}"
        )
    saved = {n: dict(n.meta) for n in gm.graph.nodes}
    out: dict[fx.Node, tuple[Any, Any]] = {}
    try:
        # ShapeProp prints the traceback of a failing node; the error raised below holds it
        with _quiet_forward(gm), contextlib.redirect_stderr(io.StringIO()):
            ShapeProp(gm).propagate(*args)
        for n in gm.graph.nodes:
            out[n] = _meta_of(n.meta.get("tensor_meta"))
    except Exception as e:
        root: BaseException = e
        while root.__cause__ is not None:
            root = root.__cause__
        first = (str(root).strip().splitlines() or [type(root).__name__])[0]
        raise ValueError(
            f"could not run {type(gm).__name__} on example_inputs to find shapes and dtypes "
            f"({first}); give the inputs its forward takes (e.g. a batch of one), or leave "
            "example_inputs out"
        ) from e
    finally:
        for n, meta in saved.items():
            n.meta.clear()
            n.meta.update(meta)
    return out


def to_networkx(gm: nn.Module, example_inputs: torch.Tensor | Sequence[Any] | None = None) -> Any:
    """The graph of ``gm`` as a ``networkx.DiGraph``; edges follow the data (node -> user).

    Nodes are keyed by node name, in graph order, with the attributes ``name``, ``index``
    (graph order), ``op``, ``target`` (a string), ``module`` (the class of a called module),
    ``layer``, ``site``, ``role`` (one of :data:`ROLES`), ``bits``, ``adapter``, ``rates``
    (on flip nodes) and ``shape``/``dtype`` (tuples and strings, with ``example_inputs``; else
    ``None``). The graph's attributes hold ``model``, ``fxfault_version`` and ``sites``.

    Example::

        >>> g = fxfault.to_networkx(faulty, example_inputs=torch.rand(1, 1, 8, 8))
        >>> g.nodes["conv1_weight_quantize"]["dtype"]
        'torch.int8'
        >>> ("conv1_weight_flip", "conv1_weight_dequantize") in g.edges
        True
    """
    gm = _check_gm(gm)
    records = fault_records(gm)
    shapes = _shapes(gm, example_inputs) if example_inputs is not None else {}
    container = getattr(gm, SITES_MODULE, None)
    site_names: list[str] = []
    rates: dict[str, str] = {}
    if isinstance(container, nn.Module):
        for s in fault_sites(gm):
            site_names.append(s.name)
            rates[s.name] = describe(s)
    import networkx as nx

    g = nx.DiGraph(model=type(gm).__name__, fxfault_version=__version__, sites=site_names)
    for i, node in enumerate(gm.graph.nodes):
        rec = records.get(node, {})
        module = None
        if node.op == "call_module":
            with contextlib.suppress(AttributeError):
                module = type(gm.get_submodule(str(node.target))).__name__
        shape, dtype = shapes.get(node, (None, None))
        g.add_node(
            node.name,
            name=node.name,
            index=i,
            op=node.op,
            target=target_text(node),
            module=module,
            layer=rec.get("layer"),
            site=rec.get("site"),
            role=rec.get("role", "other"),
            bits=rec.get("bits"),
            quantizer=rec.get("quantizer"),
            tensor=rec.get("tensor"),
            adapter=rec.get("quantizer"),  # deprecated alias of quantizer
            rates=rates.get(str(rec.get("site"))) if rec.get("role") == "flip" else None,
            shape=shape,
            dtype=dtype,
        )
    for node in gm.graph.nodes:
        for user in node.users:
            g.add_edge(node.name, user.name)
    return g


def keep_neighbourhood(graph: Any, k: int) -> Any:
    """A copy of ``graph`` with only the nodes within ``k`` hops of a fault node (either edge
    direction); each connected run of other nodes is collapsed into one ``op="collapsed"`` node.

    Example::

        >>> small = keep_neighbourhood(fxfault.to_networkx(faulty), 1)
    """
    import networkx as nx

    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"neighbourhood must be a whole number of hops >= 0, got {k!r}")
    seeds = [n for n, d in graph.nodes(data=True) if d.get("role", "other") != "other"]
    if not seeds:
        raise ValueError(
            "the graph has no fault nodes to take a neighbourhood of; export the model returned "
            "by fxfault.transform, or leave neighbourhood out"
        )
    dist = {n: 0 for n in seeds}
    frontier = list(seeds)
    for step in range(1, k + 1):
        nxt = []
        for n in frontier:
            for m in (*graph.predecessors(n), *graph.successors(n)):
                if m not in dist:
                    dist[m] = step
                    nxt.append(m)
        frontier = nxt
    dropped = graph.subgraph([n for n in graph.nodes if n not in dist])
    rep: dict[Any, Any] = {n: n for n in dist}
    groups: list[list[Any]] = []
    order = {n: i for i, n in enumerate(graph.nodes)}
    for comp in nx.weakly_connected_components(dropped):
        members = sorted(comp, key=order.__getitem__)
        groups.append(members)
    groups.sort(key=lambda ms: order[ms[0]])
    out = nx.DiGraph(**copy.deepcopy(graph.graph))
    out.graph["neighbourhood"] = k
    collapsed: dict[Any, tuple[str, list[Any]]] = {}
    for i, members in enumerate(groups):
        key = f"collapsed_{i}"
        while key in graph:
            key += "_"
        for n in members:
            rep[n] = key
        collapsed[members[0]] = (key, members)
    for n, d in graph.nodes(data=True):
        if n in dist:
            out.add_node(n, **d)
        elif n in collapsed:
            key, members = collapsed[n]
            span = f"{members[0]} .. {members[-1]}" if len(members) > 1 else str(members[0])
            out.add_node(
                key, name=key, index=d.get("index"), op="collapsed", target=span, module=None,
                layer=None, site=None, role="other", bits=None, quantizer=None, tensor=None,
                adapter=None, rates=None,
                shape=None, dtype=None, count=len(members),
            )
    for u, v in graph.edges():
        a, b = rep[u], rep[v]
        if a != b:
            out.add_edge(a, b)
    return out


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------
def _node_link_data(graph: Any) -> dict[str, Any]:
    import networkx as nx

    try:
        return dict(nx.node_link_data(graph, edges="edges"))
    except TypeError:  # networkx < 3.4
        return dict(nx.node_link_data(graph, link="edges"))


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON graph written by :func:`export` back as a ``networkx.DiGraph``."""
    import networkx as nx

    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"{path} is not an fxfault graph (no \"schema\": {SCHEMA!r} field)")
    if data.get("version") != SCHEMA_VERSION:
        raise ValueError(
            f"{path} holds version {data.get('version')!r} of the {SCHEMA} schema; this fxfault "
            f"({__version__}) reads version {SCHEMA_VERSION}"
        )
    link = {k: data[k] for k in ("directed", "multigraph", "graph", "nodes", "edges") if k in data}
    try:
        return nx.node_link_graph(link, edges="edges")
    except TypeError:  # networkx < 3.4
        return nx.node_link_graph(link, link="edges")


def _config_of(gm: nn.Module) -> Any:
    meta = getattr(gm, "meta", None)
    if isinstance(meta, dict) and isinstance(meta.get("fxfault"), dict):
        return meta["fxfault"].get("config")
    return None


def _json_text(gm: nn.Module, graph: Any) -> str:
    doc = {
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "fxfault_version": __version__,
        "config": _config_of(gm),
        **_node_link_data(graph),
    }
    return json.dumps(doc, indent=1, default=str) + "\n"


def _scalar(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return json.dumps(value, default=str)
    return str(value)


def _graphml_graph(graph: Any) -> Any:
    """A copy whose attribute values GraphML can store (``None`` left out, tuples as JSON)."""
    import networkx as nx

    out = nx.DiGraph()
    out.graph.update({k: _scalar(v) for k, v in graph.graph.items() if v is not None})
    for n, d in graph.nodes(data=True):
        out.add_node(n, **{k: _scalar(v) for k, v in d.items() if v is not None})
    out.add_edges_from(graph.edges())
    return out


def _python_text(gm: fx.GraphModule) -> str:
    lines = [
        f"# The forward of a {type(gm).__name__} transformed by fxfault {__version__}.",
        "# Written by fxfault.export for reading: it calls the GraphModule's own submodules",
        "# (self.*) and fxfault.ops, and is not meant to be imported on its own.",
        "#",
    ]
    cfg = _config_of(gm)
    if cfg is not None:
        lines.append("# Config:")
        lines += ["#   " + line for line in json.dumps(cfg, indent=2, default=str).splitlines()]
        lines.append("#")
    if isinstance(getattr(gm, SITES_MODULE, None), nn.Module):
        from .sites import sites, summary

        lines.append("# Fault sites:")
        lines += ["#   " + line for line in summary(gm).table().splitlines()]
        lines.append("#")
        lines.append("# Chain nodes per site:")
        for s in sites(gm):
            lines.append(f"#   {s.name}: " + " -> ".join(s.nodes.values()))
    return "\n".join(lines) + "\n" + gm.code.lstrip("\n")


def _dot_program(path: Path) -> str:
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizError(
            f"writing {path.name} needs the Graphviz 'dot' program, which is not on PATH. "
            "Install Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install "
            "graphviz; conda: conda install -c conda-forge graphviz), or export to a .dot file, "
            "which needs no Graphviz, and render it elsewhere"
        )
    return exe


def _render(exe: str, dot_text: str, path: Path, fmt: str) -> None:
    try:
        proc = subprocess.run(
            [exe, f"-T{fmt}", "-o", str(path)], input=dot_text.encode("utf-8"),
            capture_output=True, timeout=600, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise GraphvizError(f"running {exe} to write {path} failed: {e}") from e
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        raise GraphvizError(f"{exe} could not render {path} (exit {proc.returncode}): {err}")


def export(
    gm: nn.Module,
    path: str | os.PathLike[str],
    *,
    example_inputs: torch.Tensor | Sequence[Any] | None = None,
    neighbourhood: int | None = None,
) -> Path:
    """Write the graph of ``gm`` to ``path``; the suffix chooses the format.

    ``.json``
        networkx node-link data with ``"schema": "fxfault-graph"``, ``"version": 1`` and the
        config of the transform (read it back with :func:`read_json`).
    ``.graphml``
        GraphML (attributes that are ``None`` are left out, tuples are written as JSON text).
    ``.dot``
        Graphviz DOT text: fault nodes filled by role, each site boxed with its bit width.
    ``.svg``, ``.png``, ``.pdf``
        the DOT graph rendered by the Graphviz ``dot`` program (which must be installed).
    ``.py``
        the generated forward (``gm.code``), headed by the fxfault version, config and sites.

    ``example_inputs`` adds shapes and dtypes; ``neighbourhood=k`` keeps only nodes within ``k``
    hops of a fault node and collapses the rest (both for graph formats only).

    Example::

        >>> fxfault.export(faulty, "graph.json")
        PosixPath('graph.json')
    """
    gm = _check_gm(gm)
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(
            f"cannot export to {path.name!r}: unknown suffix {path.suffix!r}; the supported "
            f"suffixes are {', '.join(SUFFIXES)}"
        )
    if suffix == ".py":
        if neighbourhood is not None or example_inputs is not None:
            raise ValueError(
                "neighbourhood and example_inputs apply to graph formats "
                f"({', '.join(GRAPH_SUFFIXES)}), not to .py code"
            )
        path.write_text(_python_text(gm), encoding="utf-8")
        return path
    import networkx as nx

    exe = _dot_program(path) if suffix in RENDERED_SUFFIXES else ""
    graph = to_networkx(gm, example_inputs)
    if neighbourhood is not None:
        graph = keep_neighbourhood(graph, neighbourhood)
    if suffix == ".json":
        path.write_text(_json_text(gm, graph), encoding="utf-8")
    elif suffix == ".graphml":
        nx.write_graphml(_graphml_graph(graph), str(path))
    elif suffix == ".dot":
        path.write_text(to_dot(graph), encoding="utf-8")
    else:
        _render(exe, to_dot(graph), path, suffix[1:])
    return path
