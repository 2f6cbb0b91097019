"""Validators of :class:`~fxfault.FaultConfig` fields, and per-layer resolution.

Every validator takes the value and the field's name (``what``) and returns the normal form,
or raises :class:`~fxfault.ConfigError` naming the field and saying what would be right.
Numbers may be Python numbers, NumPy scalars, 0-d tensors or numeric strings (from YAML or a
command line); a float32 scalar is read as the decimal it prints as (``np.float32(1e-3)`` is
``0.001``, not ``0.0010000000474974513``).
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

from ..errors import ConfigError

__all__ = [
    "as_bits",
    "as_bool",
    "as_choice",
    "as_int",
    "as_number",
    "as_patterns",
    "as_rate",
    "check_patterns",
    "jsonable",
    "per_layer",
    "resolve_per_layer",
]

MAX_BITS = 16

PerLayer = Any  # one value, or a mapping of module-name glob -> value


def _scalar(value: Any) -> Any:
    """NumPy scalars and one-element tensors as Python numbers (narrow floats by their repr)."""
    import numpy as np

    if hasattr(value, "numel") and hasattr(value, "item") and callable(value.numel):
        if value.numel() != 1:
            return value
        dtype = str(getattr(value, "dtype", ""))
        value = value.item()
        if dtype in ("torch.float32", "torch.float16", "torch.bfloat16"):
            return float(str(np.float32(value)))
        return value
    if isinstance(value, np.generic):
        if isinstance(value, (np.float32, np.float16)):
            return float(str(value))
        return value.item()
    return value


def as_number(value: Any, what: str, *, expect: str = "a number") -> float:
    """A finite or infinite real number (not a bool); strings such as ``"1e-6"`` are read."""
    value = _scalar(value)
    if isinstance(value, bool):
        raise ConfigError(f"{what} must be {expect}, got the bool {value!r}")
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise ConfigError(
                f"{what} must be {expect}, got the string {value!r}; write it like 1e-6 or '1e-6'"
            ) from None
    if not isinstance(value, numbers.Real):
        raise ConfigError(f"{what} must be {expect}, got {type(value).__name__} {value!r}")
    return float(value)


def as_rate(value: Any, what: str) -> float:
    """A probability in [0, 1]."""
    out = as_number(value, what, expect="a number in [0, 1]")
    if math.isnan(out) or not 0.0 <= out <= 1.0:
        raise ConfigError(f"{what} must be a number in [0, 1], got {out!r}")
    return out


def as_int(value: Any, what: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer (NumPy integers, 0-d integer tensors and whole floats such as ``8.0`` too)."""
    value = _scalar(value)
    if isinstance(value, bool):
        raise ConfigError(f"{what} must be an integer, got the bool {value!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, numbers.Integral):
        raise ConfigError(f"{what} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        if minimum == 0:
            raise ConfigError(f"{what} must be >= 0 (a non-negative integer), got {value}")
        raise ConfigError(f"{what} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{what} must be <= {maximum}, got {value}")
    return value


def as_bits(value: Any, what: str, *, maximum: int = MAX_BITS) -> int:
    """A bit width in ``1..maximum`` (digit strings from a command line or YAML too)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    try:
        return as_int(value, what, minimum=1, maximum=maximum)
    except ConfigError:
        raise ConfigError(
            f"{what} must be an integer bit width in 1..{maximum}, got {type(value).__name__} {value!r}"
        ) from None


def as_choice(value: Any, choices: Sequence[str], what: str) -> str:
    if not isinstance(value, str) or value not in choices:
        hint = difflib.get_close_matches(str(value), choices, n=1)
        extra = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ConfigError(f"{what} must be one of {list(choices)}, got {value!r}{extra}")
    return value


def as_bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{what} must be True or False, got {type(value).__name__} {value!r}")
    return value


def as_patterns(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Iterable) or isinstance(value, Mapping):
        raise ConfigError(f"{what} must be a glob string or a list of them, got {value!r}")
    out = tuple(value)
    for p in out:
        if not isinstance(p, str) or not p:
            raise ConfigError(f"{what} must hold non-empty glob strings, got {p!r}")
    return out


def _is_leaf_mapping(what: str, value: Mapping[Any, Any]) -> bool:
    # An encoding code table may be given as {value: code}; its keys are ints (or int strings
    # from JSON), never globs.
    if what.startswith("encoding") and value:
        return all(_looks_int(k) for k in value)
    return False


def _looks_int(k: Any) -> bool:
    if isinstance(k, bool):
        return False
    if isinstance(k, int):
        return True
    return isinstance(k, str) and k.strip().lstrip("-").isdigit()


def per_layer(value: Any, what: str, check: Any) -> Any:
    """Validate a per-layer field: one value or a mapping of glob -> value."""
    if isinstance(value, Mapping) and not _is_leaf_mapping(what, value):
        out: dict[str, Any] = {}
        for pat, v in value.items():
            if not isinstance(pat, str) or not pat:
                raise ConfigError(f"{what}: keys of a per-layer mapping must be module-name globs, got {pat!r}")
            out[pat] = check(v, f"{what}[{pat!r}]")
        return out
    return check(value, what)


def resolve_per_layer(value: PerLayer, layer: str, default: Any = None, *, what: str = "") -> Any:
    """Return the value of a per-layer field for ``layer``.

    A plain value applies to every layer. In a mapping an exact name wins, then the longest
    matching glob (the later one on ties); ``default`` is returned when nothing matches.
    """
    if not isinstance(value, Mapping) or _is_leaf_mapping(what, value):
        return value
    if layer in value:
        return value[layer]
    best: tuple[int, int] | None = None
    best_value = default
    for i, (pat, v) in enumerate(value.items()):
        if fnmatchcase(layer, pat):
            key = (len(pat), i)
            if best is None or key > best:
                best, best_value = key, v
    return best_value


def check_patterns(what: str, patterns: Iterable[str], names: Sequence[str], *, kind: str) -> None:
    """Raise :class:`ConfigError` for each pattern that matches none of ``names``."""
    for pat in patterns:
        if pat in names or any(fnmatchcase(n, pat) for n in names):
            continue
        close = difflib.get_close_matches(pat, list(names), n=3, cutoff=0.5)
        hint = f" Close names: {', '.join(repr(c) for c in close)}." if close else ""
        shown = ", ".join(repr(n) for n in list(names)[:8])
        more = f" (and {len(names) - 8} more)" if len(names) > 8 else ""
        raise ConfigError(
            f"{what}: the pattern {pat!r} matches no {kind}.{hint} "
            f"The {kind}s are: {shown}{more}. Patterns are fnmatch globs on module names, "
            "such as 'layer1.*' or 'fc'."
        )


def as_fault_list(value: Any) -> tuple[tuple[str, int, int], ...]:
    """``faults``: a list of ``(site, flat_index, bit)`` triples."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise ConfigError(
            f"faults must be a list of (site, flat_index, bit) triples, such as "
            f"[('conv1', 12, 3)], got {type(value).__name__} {value!r}"
        )
    out = []
    for i, item in enumerate(value):
        if isinstance(item, (str, bytes)) or not isinstance(item, Sequence) or len(item) != 3:
            raise ConfigError(f"faults[{i}] must be a triple (site, flat_index, bit), got {item!r}")
        site, idx, bit = item
        if not isinstance(site, str) or not site:
            raise ConfigError(f"faults[{i}]: the site must be a site name such as 'conv1', got {site!r}")
        out.append((site, as_int(idx, f"faults[{i}] flat_index", minimum=0),
                    as_int(bit, f"faults[{i}] bit", minimum=0)))
    return tuple(out)


def jsonable(v: Any) -> Any:
    """``v`` with tuples as lists and keys as strings (what JSON would give back)."""
    if isinstance(v, Mapping):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (tuple, list)):
        return [jsonable(x) for x in v]
    return v
