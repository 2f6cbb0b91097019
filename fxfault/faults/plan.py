"""``FaultPlan``: the state that the fault sites of one transformed model share.

It holds the current seed and trial, the seed list, and, for ``count=n``, the joint draw that
spreads exactly ``n`` faults over the sites. Each site asks the plan for the *key* of its next
draw; the site's own stream is then seeded from ``(key, site name)``, so the faults of a site do
not depend on which other sites exist or in which order they run.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch

from .sampling import derive_seed, distinct_uniform, generator

__all__ = ["FaultPlan"]


class FaultPlan:
    """Seeds, trials and the exact-count allocation shared by a model's sites."""

    def __init__(
        self,
        seed: int,
        mode: str,
        seed_list: tuple[int, ...] | None = None,
        count: int | None = None,
    ) -> None:
        self.seed = int(seed)
        self.trial = 0
        self.mode = mode
        self.seed_list = tuple(seed_list) if seed_list else None
        self.count = count
        # count mode: (site name, targeted bits) in graph order
        self.count_members: list[tuple[str, int]] = []
        self._alloc_key: tuple[Any, ...] | None = None
        self._alloc: dict[str, torch.Tensor] = {}
        self._sites: weakref.WeakSet[Any] = weakref.WeakSet()

    # ------------------------------------------------------------------ transient prefetch
    def enlist(self, site: Any) -> None:
        """Remember ``site`` for :meth:`prefetch` (sites enlist on their first transient draw)."""
        if site not in self._sites:
            self._sites.add(site)

    def prefetch(self, key: tuple[Any, ...], pass_index: int) -> None:
        """Draw pass ``pass_index``'s faults for every enlisted active site that is at that pass.

        The result is exactly what each site would draw itself (a draw depends only on the key
        and the site's name); drawing them together is faster than one at a time between layers.
        """
        for s in list(self._sites):
            at = s._pass if s._hold is None else s._hold
            if at == pass_index and key not in s._prefetched and s.is_active():
                s._prefetched.clear()
                s._prefetched[key] = s._draw(key)

    # ------------------------------------------------------------------ keys
    def draw_key(self, pass_index: int) -> tuple[Any, ...] | None:
        """The key of a site's draw on forward pass ``pass_index``.

        ``None`` is never returned; the tuple is also a cache key: equal keys mean equal faults.
        """
        # a seed-list pass uses exactly the persistent map of its seed
        if self.mode == "persistent":
            return ("map", self.seed, self.trial)
        if self.seed_list is not None:
            return ("map", self.seed_list[pass_index % len(self.seed_list)], self.trial)
        return ("transient", self.seed, self.trial, pass_index)

    def cacheable(self) -> bool:
        """Whether draws repeat, so that sites may keep them (persistent maps, seed lists)."""
        return self.mode == "persistent" or self.seed_list is not None

    # ------------------------------------------------------------------ trials
    def resample(self, seed: int | None = None) -> None:
        """Start a new trial: with ``seed``, restart from that seed; without, the next trial."""
        if seed is None:
            self.trial += 1
        else:
            self.seed = int(seed)
            self.trial = 0
        self._alloc_key = None
        self._alloc = {}

    # ------------------------------------------------------------------ exact counts
    @property
    def count_total_bits(self) -> int:
        return sum(n for _, n in self.count_members)

    def count_positions(self, site: str, key: tuple[Any, ...]) -> torch.Tensor:
        """Local positions (among the site's targeted bits) of the site's share of ``count``."""
        if key != self._alloc_key:
            self._alloc = self._allocate(key)
            self._alloc_key = key
        return self._alloc.get(site, torch.empty(0, dtype=torch.int64))

    def _allocate(self, key: tuple[Any, ...]) -> dict[str, torch.Tensor]:
        if self.count is None:
            raise RuntimeError("count_positions called on a plan without count")
        total = self.count_total_bits
        gen = generator(derive_seed(*key, "count"))
        flat = torch.sort(distinct_uniform(total, self.count, gen)).values
        out: dict[str, torch.Tensor] = {}
        start = 0
        for name, n in self.count_members:
            lo = int(torch.searchsorted(flat, start))
            hi = int(torch.searchsorted(flat, start + n))
            out[name] = flat[lo:hi] - start
            start += n
        return out

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_alloc_key"] = None
        state["_alloc"] = {}
        state.pop("_sites", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._sites = weakref.WeakSet()

    def __repr__(self) -> str:
        extra = f", seed_list={list(self.seed_list)}" if self.seed_list else ""
        extra += f", count={self.count}" if self.count is not None else ""
        return f"FaultPlan(seed={self.seed}, trial={self.trial}, mode={self.mode!r}{extra})"
