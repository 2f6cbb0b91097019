"""Confidence intervals of a mean over trials: Student-t, with no dependency beyond the stdlib.

For ``n`` trial values with mean ``m`` and sample standard deviation ``s`` (``n - 1`` in the
denominator), the two-sided ``c`` confidence interval is ``m ± t * s / sqrt(n)``, where ``t``
is the ``(1 + c) / 2`` quantile of Student's t distribution with ``n - 1`` degrees of freedom.

:func:`t_quantile` computes that quantile without scipy: the t CDF of an integer number of
degrees of freedom has a closed form (Abramowitz & Stegun 26.7.3-4, a finite sum), which is
inverted by safeguarded Newton steps started from the Cornish-Fisher expansion. It agrees
with ``scipy.stats.t.ppf`` to about 1e-12 (the test-suite compares them).

Example::

    >>> round(t_quantile(0.975, 4), 6)
    2.776445
    >>> ci = mean_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    >>> round(ci.low, 4), round(ci.high, 4)
    (1.0368, 4.9632)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

__all__ = ["Interval", "mean_ci", "t_cdf", "t_quantile"]

# Above this many degrees of freedom the Cornish-Fisher expansion alone is exact to double
# precision (its error is O(df^-5)), and the finite sum would be needlessly long.
_LARGE_DF = 100_000


def _check_df(df: int) -> int:
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise ValueError(f"degrees of freedom must be an integer >= 1, got {df!r}")
    return df


def t_cdf(t: float, df: int) -> float:
    """``P(T <= t)`` for Student's t with ``df`` (an integer >= 1) degrees of freedom."""
    _check_df(df)
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    a = _two_sided(abs(t), df)  # P(|T| <= |t|)
    return 0.5 + 0.5 * a if t >= 0 else 0.5 - 0.5 * a


def _two_sided(t: float, df: int) -> float:
    """``P(|T| <= t)`` for ``t >= 0`` (A&S 26.7.3 for odd, 26.7.4 for even ``df``)."""
    theta = math.atan2(t, math.sqrt(df))
    c2 = df / (df + t * t)  # cos^2(theta)
    if df % 2 == 1:
        if df == 1:
            return 2.0 * theta / math.pi
        term, total = 1.0, 1.0
        for k in range(1, (df - 1) // 2):  # (2/3) c2, (2*4)/(3*5) c2^2, ...
            term *= (2 * k) / (2 * k + 1) * c2
            total += term
        return 2.0 / math.pi * (theta + math.sin(theta) * math.cos(theta) * total)
    term, total = 1.0, 1.0
    for k in range(1, df // 2):  # (1/2) c2, (1*3)/(2*4) c2^2, ...
        term *= (2 * k - 1) / (2 * k) * c2
        total += term
    return math.sin(theta) * total


def _t_pdf(t: float, df: int) -> float:
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log_norm - (df + 1) / 2 * math.log1p(t * t / df))


def _cornish_fisher(p: float, df: int) -> float:
    z = NormalDist().inv_cdf(p)
    z2 = z * z
    g1 = (z2 + 1) * z / 4
    g2 = ((5 * z2 + 16) * z2 + 3) * z / 96
    g3 = (((3 * z2 + 19) * z2 + 17) * z2 - 15) * z / 384
    g4 = ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) * z / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


@lru_cache(maxsize=256)
def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom: ``t_cdf(x, df) = p``.

    :param p: a probability in (0, 1); ``t_quantile(0.975, n - 1)`` is the factor of a
        two-sided 95 % interval over ``n`` values.
    :param df: degrees of freedom, an integer >= 1.
    """
    _check_df(df)
    p = float(p)
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be a probability strictly between 0 and 1, got {p!r}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    if df > _LARGE_DF:
        return _cornish_fisher(p, df)
    # Newton on the two-sided probability P(|T| <= x) = 2p - 1 (no cancellation near p = 0.5),
    # kept inside a bracket that bisection shrinks whenever a step would leave it.
    target = 2.0 * p - 1.0
    lo, hi = 0.0, 1.0
    while _two_sided(hi, df) < target:
        lo, hi = hi, hi * 2.0
    x = min(max(_cornish_fisher(p, df), lo), hi)
    for _ in range(200):
        f = _two_sided(x, df) - target
        if f == 0.0:
            return x
        if f > 0:
            hi = x
        else:
            lo = x
        nxt = x - f / (2.0 * _t_pdf(x, df))
        if not lo < nxt < hi:
            nxt = 0.5 * (lo + hi)
        if abs(nxt - x) <= 4e-16 * abs(x):
            return nxt
        x = nxt
    return x


@dataclass(frozen=True)
class Interval:
    """Mean, spread and two-sided confidence interval of ``n`` trial values.

    ``std`` is the sample standard deviation (``n - 1`` in the denominator). With a single
    value ``std``, ``half_width``, ``low`` and ``high`` are NaN: one trial says nothing about
    the spread. With identical values the interval has zero width.
    """

    n: int
    mean: float
    std: float
    half_width: float
    confidence: float

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """The Student-t confidence interval of the mean of ``values``.

    :param values: one value per trial (at least one).
    :param confidence: the coverage of the two-sided interval, in (0, 1).

    Example::

        >>> mean_ci([90.0, 92.0, 94.0]).half_width   # t(0.975, 2) * 2 / sqrt(3)
        4.968...
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        raise ValueError("mean_ci needs at least one value")
    mean = math.fsum(xs) / n
    if n == 1:
        return Interval(1, mean, math.nan, math.nan, confidence)
    var = math.fsum((x - mean) ** 2 for x in xs) / (n - 1)
    std = math.sqrt(var)
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * std / math.sqrt(n)
    return Interval(n, mean, std, half, confidence)
