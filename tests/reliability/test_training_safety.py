"""Training helpers that perturb or switch state restore it exactly, also when the closure raises
(issue 17)."""

import pytest
import torch
import torch.nn.functional as F

import fxfault
from fxfault import FaultConfig
from fxfault.control import fault_sites
from fxfault.graph.access import plan_of
from fxfault.testing import lsq_small_cnn
from fxfault.training import (
    BerSchedule,
    clean_quantized_weights,
    recalibrate_batchnorm,
    sam_step,
    same_faults,
)

X = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
Y = torch.tensor([0, 1, 2, 3])


def _setup(lr=0.1):
    model = lsq_small_cnn()
    gm = fxfault.transform(model, FaultConfig(ber=0.05, seed=3)).train()
    opt = torch.optim.SGD(gm.parameters(), lr=lr)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    return model, gm, opt, before


def _same(model, before):
    return all(torch.equal(p, before[n]) for n, p in model.named_parameters())


@pytest.mark.parametrize("fail_on", [1, 2])
def test_sam_step_restores_the_weights_when_the_closure_raises(fail_on):
    model, gm, opt, before = _setup()
    calls = []

    def closure():
        calls.append(1)
        if len(calls) == fail_on:
            raise RuntimeError("closure failed")
        return F.cross_entropy(gm(X), Y)

    with pytest.raises(RuntimeError, match="closure failed"):
        sam_step(gm, closure, opt, rho=0.05)
    assert _same(model, before), "a perturbed weight was left behind"
    assert not plan_of(gm).holding, "same_faults was left on"


def test_sam_step_with_lr_zero_changes_nothing():
    model, gm, opt, before = _setup(lr=0.0)
    sam_step(gm, lambda: F.cross_entropy(gm(X), Y), opt, rho=0.05)
    assert _same(model, before)


def test_same_faults_and_collecting_are_released_after_an_error():
    _, gm, _, _ = _setup()
    with pytest.raises(ValueError), same_faults(gm):
        raise ValueError
    assert not plan_of(gm).holding
    with pytest.raises(ValueError), clean_quantized_weights(gm):
        raise ValueError
    x = gm(X)  # nothing is collected any more
    assert x is not None and all(s._collector is None for s in fault_sites(gm))


def test_recalibrate_batchnorm_restores_modes_and_momenta_after_an_error():
    _, gm, _, _ = _setup()
    gm.eval()
    bns = [m for m in gm.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in bns]

    def data():
        yield X
        raise OSError("disk gone")

    with pytest.raises(OSError):
        recalibrate_batchnorm(gm, data())
    assert [m.momentum for m in bns] == momenta and not any(m.training for m in gm.modules())


def test_ber_schedule_apply_sets_only_valid_rates():
    _, gm, _, _ = _setup()
    with pytest.raises(fxfault.ConfigError):
        BerSchedule(2.0)
    BerSchedule(1e-4).apply(gm, 0)
    assert all(s.ber == pytest.approx(1e-4) for s in fxfault.sites(gm))
