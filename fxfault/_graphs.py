"""How the pass gets its graph: trace a module, or copy (and partly inline) a GraphModule.

A model that already is a ``GraphModule`` (FX QAT ``prepare_qat_fx``, PT2E ``convert_pt2e``,
your own ``symbolic_trace``) keeps its graph and node metadata (PT2E's ``nn_module_stack`` names
the layers); ``call_module`` nodes of modules that adapters need opened (QAT layers hiding their
``weight_fake_quant``) are traced and inlined in place.
"""

from __future__ import annotations

import copy
from typing import Any

from torch import fx, nn

from .tracer import FaultTracer, trace

__all__ = ["graph_of"]


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
            raise RuntimeError(f"cannot inline {node.format_node()}: no value for {ph.target}")
    with graph.inserting_before(node):
        out = graph.graph_copy(sub, env)
    node.replace_all_uses_with(out)  # type: ignore[arg-type]
    graph.erase_node(node)
