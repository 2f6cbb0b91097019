"""Stuck-at faults, exact counts, explicit fault lists, and their statistics."""

import pytest
import torch

import fxfault
from fxfault import ConfigError, FaultConfig
from fxfault.control import fault_sites

from ..helpers import capture, single_layer
from ..stats import uniform_gof


def _run(cfg, shape=(4, 8), bits=4):
    gm = fxfault.transform(single_layer(bits, shape=shape), cfg)
    _, v = capture(gm, torch.rand(1, shape[1]))
    return gm, v["fc_weight_quantize"].to(torch.int64).reshape(-1), v["fc_weight_flip"].to(torch.int64).reshape(-1)


def test_stuck_at_forces_the_bit_by_hand():
    faults = [("fc", i, b) for i in range(8) for b in range(4)]
    for fault, forced in (("stuck_at_0", 0), ("stuck_at_1", 1)):
        gm, codes, out = _run(FaultConfig(fault=fault, faults=faults))
        words = codes[:8] + 8  # offset binary, k = 4
        want = torch.full_like(words, 0 if forced == 0 else 15) - 8
        assert torch.equal(out[:8], want)
        assert torch.equal(out[8:], codes[8:])
        st = fxfault.stats(gm)
        assert st.total.events == 32
        # only bits that did not hold the forced value changed
        expect = sum(bin(int(w) ^ (0 if forced == 0 else 15)).count("1") for w in words)
        assert st.total.changed_bits == expect
        assert st.total.changed_weights == int((words != (0 if forced == 0 else 15)).sum())


def test_stuck_at_stats_count_events_apart_from_changed_bits():
    gm = fxfault.transform(single_layer(4, shape=(32, 64)), FaultConfig(fault="stuck_at_1", ber=0.05, seed=1))
    with torch.no_grad():
        for _ in range(5):
            gm(torch.rand(1, 64))
    st = fxfault.stats(gm).total
    assert st.events > 0
    assert 0 < st.changed_bits < st.events  # about half the bits already hold a 1


def test_exact_counts_are_exact_and_without_replacement(resnet18):
    for mode in ("transient", "persistent"):
        gm = fxfault.transform(resnet18, FaultConfig(count=37, mode=mode, seed=2))
        for t in range(20):
            total = 0
            for s in fault_sites(gm):
                _, masks, events = s.fault_map(t)
                total += events
                assert events == sum(bin(int(m)).count("1") for m in masks)
            assert total == 37
            faults = fxfault.fault_list(gm, t)
            assert len(faults) == len(set(faults)) == 37


@pytest.mark.slow
def test_exact_counts_spread_in_proportion_to_bits(resnet18):
    gm = fxfault.transform(resnet18, FaultConfig(count=50, seed=3))
    sites = fault_sites(gm)
    share = torch.zeros(len(sites))
    for t in range(400):
        for i, s in enumerate(sites):
            share[i] += s.fault_map(t)[2]
    bits = torch.tensor([float(s.numel * s.bits) for s in sites])
    expected = bits / bits.sum() * share.sum()
    from scipy import stats

    keep = expected >= 5
    obs, exp = share[keep], expected[keep]
    if (~keep).any():
        obs = torch.cat([obs, share[~keep].sum().reshape(1)])
        exp = torch.cat([exp, expected[~keep].sum().reshape(1)])
    exp = exp.double() * obs.sum().double() / exp.double().sum()
    assert stats.chisquare(obs.double().numpy(), exp.numpy()).pvalue > 1e-3


def test_count_respects_targeted_bits():
    gm = fxfault.transform(single_layer(4, shape=(16, 16)), FaultConfig(count=10, bit_rates="msb_only"))
    faults = fxfault.fault_list(gm)
    assert len(faults) == 10 and {b for _, _, b in faults} == {3}
    with pytest.raises(ConfigError, match="count=300 is larger than the 256 targeted bits"):
        fxfault.transform(single_layer(4, shape=(16, 16)), FaultConfig(count=300, bit_rates="msb_only"))


def test_count_positions_are_uniform():
    gm = fxfault.transform(single_layer(4, shape=(16, 16)), FaultConfig(count=20, seed=5))
    (site,) = fault_sites(gm)
    hist = torch.zeros(16)
    for t in range(500):
        w, masks, _ = site.fault_map(t)
        for b in range(4):
            sel = ((masks >> b) & 1).bool()
            hist += torch.bincount(w[sel] * 16 // site.numel, minlength=16)
    assert uniform_gof(hist.numpy()) > 1e-3


def test_fault_list_replay_reproduces_a_sampled_run_bit_for_bit(resnet18, cifar_x):
    sampled = fxfault.transform(resnet18, FaultConfig(ber=1e-3, mode="persistent", seed=9))
    faults = fxfault.fault_list(sampled)
    assert len(faults) > 100
    replay = fxfault.transform(resnet18, FaultConfig(faults=faults))
    with torch.no_grad():
        a, b = sampled(cifar_x), replay(cifar_x)
    assert torch.equal(a, b)
    assert fxfault.stats(sampled).total.events == fxfault.stats(replay).total.events == len(faults)


def test_fault_list_errors(resnet18):
    with pytest.raises(ConfigError, match="'layer1.0.cnv1' matches no selected fault site"):
        fxfault.transform(resnet18, FaultConfig(faults=[("layer1.0.cnv1", 0, 0)]))
    with pytest.raises(ConfigError, match="flat index 10000000 is out of range for site 'conv1'"):
        fxfault.transform(resnet18, FaultConfig(faults=[("conv1", 10_000_000, 0)]))
    with pytest.raises(ConfigError, match="bit 4 does not exist in the 4-bit site 'layer1.0.conv1'"):
        fxfault.transform(resnet18, FaultConfig(faults=[("layer1.0.conv1", 0, 4)]))


def test_duplicate_fault_list_entries_count_once():
    gm, codes, out = _run(FaultConfig(faults=[("fc", 0, 1), ("fc", 0, 1)]))
    assert int(out[0]) == ((int(codes[0]) + 8) ^ 2) - 8
    assert fxfault.stats(gm).total.events == 1
