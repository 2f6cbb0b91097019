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

import importlib
import inspect
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["BUNDLED_DATA", "import_object", "load_data"]

DEFAULT_BATCH_SIZE = 256


def _digits(batch_size: int | None) -> Iterable[Any]:
    from ..testing.digits import digits_batches

    return digits_batches("test", batch_size or DEFAULT_BATCH_SIZE)


#: bundled data names and their loaders (taking the batch size, or None for the default)
BUNDLED_DATA: dict[str, Callable[[int | None], Iterable[Any]]] = {"digits": _digits}


def import_object(spec: str, what: str) -> Any:
    """The object named by ``package.module:attribute`` (dots in the attribute allowed)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"the {what} spec {spec!r} must look like 'package.module:name'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"cannot import {module_name!r} for the {what} spec {spec!r}: {e}") from e
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{module_name!r} has no attribute {attr!r} (the {what} spec {spec!r})")
        obj = getattr(obj, part)
    return obj


def load_data(spec: str, batch_size: int | None = None) -> Iterable[Any]:
    """The batches named by ``spec`` (a bundled name or ``package.module:factory``)."""
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
        raise TypeError(f"data spec {spec!r} names a {type(factory).__name__}, not a callable")
    if batch_size is None:
        return factory()  # type: ignore[no-any-return]
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    if "batch_size" not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        raise ValueError(
            f"--batch-size was given, but the data factory {spec!r} takes no batch_size "
            "argument; leave --batch-size out or add the argument to the factory"
        )
    return factory(batch_size=batch_size)  # type: ignore[no-any-return]
