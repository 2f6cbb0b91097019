"""The syntax of the ``bit_rates`` and ``encoding`` fields (their meaning per site lives in
:mod:`fxfault.faults.rates` and :mod:`fxfault.faults.encoding`)."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigError

__all__ = ["FLOAT_PRESETS", "NAMED_ENCODINGS", "PRESETS", "normalise_encoding_spec", "parse_rates_spec"]

#: bit-plane presets of float sites (``float_format=``): the fields of the IEEE word
FLOAT_PRESETS = ("sign", "exponent", "exponent_msb", "mantissa", "mantissa_msb")
PRESETS = ("msb_only", "skip_msb", "skip_msb2", "bit=i", "dual:a,b", *FLOAT_PRESETS)


def _rate(x: Any, what: str) -> float:
    if isinstance(x, bool):
        raise ConfigError(f"{what}: rates must be numbers in [0, 1], got {x!r}")
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise ConfigError(f"{what}: rates must be numbers in [0, 1], got {x!r}") from None
    if math.isnan(v) or not 0.0 <= v <= 1.0:
        raise ConfigError(f"{what}: rates must be numbers in [0, 1], got {v!r}")
    return v


def parse_rates_spec(value: Any, what: str = "bit_rates") -> Any:
    """Validate a spec and return its normal form: a preset string or a tuple of rates."""
    if value is None:
        return None
    if isinstance(value, str):
        v = value.strip()
        if v in ("msb_only", "skip_msb", "skip_msb2", *FLOAT_PRESETS):
            return v
        if v.startswith("bit="):
            try:
                i = int(v[4:])
            except ValueError:
                raise ConfigError(f"{what}: 'bit=i' needs an integer bit index, got {v!r}") from None
            if i < 0:
                raise ConfigError(f"{what}: the bit index in {v!r} must be >= 0 (0 is the LSB)")
            return f"bit={i}"
        if v == "dual" or v.startswith("dual:"):
            parts = v[5:].split(",") if v.startswith("dual:") else []
            if len(parts) != 2:
                raise ConfigError(
                    f"{what}: 'dual' needs the MSB rate and the second MSB rate, "
                    f"as in 'dual:1e-4,1e-6'; got {v!r}"
                )
            a, b = (_rate(p.strip(), what) for p in parts)
            return f"dual:{a!r},{b!r}"
        raise ConfigError(
            f"{what}: unknown preset {v!r}; the presets are {list(PRESETS)}, "
            "or give a list of per-bit rates (LSB first)"
        )
    if isinstance(value, Sequence):
        if not value:
            raise ConfigError(f"{what}: a rate list must not be empty")
        return tuple(_rate(x, what) for x in value)
    raise ConfigError(
        f"{what} must be a preset string {list(PRESETS)} or a list of per-bit rates, "
        f"got {type(value).__name__} {value!r}"
    )


NAMED_ENCODINGS = ("offset", "twos", "sign_magnitude", "gray")


def normalise_encoding_spec(value: Any, what: str = "encoding") -> Any:
    """Validate the *form* of an encoding spec; width checks happen per site."""
    if isinstance(value, str):
        if value not in NAMED_ENCODINGS:
            hint = difflib.get_close_matches(value, NAMED_ENCODINGS, n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ConfigError(
                f"{what}: unknown encoding {value!r}{extra}. Encodings: {list(NAMED_ENCODINGS)}, "
                "or a code table (a list of words indexed by value - min, or a dict value->word)"
            )
        return value
    if isinstance(value, Mapping):
        out: dict[int, int] = {}
        for k, v in value.items():
            try:
                kk = int(k)
                vv = int(v)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"{what}: a code table maps integer values to integer words, got {k!r}: {v!r}"
                ) from None
            out[kk] = vv
        return out
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        words = []
        for w in value:
            if isinstance(w, bool) or not isinstance(w, int):
                raise ConfigError(f"{what}: a code table holds integer words, got {w!r}")
            words.append(int(w))
        return tuple(words)
    raise ConfigError(
        f"{what} must be one of {list(NAMED_ENCODINGS)} or a code table, got {type(value).__name__}"
    )


