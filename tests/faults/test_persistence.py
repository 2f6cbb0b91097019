"""Persistent fault maps, seed lists, and the eval-mode cache."""

import pytest
import torch

import fxfault
import fxfault.ops as ops_module
from fxfault import FaultConfig

from ..helpers import capture


def _flips(gm, x):
    _, v = capture(gm, x, suffixes=("_flip",))
    return {k: t.clone() for k, t in v.items() if k.endswith("_flip")}


def test_persistent_maps_are_stable_across_passes_and_batch_sizes(resnet18):
    gm = fxfault.transform(resnet18, FaultConfig(ber=1e-3, mode="persistent", seed=1))
    a = _flips(gm, torch.rand(1, 3, 32, 32))
    b = _flips(gm, torch.rand(7, 3, 32, 32))
    c = _flips(gm, torch.rand(2, 3, 32, 32))
    for k in a:
        assert torch.equal(a[k], b[k]) and torch.equal(a[k], c[k])
    fxfault.resample(gm, seed=2)
    d = _flips(gm, torch.rand(1, 3, 32, 32))
    assert any(not torch.equal(a[k], d[k]) for k in a)
    fxfault.resample(gm)  # next trial of seed 2
    e = _flips(gm, torch.rand(1, 3, 32, 32))
    assert any(not torch.equal(d[k], e[k]) for k in a)


def test_transient_maps_change_every_pass(cnn, digits_x):
    gm = fxfault.transform(cnn, FaultConfig(ber=0.05, seed=1))
    a, b = _flips(gm, digits_x), _flips(gm, digits_x)
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_seed_list_rotates(cnn, digits_x):
    gm = fxfault.transform(cnn, FaultConfig(ber=0.05, seed_list=[4, 5, 6]))
    maps = [fxfault.fault_list(gm, t) for t in range(7)]
    assert maps[0] == maps[3] == maps[6] and maps[1] == maps[4]
    assert maps[0] != maps[1] != maps[2]
    # the map of pass t is the persistent map of seed seed_list[t % 3]
    pers = fxfault.transform(cnn, FaultConfig(ber=0.05, mode="persistent", seed=5))
    assert fxfault.fault_list(pers) == maps[1]
    outs = [gm(digits_x) for _ in range(4)]
    assert torch.equal(outs[0], outs[3]) and not torch.equal(outs[0], outs[1])


class _Counter:
    def __init__(self, monkeypatch):
        self.n = 0
        real = ops_module._quantize_impl

        def counting(*a, **k):
            self.n += 1
            return real(*a, **k)

        monkeypatch.setattr(ops_module, "_quantize_impl", counting)


def test_eval_cache_reuses_faulted_weights_and_invalidates(cnn, digits_x, monkeypatch):
    gm = fxfault.transform(cnn, FaultConfig(ber=0.02, mode="persistent", seed=3))
    counter = _Counter(monkeypatch)
    with torch.no_grad():
        first = gm(digits_x)
        n_sites = counter.n
        assert n_sites == 3
        for _ in range(3):
            assert torch.equal(gm(digits_x), first)
        assert counter.n == n_sites, "repeated eval passes reuse the cached codes"
        assert fxfault.stats(gm).total.passes == 4
        # a weight update (any in-place write) invalidates that site's cache
        with torch.no_grad():
            cnn.conv2.weight.mul_(1.5)
        changed = gm(digits_x)
        assert counter.n == n_sites + 1
        assert not torch.equal(changed, first)
        # ... and the result equals a fresh, uncached transform of the updated model
        fresh = fxfault.transform(cnn, FaultConfig(ber=0.02, mode="persistent", seed=3, cache=False))
        assert torch.equal(fresh(digits_x), changed)
        # new faults (set_ber / resample) invalidate too
        fxfault.resample(gm, seed=4)
        assert not torch.equal(gm(digits_x), changed)
        fxfault.set_ber(gm, 0.0)
        assert torch.equal(gm(digits_x), cnn(digits_x))


def test_cache_is_off_in_training_and_codes_only_in_transient_mode(cnn, digits_x, monkeypatch):
    gm = fxfault.transform(cnn, FaultConfig(ber=0.02, mode="persistent"))
    counter = _Counter(monkeypatch)
    gm.train()
    gm(digits_x)
    gm(digits_x)
    assert counter.n == 6, "no reuse in training mode"
    gm2 = fxfault.transform(cnn, FaultConfig(ber=0.02))
    with torch.no_grad():
        a = gm2.eval()(digits_x)
        b = gm2(digits_x)
    # transient faults in eval: the clean codes are reused (they do not depend on the faults),
    # the faults are new on every pass
    assert counter.n == 9
    assert not torch.equal(a, b)


@pytest.mark.parametrize("fault", ["flip", "stuck_at_1"])
def test_cached_passes_count_in_stats(cnn, digits_x, fault):
    gm = fxfault.transform(cnn, FaultConfig(ber=0.05, mode="persistent", fault=fault))
    with torch.no_grad():
        gm(digits_x)
        one = fxfault.stats(gm).total
        gm(digits_x)
        two = fxfault.stats(gm).total
    assert two.events == 2 * one.events and two.changed_bits == 2 * one.changed_bits
    assert two.changed_weights == 2 * one.changed_weights and two.passes == 2


@pytest.mark.parametrize("mode", ["transient", "persistent"])
@pytest.mark.parametrize("fault", ["flip", "stuck_at_0"])
def test_eval_buffers_give_exactly_the_uncached_results(resnet18, cifar_x, mode, fault):
    """The eval fast path (reused codes, undo-and-patch buffers) is an optimisation only."""
    cfg = FaultConfig(ber=2e-3, mode=mode, fault=fault, seed=5, encoding={"layer2.*": "gray"})
    fast = fxfault.transform(resnet18, cfg)
    slow = fxfault.transform(resnet18, cfg.replace(cache=False))
    with torch.no_grad():
        for step in range(4):
            if step == 2:
                fxfault.set_enabled(fast, False)
                fxfault.set_enabled(slow, False)
            if step == 3:
                fxfault.set_enabled(fast, True)
                fxfault.set_enabled(slow, True)
                resnet18.layer1[0].conv1.weight.mul_(0.9)  # new clean codes for one site
            a, b = fast(cifar_x), slow(cifar_x)
            assert torch.equal(a, b), f"pass {step}"
    # a pass with autograd on takes the safe path and agrees as well
    assert torch.equal(fast(cifar_x), slow(cifar_x))
    assert fxfault.stats(fast).to_dict() == fxfault.stats(slow).to_dict()
