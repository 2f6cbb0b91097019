"""Bit-position rate specs (``FaultConfig.bit_rates``).

A spec says which bits of a ``k``-bit code word can fail, and at what rate. Bit 0 is the LSB.

============  =====================================================================
spec          per-bit rates for a site with bit-error rate ``ber`` and ``k`` bits
============  =====================================================================
``None``      every bit at ``ber`` (the default)
``msb_only``  the MSB at ``ber``, the others never
``skip_msb``  every bit but the MSB at ``ber``
``skip_msb2`` every bit but the two MSBs at ``ber``
``bit=i``     bit ``i`` only, at ``ber``
``dual:a,b``  the MSB at rate ``a`` and the second MSB at rate ``b`` (absolute; ``ber`` unused)
list          one absolute rate per bit, LSB first; its length must equal ``k``
============  =====================================================================
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..errors import ConfigError

__all__ = ["PRESETS", "is_absolute", "parse_rates_spec", "plane_rates"]

PRESETS = ("msb_only", "skip_msb", "skip_msb2", "bit=i", "dual:a,b")


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
        if v in ("msb_only", "skip_msb", "skip_msb2"):
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


def is_absolute(spec: Any) -> bool:
    """True when the spec fixes its rates itself, so that ``ber`` does not apply."""
    return isinstance(spec, tuple) or (isinstance(spec, str) and spec.startswith("dual:"))


def plane_rates(spec: Any, k: int, ber: float, *, where: str = "") -> list[float]:
    """Per-bit rates (LSB first) of a ``k``-bit site; raises if the spec does not fit ``k``."""
    at = f" (site {where})" if where else ""
    if spec is None:
        return [ber] * k
    if isinstance(spec, tuple):
        if len(spec) != k:
            raise ConfigError(
                f"bit_rates has {len(spec)} entries but the site{at} has {k} bits; "
                f"give exactly {k} rates, LSB first"
            )
        return list(spec)
    if spec == "msb_only":
        return [0.0] * (k - 1) + [ber]
    if spec == "skip_msb":
        return [ber] * (k - 1) + [0.0]
    if spec == "skip_msb2":
        if k < 2:
            raise ConfigError(f"bit_rates 'skip_msb2' needs at least 2 bits; the site{at} has {k}")
        return [ber] * (k - 2) + [0.0, 0.0]
    if spec.startswith("bit="):
        i = int(spec[4:])
        if i >= k:
            raise ConfigError(
                f"bit_rates {spec!r}: bit {i} does not exist in the {k}-bit site{at} "
                f"(bits are 0..{k - 1}, 0 is the LSB)"
            )
        return [ber if j == i else 0.0 for j in range(k)]
    if spec.startswith("dual:"):
        if k < 2:
            raise ConfigError(f"bit_rates 'dual' needs at least 2 bits; the site{at} has {k}")
        a, b = (float(x) for x in spec[5:].split(","))
        return [0.0] * (k - 2) + [b, a]
    raise ConfigError(f"unknown bit_rates spec {spec!r}")
