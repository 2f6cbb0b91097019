"""Data specs of the command line: where a sweep's ``(inputs, targets)`` batches come from.

* ``digits`` — the held-out split of scikit-learn's bundled 8x8 digits
  (:func:`fxfault.testing.digits.digits_batches`; offline);
* ``package.module:factory`` — a callable that returns a re-iterable of batches (a list, a
  ``DataLoader``). It is called with no arguments, or with ``batch_size=`` when one is given
  and the factory takes it.

Example::

    >>> batches = load_data("digits", batch_size=128)
    >>> len(batches), tuple(batches[0][0].shape)
    (5, (128, 1, 8, 8))
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch

from .specs import import_object

__all__ = ["BUNDLED_DATA", "DEFAULT_BATCH_SIZE", "first_example", "load_data"]

DEFAULT_BATCH_SIZE = 256


def _digits(batch_size: int | None) -> Iterable[Any]:
    from ..testing.digits import digits_batches

    return digits_batches("test", batch_size or DEFAULT_BATCH_SIZE)


#: bundled data names and their loaders (taking the batch size, or None for the default)
BUNDLED_DATA: dict[str, Callable[[int | None], Iterable[Any]]] = {"digits": _digits}


def load_data(spec: str, batch_size: int | None = None) -> Iterable[Any]:
    """The batches named by ``spec`` (a bundled name or ``package.module:factory``): something
    that can be iterated again (a list, a ``DataLoader``), not a one-shot iterator."""
    if batch_size is not None and (isinstance(batch_size, bool) or batch_size < 1):
        raise ValueError(f"the batch size must be a positive integer, got {batch_size!r}")
    if spec in BUNDLED_DATA:
        return BUNDLED_DATA[spec](batch_size)
    if ":" not in spec:
        raise ValueError(
            f"unknown data {spec!r}; give a bundled name ({', '.join(BUNDLED_DATA)}) or "
            "'package.module:factory' (a callable returning a list or DataLoader of "
            "(inputs, targets) batches)"
        )
    factory = import_object(spec, "data")
    if not callable(factory):
        raise TypeError(f"data spec {spec!r} names an object of type {type(factory).__name__}, "
                        "not a callable")
    data = factory() if batch_size is None else factory(batch_size=_takes_batch_size(spec, factory, batch_size))
    if isinstance(data, Iterator):
        raise TypeError(
            f"the data factory {spec!r} returned a one-shot iterator ({type(data).__name__}), but "
            "a sweep iterates the data once per trial; return something that can be iterated "
            "again: a list of (inputs, targets) batches or a DataLoader"
        )
    if isinstance(data, torch.Tensor) or not isinstance(data, Iterable):
        raise TypeError(
            f"the data factory {spec!r} returned an object of type {type(data).__name__}; return "
            "a list of (inputs, targets) batches or a DataLoader"
        )
    return data  # type: ignore[no-any-return]


def _takes_batch_size(spec: str, factory: Callable[..., Any], batch_size: int) -> int:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    if "batch_size" not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        raise ValueError(
            f"--batch-size was given, but the data factory {spec!r} takes no batch_size "
            "argument; leave --batch-size out or add the argument to the factory"
        )
    return batch_size


def first_example(data: Iterable[Any]) -> tuple[Any, Any]:
    """``(inputs, targets)`` of the first example of the first batch of ``data`` (inputs: a
    tensor, or a tuple of them); a ``ValueError`` when there is no batch or the first is not an
    ``(inputs, targets)`` pair of tensors."""
    batch = next(iter(data), None)
    if batch is None:
        raise ValueError("the data yielded no batches; give at least one (inputs, targets) batch")
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise ValueError(f"batch 0 of the data is a {type(batch).__name__}, not an (inputs, targets) pair")
    inputs, targets = batch
    parts = inputs if isinstance(inputs, (tuple, list)) else (inputs,)
    if not all(isinstance(x, torch.Tensor) and x.dim() > 0 for x in (*parts, targets)):
        raise ValueError("batch 0 of the data is not an (inputs, targets) pair of batched tensors "
                         f"(inputs: {type(inputs).__name__}, targets: {type(targets).__name__})")
    first = tuple(x[:1] for x in parts)
    return (first if isinstance(inputs, (tuple, list)) else first[0]), targets[:1]
