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

Float sites (``float_format=``) also take the fields of their format
(:mod:`fxfault.faults.formats`): ``sign``, ``exponent``, ``mantissa`` (every bit of the field
at ``ber``), ``exponent_msb`` (the top exponent bit: the flip that turns 0.01 into about
3.4e36 in float32) and ``mantissa_msb`` (the top mantissa bit). The presets above apply to the
bits of the format's word (``msb_only`` is the sign bit).
"""

from __future__ import annotations

from typing import Any

from ..config.specs import FLOAT_PRESETS, PRESETS, parse_rates_spec
from ..errors import ConfigError
from .formats import FloatFormat

__all__ = ["PRESETS", "describe", "is_absolute", "parse_rates_spec", "plane_rates"]

def is_absolute(spec: Any) -> bool:
    """True when the spec fixes its rates itself, so that ``ber`` does not apply."""
    return isinstance(spec, tuple) or (isinstance(spec, str) and spec.startswith("dual:"))


def plane_rates(spec: Any, k: int, ber: float, *, where: str = "", fmt: FloatFormat | None = None) -> list[float]:
    """Per-bit rates (LSB first) of a ``k``-bit site (of float format ``fmt``, for a float site);
    raises if the spec does not fit the site."""
    at = f" (site {where})" if where else ""
    if spec is None:
        return [ber] * k
    if isinstance(spec, str) and spec in FLOAT_PRESETS:
        if fmt is None:
            raise ConfigError(
                f"bit_rates {spec!r}{at} names a field of a float word, but this site holds "
                "integer codes; use it with float_format=... (or msb_only/bit=i for codes)"
            )
        field, _, top = spec.partition("_")
        planes = fmt.planes(field)
        chosen = {max(planes)} if top == "msb" else set(planes)
        return [ber if j in chosen else 0.0 for j in range(k)]
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


def describe(site: Any) -> str:
    """A compact description of a site's fault rates, for tables, reprs and graph labels.

    ``"1e-06"`` for a uniform bit-error rate, ``"msb_only@1e-06"`` for a preset,
    ``"dual:0.0001,1e-06"`` for absolute presets, per-bit lists LSB first, ``"count share 0.3"``
    for a share of ``FaultConfig(count=n)``, ``"list of 5"`` for an explicit fault list, and
    ``"values 1e-06"`` / ``"values 1%"`` for value-level faults.
    """
    if site.fixed_faults is not None:
        return f"list of {len(site.fixed_faults)}"
    if site.count_member and site.plan.count is not None:
        return f"count share {site.expected_events():.3g}"
    if getattr(site, "unit", "bit") == "value":
        if site.fraction is not None:
            return f"values {site.fraction:.3g} of {site.pattern}"
        return f"values {site.ber:.3g} {site.pattern}"
    spec = site.bit_rates
    if spec is None:
        return f"{site.ber:.3g}"
    if isinstance(spec, str):
        return spec if is_absolute(spec) else f"{spec}@{site.ber:.3g}"
    return "[" + ",".join(f"{r:.2g}" for r in site.rates) + "] LSB first"
