"""What a sweep measures: a metric turns each batch into a ``(sum, count)`` pair.

A sweep adds the sums and the counts of all batches and reports ``scale * sum / count``, so
the value over a data set does not depend on how it is cut into batches (a mean of per-batch
means would weigh a short last batch too much).

Built-in metrics:

* ``"top1"`` — top-1 accuracy in percent: ``sum`` = correct predictions, ``count`` = targets;
* ``"loss"`` — mean cross-entropy: ``sum`` = summed loss, ``count`` = targets.

A callable ``metric(outputs, targets)`` may return either

* a pair ``(sum, count)`` (numbers or tensors; ``count`` > 0 over the whole data set): the
  exact contract; or
* one number (or a one-element tensor): read as the **mean over the batch's examples** and
  weighted by the batch size ``len(targets)``.

Anything else is a :class:`TypeError`. Wrap a callable in :class:`Metric` to give it a name
and an axis label. Example::

    >>> def top5(outputs, targets):
    ...     hit = (outputs.topk(5, dim=1).indices == targets[:, None]).any(dim=1)
    ...     return hit.sum(), targets.numel()
    >>> m = Metric("top5", top5, label="top-5 accuracy (%)", scale=100.0)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["Accumulator", "Metric", "MetricFn", "resolve_metric"]

#: ``metric(outputs, targets)`` -> ``(sum, count)``, or a per-example mean of the batch
MetricFn = Callable[[Any, torch.Tensor], Any]


@dataclass(frozen=True)
class Metric:
    """A named metric: ``fn(outputs, targets)`` per batch, reported as ``scale * sum / count``.

    :param name: stored in result files; a resumed sweep must use the same name.
    :param fn: the per-batch function (see the module docstring for what it may return).
    :param label: the axis label of plots and the heading of tables.
    :param scale: multiplies the aggregate (100 for percentages).
    """

    name: str
    fn: MetricFn
    label: str = ""
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a Metric needs a non-empty name, got {self.name!r}")
        if not callable(self.fn):
            raise TypeError(f"Metric.fn must be callable, got {type(self.fn).__name__}")
        if not self.label:
            object.__setattr__(self, "label", self.name)


def _top1(outputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, int]:
    return (outputs.argmax(dim=1) == targets).sum(), targets.numel()


def _loss(outputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, int]:
    return F.cross_entropy(outputs.float(), targets, reduction="sum"), targets.numel()


BUILTIN: dict[str, Metric] = {
    "top1": Metric("top1", _top1, label="top-1 accuracy (%)", scale=100.0),
    "loss": Metric("loss", _loss, label="cross-entropy loss"),
}


def _callable_name(fn: Any) -> str:
    target = fn if hasattr(fn, "__qualname__") else type(fn)
    module = getattr(target, "__module__", None) or "?"
    return f"{module}:{getattr(target, '__qualname__', type(fn).__name__)}"


def resolve_metric(metric: str | Metric | MetricFn) -> Metric:
    """Turn ``"top1"``, ``"loss"``, a :class:`Metric` or a callable into a :class:`Metric`.

    A bare callable is named ``module:qualname`` (for an instance: its class's), so a resumed
    sweep recognises the same metric.
    """
    if isinstance(metric, Metric):
        return metric
    if isinstance(metric, str):
        if metric not in BUILTIN:
            raise ValueError(
                f"unknown metric {metric!r}; use one of {sorted(BUILTIN)} or pass a callable "
                "metric(outputs, targets) -> (sum, count)"
            )
        return BUILTIN[metric]
    if callable(metric):
        return Metric(_callable_name(metric), metric)
    raise TypeError(
        f"metric must be 'top1', 'loss', a Metric or a callable, got {type(metric).__name__}"
    )


_Number = int | float | torch.Tensor


def _as_scalar(x: Any, what: str, name: str) -> _Number:
    if isinstance(x, torch.Tensor):
        if x.numel() != 1:
            raise TypeError(
                f"metric {name!r} returned a {what} tensor of shape {tuple(x.shape)}; it must "
                "hold a single number (reduce it with .sum())"
            )
        return x.detach().reshape(()).to(torch.float64)
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise TypeError(f"metric {name!r} returned a {what} of type {type(x).__name__}, not a number")
    return float(x)


class Accumulator:
    """Adds up a metric over batches; tensor sums stay on their device until :meth:`value`."""

    def __init__(self, metric: Metric) -> None:
        self.metric = metric
        self.sum: _Number = 0.0
        self.count: _Number = 0
        self.batches = 0
        self.examples = 0

    def add(self, outputs: Any, targets: torch.Tensor) -> None:
        name = self.metric.name
        n = int(targets.shape[0]) if targets.dim() else 1
        got = self.metric.fn(outputs, targets)
        if isinstance(got, (tuple, list)):
            if len(got) != 2:
                raise TypeError(
                    f"metric {name!r} returned a sequence of length {len(got)}; return "
                    "(sum, count) or a single per-example mean"
                )
            s = _as_scalar(got[0], "sum", name)
            c = _as_scalar(got[1], "count", name)
        elif isinstance(got, (int, float, torch.Tensor)) and not isinstance(got, bool):
            mean = _as_scalar(got, "value", name)
            s, c = mean * n, n
        else:
            raise TypeError(
                f"metric {name!r} returned {type(got).__name__}; return (sum, count) or a "
                "single number, the mean over the batch's examples"
            )
        self.sum = self.sum + s
        self.count = self.count + c
        self.batches += 1
        self.examples += n

    def value(self) -> float:
        """``scale * sum / count`` over all batches added so far."""
        total = float(self.sum)
        count = float(self.count)
        if self.batches == 0:
            raise ValueError("the data yielded no batches; sweep needs at least one (inputs, targets) batch")
        if count <= 0:
            raise ValueError(
                f"metric {self.metric.name!r} counted {count:g} examples over {self.batches} "
                "batches; its count must be positive"
            )
        return self.metric.scale * total / count
