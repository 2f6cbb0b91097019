"""Bit-position rates: presets, validation, and an exact Bernoulli process per bit plane."""

import pytest
import torch

import fxfault
from fxfault import ConfigError, FaultConfig
from fxfault.control import fault_sites
from fxfault.faults.rates import plane_rates

from ..helpers import single_layer
from ..stats import binomial_gof


@pytest.mark.parametrize(
    "spec, rates",
    [
        (None, [0.1] * 4),
        ("msb_only", [0, 0, 0, 0.1]),
        ("skip_msb", [0.1, 0.1, 0.1, 0]),
        ("skip_msb2", [0.1, 0.1, 0, 0]),
        ("bit=1", [0, 0.1, 0, 0]),
        ("dual:0.01,0.001", [0, 0, 0.001, 0.01]),
        ((0.1, 0.2, 0.3, 0.4), [0.1, 0.2, 0.3, 0.4]),
    ],
)
def test_presets(spec, rates):
    cfg = FaultConfig(bit_rates=spec)
    assert plane_rates(cfg.bit_rates, 4, 0.1) == pytest.approx(rates)


def test_rate_validation():
    with pytest.raises(ConfigError, match="has 3 entries but the site.*has 4 bits"):
        fxfault.transform(single_layer(4), FaultConfig(bit_rates=[0.1, 0.1, 0.1]))
    with pytest.raises(ConfigError, match=r"rates must be numbers in \[0, 1\]"):
        FaultConfig(bit_rates=[0.1, 1.5])
    with pytest.raises(ConfigError, match="unknown preset 'msb'"):
        FaultConfig(bit_rates="msb")
    with pytest.raises(ConfigError, match="bit 5 does not exist in the 4-bit site"):
        fxfault.transform(single_layer(4), FaultConfig(bit_rates="bit=5", ber=0.1))
    with pytest.raises(ConfigError, match="'dual' needs the MSB rate"):
        FaultConfig(bit_rates="dual")


def test_set_ber_refuses_absolute_rates():
    gm = fxfault.transform(single_layer(4), FaultConfig(bit_rates=[0.1, 0, 0, 0]))
    with pytest.raises(ConfigError, match="absolute bit_rates"):
        fxfault.set_ber(gm, 0.2)
    gm = fxfault.transform(single_layer(4), FaultConfig(bit_rates="msb_only", ber=0.01))
    fxfault.set_ber(gm, 0.2)
    assert fxfault.sites(gm)[0].rates == (0, 0, 0, 0.2)


def _plane_counts(site, passes):
    counts = torch.zeros(passes, site.bits, dtype=torch.int64)
    for t in range(passes):
        _, masks, _ = site.fault_map(t)
        for b in range(site.bits):
            counts[t, b] = ((masks >> b) & 1).sum()
    return counts


RATES = (0.3, 0.1, 0.0, 0.02)


@pytest.mark.slow
def test_each_bit_plane_is_bernoulli_at_its_own_rate():
    gm = fxfault.transform(single_layer(4, shape=(8, 16)), FaultConfig(bit_rates=list(RATES)))
    (site,) = fault_sites(gm)
    counts = _plane_counts(site, 3000)
    for b, r in enumerate(RATES):
        if r == 0:
            assert counts[:, b].sum() == 0
        else:
            assert binomial_gof(counts[:, b].tolist(), site.numel, r) > 1e-3, f"plane {b}"


@pytest.mark.slow
def test_a_biased_plane_sampler_fails_the_check(monkeypatch):
    """Draw the total over all planes, then spread it evenly: per-plane counts are wrong."""
    gm = fxfault.transform(single_layer(4, shape=(8, 16)), FaultConfig(bit_rates=list(RATES)))
    (site,) = fault_sites(gm)
    mean = sum(RATES) / 4
    monkeypatch.setattr(site, "_rates", [mean] * 4)
    counts = _plane_counts(site, 3000)
    pvals = [binomial_gof(counts[:, b].tolist(), site.numel, r) for b, r in enumerate(RATES) if r]
    assert min(pvals) < 1e-3
