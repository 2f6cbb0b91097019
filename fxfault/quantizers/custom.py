"""``register_quantizer``: teach fxfault a weight quantizer of your own in a few lines.

A registered quantizer is a module type. Every call of such a module on a weight (a tensor
computed from parameters only) becomes a fault site. You say where its step size lives and
which integer codes it produces; fxfault reads the step size live from the graph on every pass.

Example::

    >>> class PowerOfTwoQuant(nn.Module):
    ...     def __init__(self, bits=4, exponent=-4):
    ...         super().__init__()
    ...         self.bits = bits
    ...         self.register_buffer("step", torch.tensor(2.0 ** exponent))
    ...     def forward(self, w):
    ...         lim = 2 ** (self.bits - 1)
    ...         q = torch.clamp(torch.round(w / self.step), -lim, lim - 1)
    ...         return w + (q * self.step - w).detach()
    >>> fxfault.register_quantizer(
    ...     PowerOfTwoQuant, scale="step",
    ...     code_range=lambda q: (-(2 ** (q.bits - 1)), 2 ** (q.bits - 1) - 1))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import fx, nn

from ..errors import ConfigError, UnsupportedQuantizerError
from .base import Grid, MatchContext, QuantizerAdapter, Read, SiteMatch
from .torch_ao import bits_for_range

__all__ = ["ModuleQuantizerAdapter", "register_quantizer"]

Range = tuple[int, int] | Callable[[nn.Module], tuple[int, int]]


class ModuleQuantizerAdapter(QuantizerAdapter):
    """A user-registered quantizer module type (see :func:`register_quantizer`)."""

    def __init__(
        self,
        quantizer_type: type[nn.Module],
        *,
        scale: str,
        code_range: Range,
        zero_point: str | None = None,
        bits: int | Callable[[nn.Module], int] | None = None,
        axis: int = 0,
        name: str | None = None,
    ) -> None:
        if not isinstance(quantizer_type, type) or not issubclass(quantizer_type, nn.Module):
            raise TypeError(f"register_quantizer needs an nn.Module subclass, got {quantizer_type!r}")
        for what, value in (("scale", scale), ("zero_point", zero_point)):
            if value is not None and (not isinstance(value, str) or not value.isidentifier()):
                raise TypeError(
                    f"{what} must name an attribute (a tensor) or a method (returning one) of "
                    f"{quantizer_type.__name__}, such as 'scale' or 'get_scale'; got {value!r}"
                )
        self.quantizer_type = quantizer_type
        self.scale = scale
        self.zero_point = zero_point
        self.code_range = code_range
        self.bits = bits
        self.axis = axis
        self.name = name or quantizer_type.__name__

    def describe(self) -> str:
        return f"{self.name}: a call of a registered {self.quantizer_type.__name__} on a weight"

    def leaf_modules(self, model: nn.Module) -> Iterable[nn.Module]:
        return [m for m in model.modules() if isinstance(m, self.quantizer_type)]

    def candidate_layers(self, shadow: nn.Module, cfg: Any) -> Iterable[str]:
        out = []
        for n, m in shadow.named_modules():
            if any(isinstance(c, self.quantizer_type) for c in m.children()):
                out.append(n)
        return out

    def match(self, node: fx.Node, ctx: MatchContext) -> SiteMatch | None:
        if node.op != "call_module":
            return None
        target = str(node.target)
        q = ctx.module(target)
        if not isinstance(q, self.quantizer_type) or not node.args:
            return None
        weight = _parameter_ancestor(node.args[0], ctx)
        if weight is None:
            return None  # not a weight: an activation, or a value computed from inputs
        wnode, wt = weight
        layer = str(wnode.target).rpartition(".")[0]
        where = f"{self.name} at {target!r}"
        lo, hi = self.code_range(q) if callable(self.code_range) else self.code_range
        if not (isinstance(lo, int) and isinstance(hi, int) and lo < hi):
            raise ConfigError(f"{where}: code_range must give two integers lo < hi, got {(lo, hi)}")
        k = self.bits(q) if callable(self.bits) else self.bits
        k = bits_for_range(lo, hi) if k is None else int(k)
        if not 1 <= k <= 16 or bits_for_range(lo, hi) > k:
            raise ConfigError(f"{where}: {k} bits cannot hold the codes [{lo}, {hi}] (1..16 bits)")
        probe = _read(q, self.scale, where)
        layout = _layout(probe, tuple(wt.shape), self.axis, where)
        return SiteMatch(
            quantizer=self.name,
            layer=layer,
            node=node,
            bits=k,
            qmin=lo,
            qmax=hi,
            shape=tuple(wt.shape),
            grid=Grid(_grid_read(target, q, self.scale),
                      _grid_read(target, q, self.zero_point) if self.zero_point else None, layout),
            axis=self.axis if layout is not None else None,
            quantizer_module=target,
            stored=str(wnode.target),
        )


def _parameter_ancestor(arg: Any, ctx: MatchContext) -> tuple[fx.Node, torch.Tensor] | None:
    """The parameter a value is computed from, if it is computed from parameters only."""
    found: tuple[fx.Node, torch.Tensor] | None = None
    stack = [arg]
    seen: set[fx.Node] = set()
    while stack:
        n = stack.pop()
        if not isinstance(n, fx.Node) or n in seen:
            continue
        seen.add(n)
        if n.op == "get_attr":
            t = ctx.tensor_of(n)
            if isinstance(t, nn.Parameter) and found is None:
                found = (n, t)
        elif n.op in ("call_function", "call_method"):
            stack.extend(n.all_input_nodes)
        else:
            return None
    return found


def _read(q: nn.Module, name: str, where: str) -> torch.Tensor:
    value = getattr(q, name, None)
    if callable(value) and not isinstance(value, torch.Tensor):
        value = value()
    if not isinstance(value, torch.Tensor):
        raise UnsupportedQuantizerError(
            f"{where}: {name!r} gave {type(value).__name__}, not a tensor; name a tensor "
            "attribute or a method that returns one"
        )
    return value


def _grid_read(target: str, q: nn.Module, name: str) -> Read:
    if isinstance(getattr(q, name), torch.Tensor):
        return Read(attr=f"{target}.{name}")
    return Read(method=(target, name, (), {}))


def _layout(scale: torch.Tensor, wshape: tuple[int, ...], axis: int, where: str) -> tuple[int, ...] | None:
    if scale.numel() == 1:
        return None
    if scale.numel() == wshape[axis]:
        broadcast = tuple(wshape[axis] if d == axis else 1 for d in range(len(wshape)))
        return None if tuple(scale.shape) == broadcast else tuple(-1 if d == axis else 1 for d in range(len(wshape)))
    raise UnsupportedQuantizerError(
        f"{where}: the scale has shape {tuple(scale.shape)}; expected one value or one per "
        f"channel along axis {axis} of the weight {wshape}"
    )


def register_quantizer(
    quantizer_type: type[nn.Module],
    *,
    scale: str,
    code_range: Range,
    zero_point: str | None = None,
    bits: int | Callable[[nn.Module], int] | None = None,
    axis: int = 0,
    name: str | None = None,
) -> ModuleQuantizerAdapter:
    """Make every call of a ``quantizer_type`` module on a weight a fault site.

    :param scale: the step size: the name of a tensor attribute (buffer or parameter) or of a
        method returning it; read live on every forward pass. One value, or one per channel
        along ``axis`` of the weight.
    :param code_range: ``(qmin, qmax)`` of the integer codes, or a function of the quantizer
        module returning it (evaluated when transforming).
    :param zero_point: like ``scale``, for affine quantizers (codes ``round(w / s) + zp``).
    :param bits: the stored width (default: the fewest bits that hold ``code_range``).
    :returns: the adapter; ``fxfault.quantizers.unregister_adapter(adapter)`` removes it.
    """
    from . import register_adapter

    adapter = ModuleQuantizerAdapter(
        quantizer_type,
        scale=scale,
        code_range=code_range,
        zero_point=zero_point,
        bits=bits,
        axis=axis,
        name=name,
    )
    register_adapter(adapter)
    return adapter
