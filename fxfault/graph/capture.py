"""How the pass gets its graph: trace a module, or copy (and partly inline) a GraphModule.

:func:`capture` returns a new ``GraphModule`` built on a *shadow copy* of the model (new module
objects sharing the parameter and buffer tensors; see :mod:`fxfault.graph.tracer`), so the
user's model is never called, traced or written to.

A model that already is a ``GraphModule`` (FX QAT ``prepare_qat_fx``, PT2E ``convert_pt2e``,
your own ``symbolic_trace``) keeps its graph and node metadata (PT2E's ``nn_module_stack`` names
the layers); ``call_module`` nodes of modules that adapters need opened (QAT layers hiding their
``weight_fake_quant``) are traced and inlined in place.
"""

from __future__ import annotations

import copy
from typing import Any

from torch import fx, nn

from ..config import FaultConfig, check_patterns
from ..errors import TraceError
from ..quantizers.base import QuantizerAdapter
from .tracer import FaultTracer, remove_dead_nodes, shadow_copy, trace

__all__ = ["capture", "graph_of"]


def capture(
    model: nn.Module, cfg: FaultConfig, adapters: list[QuantizerAdapter], leaf_types: tuple[type, ...]
) -> fx.GraphModule:
    """A standalone ``GraphModule`` of ``model``, traced with the adapters' leaf policy."""
    shadow = shadow_copy(model)
    names = [n for n, _ in shadow.named_modules()]
    classes = sorted({type(m).__name__ for m in shadow.modules()})
    check_patterns("leaf_modules", cfg.leaf_modules, names + classes, kind="module")
    candidates = sorted({n for a in adapters for n in a.candidate_layers(shadow, cfg)})
    for field_name in ("bits", "act_bits", "float_bits"):
        value = getattr(cfg, field_name)
        if isinstance(value, dict):
            check_patterns(field_name, value, candidates or names, kind="quantizable layer")
    for a in adapters:
        a.prepare(shadow, cfg)
    through = [m for a in adapters for m in a.trace_through(shadow, cfg)]
    tracer = FaultTracer(
        leaves=[m for a in adapters for m in a.leaf_modules(shadow)],
        through=through,
        leaf_patterns=cfg.leaf_modules,
        leaf_types=leaf_types,
        call_hooks=[a.trace_call for a in adapters if type(a).trace_call is not QuantizerAdapter.trace_call],
    )
    graph = graph_of(shadow, tracer, {id(m) for m in through})
    remove_dead_nodes(graph)
    root = shadow_copy(model)
    _carry_trace_constants(graph, shadow, root)
    gm = fx.GraphModule(root, graph, class_name=_class_name(model))
    for attr in ("_in_spec", "_out_spec"):  # pytree codegen of exported modules
        if hasattr(model, attr):
            setattr(gm, attr, getattr(model, attr))
    return gm


def _carry_trace_constants(graph: fx.Graph, traced: nn.Module, root: nn.Module) -> None:
    """Tracing stores tensor constants (``_tensor_constant0``) on the traced copy; give the
    clean copy the ones the graph reads."""
    for node in graph.nodes:
        if node.op != "get_attr":
            continue
        path, _, field = str(node.target).rpartition(".")
        try:
            dst = root.get_submodule(path) if path else root
            if hasattr(dst, field):
                continue
            src = traced.get_submodule(path) if path else traced
            value = getattr(src, field)
        except AttributeError:
            continue
        setattr(dst, field, value)


def _class_name(model: nn.Module) -> str:
    name = type(model).__name__
    return "GraphModule" if "<" in name or not name.isidentifier() else name


def graph_of(shadow: nn.Module, tracer: FaultTracer, through: set[int]) -> fx.Graph:
    """The graph to transform: ``shadow``'s own (copied) graph, or a trace of ``shadow``."""
    if not isinstance(shadow, fx.GraphModule):
        return trace(shadow, tracer)
    graph = copy.deepcopy(shadow.graph)
    modules = dict(shadow.named_modules())
    for node in list(graph.nodes):
        if node.op == "call_module" and id(modules.get(str(node.target))) in through:
            _inline(graph, node, modules[str(node.target)], tracer)
    return graph


def _inline(graph: fx.Graph, node: fx.Node, module: nn.Module, tracer: FaultTracer) -> None:
    """Replace ``call_module node`` by the traced body of ``module``."""
    prefix = str(node.target)
    sub = trace(module, tracer)
    for n in sub.nodes:
        if n.op in ("get_attr", "call_module"):
            n.target = f"{prefix}.{n.target}"
    placeholders = [n for n in sub.nodes if n.op == "placeholder"]
    env: dict[fx.Node, Any] = {}
    args = list(node.args)
    for i, ph in enumerate(placeholders):
        if i < len(args):
            env[ph] = args[i]
        elif ph.target in node.kwargs:
            env[ph] = node.kwargs[str(ph.target)]
        elif ph.args:
            env[ph] = ph.args[0]  # default value
        else:
            raise TraceError(f"cannot inline {node.format_node()}: no value for {ph.target}")
    with graph.inserting_before(node):
        out = graph.graph_copy(sub, env)
    node.replace_all_uses_with(out)  # type: ignore[arg-type]
    graph.erase_node(node)
