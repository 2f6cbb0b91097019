"""``FaultPlan``: the clock and the seeds that the fault sites of one transformed model share.

The plan is the first node of every transformed graph (``fxfault_pass = self.fxfault_plan()``).
Each forward pass asks it for a :class:`Pass`: the pass index, taken atomically, and whether the
pass may use the sites' eval-mode buffers. Every fault site of that forward pass receives the
same token, so a pass sees the faults of exactly one index, also when several threads call the
model at once (each index is handed out once).

The plan also holds the current seed and trial, the seed list and, for ``count=n``, the joint
draw that spreads exactly ``n`` faults over the sites. A site's draw depends only on the *key*
the plan gives for a pass and on the site's name, never on other sites or on the order in which
layers run.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from .sampling import derive_seed, distinct_uniform, generator

__all__ = ["FaultPlan", "Pass", "lookup"]

_LIVE: weakref.WeakValueDictionary[int, nn.Module] = weakref.WeakValueDictionary()
_HANDLES = itertools.count(1)


def register(obj: nn.Module) -> int:
    """A process-wide handle for ``obj`` (used by the custom ops under ``torch.compile``)."""
    handle = next(_HANDLES)
    _LIVE[handle] = obj
    return handle


def lookup(handle: int) -> Any:
    """The live plan or site with ``handle``."""
    obj = _LIVE.get(int(handle))
    if obj is None:
        raise RuntimeError(
            f"fxfault handle {handle} is not alive in this process. A compiled or exported "
            "fault graph calls back into the fault sites of the GraphModule it came from; keep "
            "that GraphModule alive (and in this process)."
        )
    return obj


@dataclass(frozen=True)
class Pass:
    """The token of one forward pass: its index, whether the sites may use their eval-mode
    buffers (eval mode, no autograd, not compiling), and a serial number unique to the call
    (passes held by ``same_faults`` share an index, never a serial)."""

    index: int
    cached: bool
    serial: int = -1


_SERIALS = itertools.count()


class FaultPlan(nn.Module):
    """Pass clock, seeds, trials and the exact-count allocation shared by a model's sites."""

    # plain attributes (set through __dict__: nn.Module.__setattr__ costs microseconds a pass)
    handle: int
    _lock: threading.Lock
    _next: int
    _hold: int | None
    _held_passes: int
    _alloc: tuple[Any, dict[str, torch.Tensor]]
    _sites: list[weakref.ref[Any]]

    def __init__(
        self,
        seed: int,
        mode: str,
        seed_list: tuple[int, ...] | None = None,
        count: int | None = None,
    ) -> None:
        super().__init__()
        self.seed = int(seed)
        self.trial = 0
        self.mode = mode
        self.seed_list = tuple(seed_list) if seed_list else None
        self.count = count
        #: count mode: (site name, targeted bits) in graph order
        self.count_members: list[tuple[str, int]] = []
        self._init_runtime()

    def _init_runtime(self) -> None:
        d = self.__dict__  # plain attributes: skip nn.Module.__setattr__
        d["_lock"] = threading.Lock()
        d["_next"] = d.get("_next", 0)
        d["_hold"] = None
        d["_held_passes"] = 0
        d["_alloc"] = (None, {})
        d["_sites"] = d.get("_sites") or []
        d["handle"] = register(self)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for key in ("_lock", "_hold", "_held_passes", "_alloc", "_sites", "handle"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    def extra_repr(self) -> str:
        extra = f", seed_list={list(self.seed_list)}" if self.seed_list else ""
        extra += f", count={self.count}" if self.count is not None else ""
        return f"seed={self.seed}, trial={self.trial}, mode={self.mode!r}{extra}"

    # ------------------------------------------------------------------ the clock
    def forward(self) -> Any:
        """Start a forward pass: a :class:`Pass` (under ``torch.compile``, its index as a tensor)."""
        if torch.compiler.is_compiling():
            return torch.ops.fxfault.next_pass(self.handle)
        cached = not self.training and not torch.is_grad_enabled()
        index = self.next_index()
        if not self.repeats():
            for ref in self._sites:
                site = ref()
                if site is not None:
                    site.prepare(index)
        return Pass(index, cached, next(_SERIALS))

    def attach(self, site: Any) -> None:
        """Let the plan draw ``site``'s faults when a pass starts (see ``BitFlip.prepare``)."""
        self._sites.append(weakref.ref(site))

    def next_index(self) -> int:
        """Take the next pass index (atomically); inside :meth:`hold`, the held one."""
        with self._lock:
            if self._hold is not None:
                self.__dict__["_held_passes"] += 1
                return int(self._hold)
            i = int(self._next)
            self.__dict__["_next"] = i + 1
            return i

    @property
    def next_pass(self) -> int:
        """The index the next forward pass will get."""
        return int(self._hold) if self._hold is not None else int(self._next)

    def advance(self, next_pass: int) -> None:
        """Make ``next_pass`` the index of the next forward pass (restoring a saved state)."""
        with self._lock:
            self.__dict__["_next"] = int(next_pass)

    @property
    def holding(self) -> bool:
        """Whether passes get the held index (inside :meth:`hold`)."""
        return self._hold is not None

    def hold(self) -> None:
        """Give every pass the index of the next one until :meth:`release`."""
        with self._lock:
            if self._hold is not None:
                raise RuntimeError("fxfault.training.same_faults blocks cannot be nested")
            self.__dict__["_hold"] = self._next
            self.__dict__["_held_passes"] = 0

    def release(self, *, advance: bool = True) -> None:
        """End :meth:`hold`: the streams go on as if the held passes had been one pass (or, with
        ``advance=False``, as if they had not happened)."""
        with self._lock:
            held, n = self._hold, self._held_passes
            self.__dict__["_hold"] = None
            if held is not None and n and advance:
                self.__dict__["_next"] = int(held) + 1

    # ------------------------------------------------------------------ keys
    def draw_key(self, pass_index: int) -> tuple[int | str, ...]:
        """The key of a site's draw on forward pass ``pass_index``: equal keys, equal faults."""
        if self.mode == "persistent":
            return ("map", self.seed, self.trial)
        if self.seed_list is not None:
            # a seed-list pass uses exactly the persistent map of its seed
            return ("map", self.seed_list[pass_index % len(self.seed_list)], self.trial)
        return ("transient", self.seed, self.trial, pass_index)

    def repeats(self) -> bool:
        """Whether draws repeat, so that sites may keep them (persistent maps, seed lists)."""
        return self.mode == "persistent" or self.seed_list is not None

    # ------------------------------------------------------------------ trials
    def resample(self, seed: int | None = None) -> None:
        """Start a new trial: with ``seed``, restart from that seed; without, the next trial.
        The pass clock restarts at 0."""
        with self._lock:
            if seed is None:
                self.trial += 1
            else:
                self.seed = int(seed)
                self.trial = 0
            self.__dict__["_next"] = 0
            self.__dict__["_alloc"] = (None, {})

    # ------------------------------------------------------------------ exact counts
    @property
    def count_total_bits(self) -> int:
        return sum(n for _, n in self.count_members)

    def count_positions(self, site: str, key: tuple[int | str, ...]) -> torch.Tensor:
        """Local positions (among the site's targeted bits) of the site's share of ``count``."""
        have_key, alloc = self._alloc
        if have_key != key:
            alloc = self._allocate(key)
            self.__dict__["_alloc"] = (key, alloc)
        return alloc.get(site, torch.empty(0, dtype=torch.int64))

    def _allocate(self, key: tuple[int | str, ...]) -> dict[str, torch.Tensor]:
        if self.count is None:
            raise ConfigError("count_positions needs FaultConfig(count=n)")
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
