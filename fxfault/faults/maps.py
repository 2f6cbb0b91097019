"""Fault maps: where the faults of one pass go (the *where*, apart from what they do).

A :class:`FaultMap` lists the faulted positions of a site (sorted, distinct flat indices) with
one payload per position: the OR of the faulted bits (``1 << bit``), or for the value-level
``random`` pattern the offset added to the code. The functions here draw maps in time
proportional to the number of faults, from a generator seeded for the draw alone.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .sampling import bernoulli_positions, distinct_uniform

__all__ = ["FaultMap", "bit_faults", "fixed_faults", "pairs_to_map", "value_faults"]

_SMALL = 32


@dataclass(frozen=True)
class FaultMap:
    """The faults of one pass of one site, on the CPU.

    :ivar key: equal keys mean equal maps (the plan's draw key and the site's settings).
    :ivar index: sorted, distinct flat positions (an int64 NumPy array).
    :ivar payload: one int64 per position: a bit mask, or an offset for ``random``.
    :ivar events: the number of fault events (faulted bits; faulted values for value faults).
    """

    key: Hashable
    index: np.ndarray
    payload: np.ndarray
    events: int

    @property
    def empty(self) -> bool:
        return self.events == 0

    @staticmethod
    def none(key: Hashable) -> FaultMap:
        e = np.empty(0, dtype=np.int64)
        return FaultMap(key, e, e, 0)


def pairs_to_map(key: Hashable, w: np.ndarray, b: np.ndarray, *, sorted_: bool = False,
                 dedupe: bool = False) -> FaultMap:
    """Group ``(position, bit)`` pairs by position: the OR of ``1 << bit`` per position."""
    if dedupe and w.size:
        pair = np.unique(w.astype(np.int64) * 64 + b)
        w, b = pair // 64, pair % 64
        sorted_ = True
    events = int(w.size)
    if events == 0:
        return FaultMap.none(key)
    if sorted_ and events <= _SMALL:  # a handful of faults: plain Python beats NumPy's call costs
        pos: list[int] = []
        masks_l: list[int] = []
        for wi, bi in zip(w.tolist(), b.tolist()):
            if pos and pos[-1] == wi:
                masks_l[-1] |= 1 << bi
            else:
                pos.append(wi)
                masks_l.append(1 << bi)
        return FaultMap(key, np.array(pos, dtype=np.int64), np.array(masks_l, dtype=np.int64), events)
    bitval = np.left_shift(np.int64(1), b.astype(np.int64))
    if sorted_:
        starts = np.flatnonzero(np.concatenate(([True], w[1:] != w[:-1])))
        if starts.size == w.size:
            return FaultMap(key, np.ascontiguousarray(w, dtype=np.int64), bitval, events)
        uniq = w[starts]
        masks = np.add.reduceat(bitval, starts)
    else:
        uniq, inverse = np.unique(w, return_inverse=True)
        masks = np.zeros(uniq.size, dtype=np.int64)
        np.add.at(masks, inverse, bitval)
    return FaultMap(
        key, np.ascontiguousarray(uniq, dtype=np.int64), np.ascontiguousarray(masks, dtype=np.int64), events
    )


def bit_faults(key: Hashable, numel: int, groups: Sequence[tuple[float, np.ndarray]],
               gen: torch.Generator) -> FaultMap:
    """Independent Bernoulli faults per (position, bit); ``groups`` pairs each distinct rate
    with the bit planes that fail at it (one geometric-skipping walk per rate)."""
    if len(groups) == 1:  # the usual case: one rate for a set of planes
        rate, planes = groups[0]
        hits = bernoulli_positions(numel * planes.size, rate, gen).numpy()
        if not hits.size:
            return FaultMap.none(key)
        pos, plane = np.divmod(hits, planes.size)
        return pairs_to_map(key, pos, planes[plane], sorted_=True)
    ws: list[np.ndarray] = []
    bs: list[np.ndarray] = []
    for rate, planes in groups:
        hits = bernoulli_positions(numel * planes.size, rate, gen).numpy()
        if hits.size:
            pos, plane = np.divmod(hits, planes.size)
            ws.append(pos)
            bs.append(planes[plane])
    if not ws:
        return FaultMap.none(key)
    return pairs_to_map(key, np.concatenate(ws), np.concatenate(bs))


def fixed_faults(key: Hashable, faults: Sequence[tuple[int, int]]) -> FaultMap:
    """The map of an explicit list of ``(flat_index, bit)`` (duplicates count once)."""
    if not faults:
        return FaultMap.none(key)
    w = np.array([i for i, _ in faults], dtype=np.int64)
    b = np.array([j for _, j in faults], dtype=np.int64)
    return pairs_to_map(key, w, b, dedupe=True)


def value_faults(key: Hashable, numel: int, *, rate: float | None, fraction: float | None,
                 payload: int | None, span: int, gen: torch.Generator) -> FaultMap:
    """Value-level faults: each value with probability ``rate``, or exactly
    ``round(fraction * numel)`` values chosen without replacement.

    Every hit gets the fixed ``payload`` (a bit mask), or with ``payload=None`` a random offset
    in ``[1, span)`` (a uniformly random different code among ``span`` codes).
    """
    if fraction is not None:
        m = min(numel, round(fraction * numel))
        idx = torch.sort(distinct_uniform(numel, m, gen)).values.numpy()
    else:
        idx = bernoulli_positions(numel, float(rate or 0.0), gen).numpy()
    n = int(idx.size)
    if n == 0:
        return FaultMap.none(key)
    if payload is not None:
        pay = np.full(n, int(payload), dtype=np.int64)
    else:
        pay = torch.randint(1, span, (n,), generator=gen, dtype=torch.int64).numpy()
    return FaultMap(key, idx, pay, n)
