"""Goodness-of-fit helpers for the statistical tests (seeded, so results are reproducible)."""

from __future__ import annotations

import numpy as np
from scipy import stats


def binomial_gof(counts, n: int, p: float) -> float:
    """p-value of a chi-square test that ``counts`` are draws of Binomial(n, p).

    Bins with small expectations are pooled into the tails so that each holds >= 5.
    """
    counts = np.asarray(counts)
    m = len(counts)
    lo, hi = int(stats.binom.ppf(1e-9, n, p)), int(stats.binom.isf(1e-9, n, p)) + 1
    support = np.arange(lo, hi + 1)
    pmf = stats.binom.pmf(support, n, p)
    # pool: walk from both ends until each bin expects >= 5
    edges = [lo]
    acc = 0.0
    for k, q in zip(support, pmf):
        acc += q * m
        if acc >= 5:
            edges.append(k + 1)
            acc = 0.0
    edges[-1] = hi + 1
    edges = np.array(edges)
    observed, _ = np.histogram(counts, bins=np.append(edges[:-1], np.inf) if len(edges) > 1 else [lo, np.inf])
    cdf = stats.binom.cdf(edges - 1, n, p)
    expected = np.diff(np.concatenate([[0.0], cdf[1:-1], [1.0]])) * m
    observed = observed[: len(expected)]
    if len(expected) < 2:
        return 1.0
    return float(stats.chisquare(observed, expected * observed.sum() / expected.sum()).pvalue)


def total_z(total: int, trials: int, p: float) -> float:
    """z-score of a Binomial(trials, p) total."""
    mean = trials * p
    sd = (trials * p * (1 - p)) ** 0.5
    return (total - mean) / sd


def uniform_gof(observed) -> float:
    """p-value of a chi-square test that ``observed`` bin counts are uniform."""
    observed = np.asarray(observed, dtype=float)
    return float(stats.chisquare(observed).pvalue)
