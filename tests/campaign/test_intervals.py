from __future__ import annotations

import math

import pytest

from fxfault.campaign.intervals import mean_ci, t_cdf, t_quantile

# t(0.975, df) from printed tables (e.g. NIST/SEMATECH e-Handbook, Table 1.3.6.7.2)
TABLE_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 9: 2.262, 10: 2.228,
             19: 2.093, 29: 2.045, 30: 2.042, 100: 1.984}


@pytest.mark.parametrize("df, expected", sorted(TABLE_975.items()))
def test_t_quantile_matches_printed_table(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=5e-4)


def test_t_quantile_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df in [*range(1, 41), 50, 75, 99, 100, 101, 250, 1000, 5000, 99_999, 100_001, 10**6]:
        for p in (0.8, 0.9, 0.95, 0.975, 0.99, 0.995, 0.9995, 0.025, 0.2):
            assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-10, abs=1e-12), (p, df)


def test_t_cdf_matches_scipy_and_inverts_the_quantile():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 4, 7, 30, 301):
        for x in (-4.0, -1.0, -0.2, 0.0, 0.5, 2.0, 6.0):
            assert t_cdf(x, df) == pytest.approx(stats.t.cdf(x, df), abs=1e-13)
        assert t_cdf(t_quantile(0.975, df), df) == pytest.approx(0.975, abs=1e-14)


def test_t_quantile_closed_forms_and_symmetry():
    assert t_quantile(0.5, 7) == 0.0
    assert t_quantile(0.975, 1) == pytest.approx(math.tan(math.pi * 0.475), rel=1e-14)
    assert t_quantile(0.975, 2) == pytest.approx(4.302652729749464, rel=1e-14)
    assert t_quantile(0.1, 6) == -t_quantile(0.9, 6)


def test_mean_ci_hand_computed():
    # values 1..5: mean 3, s = sqrt(2.5); t(0.975, 4) = 2.7764451051977987
    ci = mean_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)
    assert (ci.n, ci.mean, ci.std) == (5, 3.0, pytest.approx(math.sqrt(2.5)))
    assert ci.half_width == pytest.approx(half, rel=1e-12)
    assert (ci.low, ci.high) == (pytest.approx(3 - half), pytest.approx(3 + half))
    assert (round(ci.low, 4), round(ci.high, 4)) == (1.0368, 4.9632)


def test_mean_ci_other_confidence_and_edge_cases():
    ci90 = mean_ci([2.0, 4.0], confidence=0.9)  # t(0.95, 1) = 6.313751514675
    assert ci90.half_width == pytest.approx(6.313751514675 * math.sqrt(2) / math.sqrt(2), rel=1e-10)
    one = mean_ci([7.0])
    assert one.mean == 7.0 and math.isnan(one.std) and math.isnan(one.low) and math.isnan(one.high)
    same = mean_ci([3.0, 3.0, 3.0])
    assert same.std == 0.0 and same.low == same.high == 3.0


@pytest.mark.parametrize("bad", [dict(values=[]), dict(values=[1.0], confidence=1.0),
                                 dict(values=[1.0], confidence=0.0)])
def test_mean_ci_refuses_bad_input(bad):
    with pytest.raises(ValueError):
        mean_ci(**bad)


@pytest.mark.parametrize("p, df", [(0.0, 3), (1.0, 3), (0.9, 0), (0.9, 2.5), (0.9, True)])
def test_t_quantile_refuses_bad_input(p, df):
    with pytest.raises(ValueError):
        t_quantile(p, df)
