"""How integer codes are laid out as ``k``-bit words in memory.

A site's *value space* ``V_k`` is the set of integers a ``k``-bit word can denote: the signed
range ``[-2^(k-1), 2^(k-1) - 1]`` when the quantizer's code range has negative codes, otherwise
the unsigned range ``[0, 2^k - 1]``. An encoding is a bijection between ``V_k`` and the words
``[0, 2^k)``, except sign-magnitude, whose two zeros (``+0`` and ``-0``) both decode to 0 and
which cannot hold ``-2^(k-1)``.

==================  ======================================================================
``offset``          offset binary: ``word = value + 2^(k-1)`` (signed) or ``value`` (unsigned)
``twos``            two's complement: ``word = value mod 2^k``
``sign_magnitude``  MSB is the sign, the other ``k-1`` bits the magnitude
``gray``            the reflected Gray code of the offset-binary word
code table          a list of words indexed by ``value - min(V_k)``, or a dict value -> word
==================  ======================================================================

Encoding and decoding work on ``int64`` tensors and touch only the faulted positions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..config.specs import normalise_encoding_spec
from ..errors import ConfigError
from .formats import FloatFormat

__all__ = ["Encoding", "make_encoding", "normalise_encoding_spec", "value_space"]

def value_space(k: int, signed: bool) -> tuple[int, int]:
    """``(min, max)`` of the values a ``k``-bit word can denote."""
    if signed:
        return -(1 << (k - 1)), (1 << (k - 1)) - 1
    return 0, (1 << k) - 1


class Encoding:
    """A value <-> word map for one site (``k`` bits, signed or unsigned value space)."""

    def __init__(self, spec: Any, k: int, signed: bool, qmin: int, qmax: int, *, where: str = ""):
        #: the float format whose bit pattern the codes are (a float site), else ``None``
        self.format: FloatFormat | None = spec if isinstance(spec, FloatFormat) else None
        self.spec = spec.name if self.format is not None else spec
        self.k = k
        self.signed = signed
        self.vmin, self.vmax = value_space(k, signed)
        self.name = self.spec if isinstance(self.spec, str) else "table"
        # a float's bits are stored as they are: two's complement of the signed integer view
        self._raw = self.name == "twos" or self.format is not None
        at = f" at site {where}" if where else ""
        if not (self.vmin <= qmin <= qmax <= self.vmax):
            raise ConfigError(
                f"code range [{qmin}, {qmax}]{at} does not fit in {k} bits "
                f"({'signed' if signed else 'unsigned'} value space [{self.vmin}, {self.vmax}])"
            )
        self._tables: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        self._enc_table: torch.Tensor | None = None
        self._dec_table: torch.Tensor | None = None
        if self.name == "sign_magnitude":
            if not signed:
                raise ConfigError(
                    f"encoding 'sign_magnitude'{at} needs a signed code range; the codes here are "
                    f"unsigned [{qmin}, {qmax}]. Use 'offset' (plain binary) instead."
                )
            if qmin < -((1 << (k - 1)) - 1):
                raise ConfigError(
                    f"encoding 'sign_magnitude'{at} cannot hold the code {qmin} in {k} bits "
                    f"(it holds -{(1 << (k - 1)) - 1}..{(1 << (k - 1)) - 1}); use a symmetric "
                    "quantizer (narrow range) or another encoding"
                )
        if self.name == "table":
            self._build_table(spec, at)

    # ------------------------------------------------------------------ tables
    def _build_table(self, spec: Any, at: str) -> None:
        n = 1 << self.k
        if isinstance(spec, dict):
            values = sorted(spec)
            expected = list(range(self.vmin, self.vmax + 1))
            if values != expected:
                missing = sorted(set(expected) - set(values))[:5]
                extra = sorted(set(values) - set(expected))[:5]
                raise ConfigError(
                    f"code table{at} must map every value in [{self.vmin}, {self.vmax}] "
                    f"({n} values for {self.k} bits); missing {missing}, unexpected {extra}"
                )
            words = [spec[v] for v in expected]
        else:
            words = list(spec)
            if len(words) != n:
                raise ConfigError(
                    f"code table{at} has {len(words)} words but {self.k} bits need {n} "
                    f"(one per value {self.vmin}..{self.vmax}, indexed by value - ({self.vmin}))"
                )
        if sorted(words) != list(range(n)):
            dup = sorted({w for w in words if words.count(w) > 1})[:5]
            bad = sorted({w for w in words if not 0 <= w < n})[:5]
            raise ConfigError(
                f"code table{at} is not a bijection onto the {self.k}-bit words 0..{n - 1}: "
                f"repeated words {dup}, out-of-range words {bad}"
            )
        enc = torch.tensor(words, dtype=torch.int64)
        dec = torch.empty(n, dtype=torch.int64)
        dec[enc] = torch.arange(self.vmin, self.vmax + 1, dtype=torch.int64)
        self._enc_table, self._dec_table = enc, dec

    def _table(self, v: Any) -> tuple[Any, Any]:
        if self._enc_table is None or self._dec_table is None:
            raise RuntimeError("this encoding has no code table")
        if isinstance(v, np.ndarray):
            return self._enc_table.numpy(), self._dec_table.numpy()
        t = self._tables.get(v.device)
        if t is None:
            t = (self._enc_table.to(v.device), self._dec_table.to(v.device))
            self._tables[v.device] = t
        return t

    # ------------------------------------------------------------------ maps
    def encode(self, v: Any) -> Any:
        """Values (int64 tensor or NumPy array) -> words (int64 in ``[0, 2^k)``)."""
        k = self.k
        name = self.name
        if name == "offset":
            return v - self.vmin
        if self._raw:
            return v & ((1 << k) - 1)
        if name == "sign_magnitude":
            where = np.where if isinstance(v, np.ndarray) else torch.where
            return where(v < 0, (-v) | (1 << (k - 1)), v)
        if name == "gray":
            b = v - self.vmin
            return b ^ (b >> 1)
        enc, _ = self._table(v)
        return enc[v - self.vmin]

    def decode(self, w: Any) -> Any:
        """Words (int64 tensor or NumPy array in ``[0, 2^k)``) -> values (int64 in ``V_k``)."""
        k = self.k
        name = self.name
        if name == "offset":
            return w + self.vmin
        if self._raw:
            if not self.signed:
                return w
            where = np.where if isinstance(w, np.ndarray) else torch.where
            return where(w >= (1 << (k - 1)), w - (1 << k), w)
        if name == "sign_magnitude":
            mag = w & ((1 << (k - 1)) - 1)
            where = np.where if isinstance(w, np.ndarray) else torch.where
            return where((w >> (k - 1)) & 1 == 1, -mag, mag)
        if name == "gray":
            b = w
            shift = 1
            while shift < k:
                b = b ^ (b >> shift)
                shift <<= 1
            return b + self.vmin
        _, dec = self._table(w)
        return dec[w]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_tables"] = {}
        return state

    def __repr__(self) -> str:
        return f"Encoding({self.name}, k={self.k}, {'signed' if self.signed else 'unsigned'})"


def make_encoding(spec: Any, k: int, qmin: int, qmax: int, *, where: str = "") -> Encoding:
    """The encoding of a site with ``k`` bits and code range ``[qmin, qmax]`` (a
    :class:`~fxfault.faults.formats.FloatFormat` for a float site: its raw bit pattern)."""
    if isinstance(spec, FloatFormat):
        return Encoding(spec, k, True, qmin, qmax, where=where)
    return Encoding(normalise_encoding_spec(spec), k, qmin < 0, qmin, qmax, where=where)
