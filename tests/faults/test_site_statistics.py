"""Flip counts of a whole site follow Binomial(N*k, p) and hit every (weight, bit) uniformly.

The harness is checked against a sampler that draws positions with replacement and merges
duplicates: the same checks must reject it.
"""

import pytest
import torch

import fxfault
import fxfault.faults.maps as maps_module
from fxfault import FaultConfig
from fxfault.control import fault_sites

from ..helpers import single_layer
from ..stats import binomial_gof, total_z, uniform_gof

CASES = [
    # (out, in, bits, ber): the 1e-3 case, and small dense sites where merging shows
    ((64, 64), 4, 1e-3),
    ((4, 4), 4, 0.25),
    ((8, 8), 8, 0.05),
]


def _site(shape, bits, ber, seed=0):
    model = single_layer(bits, shape=shape)
    gm = fxfault.transform(model, FaultConfig(ber=ber, seed=seed))
    (site,) = fault_sites(gm)
    return site


def _check(shape, bits, ber, passes=3000):
    """Return (binomial p-value, total z, bit-position p-value, weight-position p-value)."""
    site = _site(shape, bits, ber)
    n = site.numel * bits
    counts = []
    bit_hist = torch.zeros(bits)
    w_bins = 16
    w_hist = torch.zeros(w_bins)
    for t in range(passes):
        w, masks, events = site.fault_map(t)
        counts.append(events)
        for b in range(bits):
            sel = (masks >> b) & 1
            bit_hist[b] += sel.sum()
            w_hist += torch.bincount(w[sel.bool()] * w_bins // site.numel, minlength=w_bins)
    return (
        binomial_gof(counts, n, ber),
        total_z(sum(counts), passes * n, ber),
        uniform_gof(bit_hist.numpy()),
        uniform_gof(w_hist.numpy()),
    )


@pytest.mark.slow
@pytest.mark.parametrize("shape, bits, ber", CASES)
def test_flip_counts_are_binomial_and_positions_uniform(shape, bits, ber):
    p_count, z, p_bits, p_weights = _check(shape, bits, ber)
    assert p_count > 1e-3, "per-pass flip counts do not fit Binomial(N*k, p)"
    assert abs(z) < 4, "total flips off the Binomial mean"
    assert p_bits > 1e-3, "bit positions are not uniform"
    assert p_weights > 1e-3, "weight positions are not uniform"


def _merging_sampler(n, p, gen):
    """A wrong sampler: Binomial count, positions with replacement, duplicates merged."""
    m = int(torch.binomial(torch.tensor(float(n)), torch.tensor(p), generator=gen))
    pos = torch.randint(0, n, (m,), generator=gen)
    return torch.unique(pos)


@pytest.mark.slow
def test_the_harness_rejects_a_sampler_that_merges_duplicates(monkeypatch):
    monkeypatch.setattr(maps_module, "bernoulli_positions", _merging_sampler)
    failures = 0
    for shape, bits, ber in CASES:
        p_count, z, _, _ = _check(shape, bits, ber)
        failures += p_count <= 1e-3 or abs(z) >= 4
    assert failures >= 1


def test_observed_rate_in_stats_matches(resnet18, cifar_x):
    gm = fxfault.transform(resnet18, FaultConfig(ber=1e-3, seed=2))
    with torch.no_grad():
        for _ in range(3):
            gm(cifar_x)
    st = fxfault.stats(gm)
    assert st.total.passes == 3
    assert st.total.exposed_bits == 3 * sum(s.numel * s.bits for s in fxfault.sites(gm))
    assert abs(total_z(st.total.events, st.total.exposed_bits, 1e-3)) < 4
    assert st.total.changed_bits == st.total.events  # flips always change the bit
    assert 0 < st.total.changed_weights <= st.total.events
    assert "total" in str(st) and "observed" in str(st)
    fxfault.reset_stats(gm)
    assert fxfault.stats(gm).total.events == 0
