"""``SiteStats``: what one fault site counted since the last reset.

Counters are updated once per forward pass of the site, under a lock (threads may run the model
at once). Counts that live on an accelerator (the bits that stuck-at faults really changed) are
kept as device tensors and folded in when read, so counting never synchronises a pass.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["SiteStats"]


@dataclass
class SiteStats:
    """Counters of one site since the last reset.

    ``events`` counts fault events (sampled faults); ``changed_bits`` the stored bits that
    actually changed (fewer than ``events`` for stuck-at faults on bits that already held the
    forced value); ``changed_weights`` the values with at least one changed bit;
    ``exposed_bits`` the bits at risk (the sum over passes of ``numel * bits``).
    """

    passes: int = 0
    events: int = 0
    changed_bits: int = 0
    changed_weights: int = 0
    exposed_bits: int = 0
    _pending: list[torch.Tensor] = field(default_factory=list, repr=False)
    _lock: Any = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, *, exposed: int, events: int, bits: int | torch.Tensor, values: int | torch.Tensor) -> None:
        """Count one pass: ``bits`` and ``values`` are ints, or device tensors folded in later."""
        with self._lock:
            self.passes += 1
            self.exposed_bits += exposed
            self.events += events
            if isinstance(bits, torch.Tensor) or isinstance(values, torch.Tensor):
                self._pending.append(torch.stack([torch.as_tensor(bits), torch.as_tensor(values)]))
                if len(self._pending) > 256:
                    self._settle()
            else:
                self.changed_bits += bits
                self.changed_weights += values

    def settle(self) -> None:
        """Fold the device-side counts into the plain ones."""
        with self._lock:
            self._settle()

    def _settle(self) -> None:
        for t in self._pending:
            bits, values = (int(x) for x in t.tolist())
            self.changed_bits += bits
            self.changed_weights += values
        self._pending.clear()

    def __getstate__(self) -> dict[str, Any]:
        self.settle()
        state = dict(self.__dict__)
        state.pop("_lock", None)
        state["_pending"] = []
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
