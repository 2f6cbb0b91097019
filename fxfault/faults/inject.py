"""What a fault does to the codes it hits (the *what*, apart from the *where* of the samplers).

An :class:`Injector` turns the codes at the faulted positions into new codes. Codes are encoded
into ``k``-bit words (:mod:`fxfault.faults.encoding`), the payload of the fault map is applied to
the words, and the words are decoded back:

* ``flip``: ``word ^ mask``; ``stuck_at_0``: ``word & ~mask``; ``stuck_at_1``: ``word | mask``;
* ``random`` (a value-level pattern): the code becomes ``qmin + (code - qmin + offset) mod n``
  with ``n = qmax - qmin + 1`` and an offset in ``[1, n)``, a uniformly random *different* code
  of the quantizer's range.

It works on NumPy arrays (the CPU path, cheap for a handful of values) and on torch tensors
(accelerators) alike, and reports how many stored bits really changed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .encoding import Encoding

__all__ = ["Injector", "popcount"]


def popcount(words: Any, bits: int) -> Any:
    """The number of set bits of each word (``bits`` wide), as an int (NumPy) or a 0-d tensor."""
    if isinstance(words, np.ndarray):
        return int(sum(int(((words >> b) & 1).sum()) for b in range(bits)))
    total = torch.zeros((), dtype=torch.int64, device=words.device)
    for b in range(bits):
        total = total + ((words >> b) & 1).sum()
    return total


class Injector:
    """Applies fault payloads to codes of one site (see the module docstring)."""

    def __init__(self, encoding: Encoding, fault: str, qmin: int, qmax: int) -> None:
        self.encoding = encoding
        self.fault = fault
        self.bits = encoding.k
        self.qmin = int(qmin)
        self.qmax = int(qmax)

    def apply(self, codes: Any, payload: Any) -> tuple[Any, Any | None]:
        """New codes for the int64 ``codes`` under ``payload`` (masks or offsets), and the
        number of stored bits that changed (an int, or a 0-d tensor on the device); ``None``
        for ``flip``, where every bit of the payload changes and the caller knows how many."""
        enc = self.encoding
        words = enc.encode(codes)
        if self.fault == "random":
            n = self.qmax - self.qmin + 1
            new = (codes - self.qmin + payload) % n + self.qmin
            return new, popcount(words ^ enc.encode(new), self.bits)
        if self.fault == "flip":
            new_words = words ^ payload
        elif self.fault == "stuck_at_0":
            new_words = words & ~payload
        else:
            new_words = words | payload
        changed = popcount(words ^ new_words, self.bits) if self.fault != "flip" else None
        return enc.decode(new_words), changed
