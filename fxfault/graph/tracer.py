"""The fx tracer of fxfault and the private model copies it works on.

Tracing runs a model's ``forward`` with proxies, and user code may write attributes while it
runs (``self.output_size = out.shape[-1] ** 2`` stores a ``Proxy``). fxfault therefore never
traces the user's model: it traces a *shadow copy* — new module objects with their own
attribute dicts that share the parameter and buffer tensors — and builds the final
``GraphModule`` from a second, clean shadow copy. The user's modules are never called, and no
attribute of theirs is ever written.

The leaf policy keeps quantizer modules whole (adapters name them), traces through the layers
around them, and honours extra leaves given by module name, class name or type.
"""

from __future__ import annotations

import collections
import copy
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from typing import Any

import torch
from torch import fx, nn

from ..errors import TraceError
from .chains import annotate

__all__ = ["FaultTracer", "remove_dead_nodes", "shadow_copy", "trace"]

_CONTAINERS = (list, dict, set, collections.OrderedDict, collections.defaultdict)


def shadow_copy(module: nn.Module, memo: dict[int, Any] | None = None) -> nn.Module:
    """A copy of ``module`` that shares its tensors but none of its attribute dicts.

    Parameters and buffers are the same tensor objects (so training the copy trains the
    model), submodules are shadow copies themselves, and top-level containers in the
    attribute dict are shallow-copied, so that writes through the copy never reach the model.
    """
    memo = {} if memo is None else memo
    if id(module) in memo:
        return memo[id(module)]  # type: ignore[no-any-return]
    cls = type(module)
    new = cls.__new__(cls)
    memo[id(module)] = new
    state: dict[str, Any] = {}
    for key, value in module.__dict__.items():
        if key == "_modules":
            state[key] = type(value)(
                (n, None if m is None else shadow_copy(m, memo)) for n, m in value.items()
            )
        elif key in ("_parameters", "_buffers"):
            state[key] = type(value)(value)
        elif isinstance(value, torch.Tensor):
            state[key] = value
        elif isinstance(value, nn.Module):
            state[key] = shadow_copy(value, memo)
        elif isinstance(value, _CONTAINERS):
            try:
                state[key] = copy.copy(value)
            except Exception:  # pragma: no cover - exotic container subclasses
                state[key] = value
        else:
            state[key] = value
    new.__dict__.update(state)
    return new


class FaultTracer(fx.Tracer):
    """A ``torch.fx.Tracer`` with fxfault's leaf policy and errors that name the module."""

    def __init__(
        self,
        *,
        leaves: Iterable[nn.Module] = (),
        through: Iterable[nn.Module] = (),
        leaf_patterns: Sequence[str] = (),
        leaf_types: tuple[type, ...] = (),
        call_hooks: Sequence[Any] = (),
    ) -> None:
        # shapes of parameters are static: `len(self.weight.shape)` works while tracing
        super().__init__(param_shapes_constant=True)
        self._buffer_names: dict[int, str] = {}
        self._leaf_ids = {id(m) for m in leaves}
        self._through_ids = {id(m) for m in through}
        self._leaf_patterns = tuple(leaf_patterns)
        self._leaf_types = leaf_types
        self._stack: list[tuple[str, type]] = []
        #: ``hook(tracer, module, forward, args, kwargs)`` -> a result, or ``NotImplemented`` to
        #: let the tracer call the module as usual (adapters' ``trace_call``)
        self._call_hooks = tuple(call_hooks)
        self.failed_in: tuple[str, type] | None = None
        self.leaves_used: set[str] = set()

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if id(m) in self._leaf_ids:
            return True
        if id(m) in self._through_ids:
            return False
        if self._leaf_types and isinstance(m, self._leaf_types):
            self.leaves_used.add(module_qualified_name)
            return True
        name = module_qualified_name
        cls = type(m).__name__
        for pat in self._leaf_patterns:
            if fnmatchcase(name, pat) or fnmatchcase(cls, pat):
                self.leaves_used.add(name)
                return True
        return bool(super().is_leaf_module(m, module_qualified_name))

    def call_module(
        self, m: nn.Module, forward: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        try:
            name = self.path_of_module(m)
        except NameError:
            name = "<unregistered module>"
        self._stack.append((name, type(m)))
        try:
            for hook in self._call_hooks:
                out = hook(self, m, forward, args, kwargs)
                if out is not NotImplemented:
                    return out
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed_in is None:
                self.failed_in = self._stack[-1]
            raise
        finally:
            self._stack.pop()


    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]) -> Any:
        # Buffers read by traced code (BatchNorm statistics folded into QAT weights) must stay
        # live graph inputs, not values frozen at trace time. (torch.fx's own
        # proxy_buffer_attributes cannot be combined with param_shapes_constant.)
        if isinstance(attr_val, torch.Tensor) and not isinstance(attr_val, nn.Parameter):
            name = self._buffer_names.get(id(attr_val))
            if name is not None:
                if name not in parameter_proxy_cache:
                    parameter_proxy_cache[name] = self.create_proxy("get_attr", name, (), {})
                return parameter_proxy_cache[name]
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)

    def trace(self, root: Any, concrete_args: Any = None) -> fx.Graph:  # type: ignore[override]
        if isinstance(root, nn.Module):
            self._buffer_names = {id(b): n for n, b in root.named_buffers(remove_duplicate=False)}
        graph = super().trace(root, concrete_args)
        if isinstance(root, nn.Module):
            # After torch.load the graph is re-traced from the generated code with this class;
            # give the fault chains their names and metadata back.
            annotate(graph, root)
        return graph


def trace(root: nn.Module, tracer: FaultTracer) -> fx.Graph:
    """Trace ``root`` with ``tracer``; failures become :class:`TraceError` naming the module."""
    try:
        return tracer.trace(root)
    except TraceError:
        raise
    except Exception as e:
        where = tracer.failed_in or ("", type(root))
        name, cls = where
        label = f"module {name!r} ({cls.__module__}.{cls.__qualname__})" if name else (
            f"the model's own forward ({cls.__module__}.{cls.__qualname__})"
        )
        hint = (
            f"If it holds no weight quantizer, mark it as a leaf so that fxfault calls it whole: "
            f"FaultConfig(leaf_modules=[{(name or cls.__name__)!r}]) or "
            f"fxfault.transform(model, cfg, leaf_modules=[{cls.__name__}]). Otherwise make its "
            "Python control flow independent of tensor values."
            if name
            else "Make the model's forward free of Python control flow that depends on tensor "
            "values, or move that code into a submodule marked as a leaf (leaf_modules=...)."
        )
        raise TraceError(
            f"torch.fx could not trace through {label}: {type(e).__name__}: {e}\n{hint}"
        ) from e


def remove_dead_nodes(graph: fx.Graph) -> int:
    """Remove unused pure nodes (trace-time side effects such as ``out.shape[-1] ** 2``).

    Module calls and in-place methods are kept even when unused: they may have effects.
    """
    removed = 0
    changed = True
    while changed:
        changed = False
        for node in reversed(list(graph.nodes)):
            if node.users or node.op in ("placeholder", "output", "call_module"):
                continue
            if node.op == "call_method" and str(node.target).endswith("_"):
                continue
            if node.op == "call_function":
                try:
                    if node.is_impure():
                        continue
                except Exception:
                    continue
            graph.erase_node(node)
            removed += 1
            changed = True
    return removed
