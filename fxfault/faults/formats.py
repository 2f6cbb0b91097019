"""Floating-point storage formats: which bits of a stored float are sign, exponent, mantissa.

A float site (``FaultConfig(float_format=...)``) flips the bits of the stored representation
itself. Its codes are the float's bit pattern read as a signed integer of the same width
(``torch.Tensor.view``), so that a flip of bit ``i`` of the code is a flip of bit ``i`` of the
IEEE word: bit 0 is the lowest mantissa bit, the top bit the sign.

==================  =====  ========  ========
format              bits   exponent  mantissa
==================  =====  ========  ========
``float32``         32     8         23
``float16``         16     5         10
``bfloat16``        16     8         7
``float8_e4m3fn``   8      4         3
``float8_e5m2``     8      5         2
==================  =====  ========  ========
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError

__all__ = ["FORMATS", "FloatFormat", "format_of"]


@dataclass(frozen=True)
class FloatFormat:
    """A binary floating-point format: ``1`` sign, ``exponent`` and ``mantissa`` bits."""

    name: str
    dtype: torch.dtype
    int_dtype: torch.dtype
    exponent: int
    mantissa: int

    @property
    def bits(self) -> int:
        return 1 + self.exponent + self.mantissa

    @property
    def sign_plane(self) -> int:
        return self.bits - 1

    def planes(self, field: str) -> list[int]:
        """The bit planes (LSB = 0) of ``field``: ``"sign"``, ``"exponent"`` or ``"mantissa"``."""
        if field == "sign":
            return [self.sign_plane]
        if field == "exponent":
            return list(range(self.mantissa, self.mantissa + self.exponent))
        if field == "mantissa":
            return list(range(self.mantissa))
        raise ValueError(f"no field {field!r} in a float format (sign, exponent, mantissa)")

    def field_of(self, plane: int) -> str:
        """The field bit ``plane`` belongs to."""
        if plane == self.sign_plane:
            return "sign"
        return "exponent" if plane >= self.mantissa else "mantissa"


def _formats() -> dict[str, FloatFormat]:
    out = {
        "float32": FloatFormat("float32", torch.float32, torch.int32, 8, 23),
        "float16": FloatFormat("float16", torch.float16, torch.int16, 5, 10),
        "bfloat16": FloatFormat("bfloat16", torch.bfloat16, torch.int16, 8, 7),
    }
    for name, e, m in (("float8_e4m3fn", 4, 3), ("float8_e5m2", 5, 2)):
        dtype = getattr(torch, name, None)  # torch builds without float8 lack the dtypes
        if dtype is not None:
            out[name] = FloatFormat(name, dtype, torch.int8, e, m)
    return out


#: the formats this torch build has, by name
FORMATS: dict[str, FloatFormat] = _formats()


def format_of(name: str, weight_dtype: torch.dtype, *, where: str = "") -> FloatFormat:
    """The format ``name`` (``"native"``: the weight's own dtype)."""
    at = f" (layer {where})" if where else ""
    if name == "native":
        for fmt in FORMATS.values():
            if fmt.dtype == weight_dtype:
                return fmt
        raise ConfigError(
            f"float_format='native'{at}: fxfault has no fault model for {weight_dtype} weights; "
            f"give one of {sorted(FORMATS)}"
        )
    found = FORMATS.get(name)
    if found is None:
        raise ConfigError(
            f"float_format={name!r}{at} needs a torch with that dtype; this torch has {sorted(FORMATS)}"
        )
    return found
