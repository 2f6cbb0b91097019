"""Exact samplers whose cost grows with the number of faults, never with the number of bits.

* :func:`bernoulli_positions` — the positions of the successes of ``n`` independent
  Bernoulli(``p``) trials, drawn by geometric skipping: the gaps between successes are
  independent Geometric(``p``) variables, ``floor(log(1 - U) / log(1 - p))``. The result is
  exactly the Bernoulli process (no position can repeat, nothing is merged), in time
  proportional to the number of successes.
* :func:`distinct_uniform` — ``m`` distinct integers drawn uniformly from ``[0, total)``
  (a uniform random ``m``-subset), by drawing with replacement and keeping first occurrences.
* :func:`derive_seed` — a stable 63-bit seed from any tuple of ints and strings
  (BLAKE2b; the same in every process and on every platform).

All sampling runs on the CPU with an explicit :class:`torch.Generator`, so results do not
depend on the device, and the global torch RNG is never touched.
"""

from __future__ import annotations

import hashlib
import math
import operator

import numpy as np
import torch

__all__ = ["bernoulli_positions", "derive_seed", "distinct_uniform", "generator"]


def derive_seed(*parts: int | str) -> int:
    """A stable seed in ``[0, 2^63)`` from ``parts`` (ints and strings)."""
    # integer-likes (NumPy integers, IntEnum, bool) hash as the plain ints they stand for
    norm = tuple(p if isinstance(p, str) else int(operator.index(p)) for p in parts)
    data = repr(norm).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little") & (
        (1 << 63) - 1
    )


def generator(seed: int) -> torch.Generator:
    """A fresh CPU generator seeded with ``seed``."""
    g = torch.Generator(device="cpu")
    g.manual_seed(seed)
    return g


_SMALL = 48  # chunks up to this many uniforms are walked in Python


def bernoulli_positions(n: int, p: float, gen: torch.Generator) -> torch.Tensor:
    """Sorted positions (``int64``) in ``[0, n)`` where independent Bernoulli(``p``) trials
    succeed. The result shares its memory with a NumPy array (``.numpy()`` is free)."""
    if n <= 0 or p <= 0.0:
        return torch.empty(0, dtype=torch.int64)
    if p >= 1.0:
        return torch.arange(n, dtype=torch.int64)
    return torch.from_numpy(_walk(n, p, gen))


def _walk(n: int, p: float, gen: torch.Generator) -> np.ndarray:
    log_q = math.log1p(-p)
    chunks: list[np.ndarray] = []
    start = 0
    while start < n:
        mu = (n - start) * p
        m = min(int(mu + 6.0 * math.sqrt(mu) + 16.0), n - start)
        # the uniforms come from the site's torch.Generator; the arithmetic runs in Python
        # (few uniforms) or NumPy (many), both much cheaper than torch for small arrays
        u = torch.rand(m, dtype=torch.float64, generator=gen).numpy()
        gaps = np.log1p(-u) / log_q  # >= 0; the gap is its floor
        if m <= _SMALL:
            # few draws (the low error rates that matter most): walking the same gaps in plain
            # Python beats the per-call cost of NumPy; int() of a non-negative float is floor()
            pos_list: list[int] = []
            at = start - 1
            for g in gaps.tolist():
                at += (int(g) if g < n else n) + 1
                if at >= n:
                    break
                pos_list.append(at)
            else:
                chunks.append(np.array(pos_list, dtype=np.int64))
                start = at + 1
                continue
            chunks.append(np.array(pos_list, dtype=np.int64))
            break
        np.floor(gaps, out=gaps)
        np.minimum(gaps, float(n), out=gaps)
        pos = np.cumsum(gaps.astype(np.int64) + 1) + (start - 1)
        if pos[-1] < n:
            chunks.append(pos)
            start = int(pos[-1]) + 1
            continue
        chunks.append(pos[pos < n])
        break
    return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)


def distinct_uniform(total: int, m: int, gen: torch.Generator) -> torch.Tensor:
    """``m`` distinct integers from ``[0, total)``, a uniform random subset in random order."""
    if m < 0 or m > total:
        raise ValueError(f"cannot draw {m} distinct values from {total}")
    if m == 0:
        return torch.empty(0, dtype=torch.int64)
    if total <= 4 * m or total <= 1 << 16:
        return torch.randperm(total, generator=gen)[:m]
    picked = torch.empty(0, dtype=torch.int64)
    while picked.numel() < m:
        need = m - picked.numel()
        draw = torch.randint(0, total, (int(need * 1.1) + 16,), generator=gen, dtype=torch.int64)
        seq = torch.cat([picked, draw])
        uniq, inverse = torch.unique(seq, return_inverse=True)
        first = torch.full((uniq.numel(),), seq.numel(), dtype=torch.int64)
        first.scatter_reduce_(0, inverse, torch.arange(seq.numel()), reduce="amin")
        order = torch.argsort(first)
        picked = uniq[order][:m]
    return picked
