"""Fault-aware training: STE, TRADES, schedules, SAM, and gradient-flow checks."""

import copy

import pytest
import torch
import torch.nn.functional as F

import fxfault
from fxfault import ConfigError, FaultConfig
from fxfault.testing import lsq_small_cnn
from fxfault.training import BerSchedule, clean_quantized_weights, sam_step, same_faults, trades_loss

X = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(0))
Y = torch.arange(8) % 10


def _grads(model):
    return {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()}


def _zero(model):
    for p in model.parameters():
        p.grad = None


def test_trades_gradient_is_the_weighted_sum():
    model = lsq_small_cnn()
    gm = fxfault.transform(model, FaultConfig(ber=0.05, mode="persistent", seed=2))
    alpha, beta = 0.7, 1.9
    loss, clean, noisy = trades_loss(gm, X, Y, F.cross_entropy, alpha=alpha, beta=beta)
    loss.backward()
    got = _grads(model)
    _zero(model)
    with fxfault.disabled(gm):
        F.cross_entropy(gm(X), Y).backward()
    g_clean = _grads(model)
    _zero(model)
    F.cross_entropy(gm(X), Y).backward()
    g_faulty = _grads(model)
    for n, g in got.items():
        if g is None:
            assert g_clean[n] is None and g_faulty[n] is None
            continue
        torch.testing.assert_close(g, alpha * g_clean[n] + beta * g_faulty[n], rtol=1e-5, atol=1e-7)
    assert not torch.equal(clean, noisy)
    torch.testing.assert_close(clean, F.cross_entropy(model(X), Y))
    with pytest.raises(ConfigError, match="alpha must be a finite number"):
        trades_loss(gm, X, Y, F.cross_entropy, alpha=float("nan"))


def test_ber_schedules():
    s = BerSchedule(1e-3, kind="exp", start=1e-6, warmup=3)
    assert [round(s(t), 12) for t in range(5)] == [1e-6, 1e-5, 1e-4, 1e-3, 1e-3]
    lin = BerSchedule(1e-2, kind="linear", start=0.0, warmup=4)
    assert [lin(t) for t in (0, 2, 4, 9)] == [0.0, 5e-3, 1e-2, 1e-2]
    step = BerSchedule(0.0, kind="step", start=0.0, milestones=[(2, 1e-5), (5, 1e-4)])
    assert [step(t) for t in (0, 2, 4, 5, 8)] == [0.0, 1e-5, 1e-5, 1e-4, 1e-4]
    assert BerSchedule(1e-4)(100) == 1e-4
    gm = fxfault.transform(lsq_small_cnn(), ber=0.0)
    assert s.apply(gm, 1) == pytest.approx(1e-5)
    assert all(x.ber == pytest.approx(1e-5) for x in fxfault.sites(gm))
    for bad in (dict(kind="cosine"), dict(kind="exp", start=0.0, warmup=2), dict(kind="linear")):
        with pytest.raises(ConfigError):
            BerSchedule(1e-3, **bad)


def test_same_faults_replays_the_pass():
    gm = fxfault.transform(lsq_small_cnn(), FaultConfig(ber=0.05, seed=1))
    ref = fxfault.transform(lsq_small_cnn(), FaultConfig(ber=0.05, seed=1))
    with torch.no_grad():
        with same_faults(gm):
            a, b = gm(X), gm(X)
        assert torch.equal(a, b)
        assert torch.equal(a, ref(X))
        # the streams go on as if the block had been one pass
        assert torch.equal(gm(X), ref(X))
        assert not torch.equal(gm(X), a)


@pytest.mark.parametrize("share", [True, False])
def test_sam_step_shares_or_redraws_faults(share):
    model = lsq_small_cnn()
    gm = fxfault.transform(model, FaultConfig(ber=0.05, seed=3))
    gm.train()
    seen = []

    def closure():
        with clean_quantized_weights(gm) as w:
            out = gm(X)
        plan = gm.fxfault_plan
        used = plan.next_pass if plan.holding else plan.next_pass - 1  # the pass just run
        seen.append(fxfault.fault_list(gm, used))
        assert set(w) == {"conv1", "conv2", "fc"}
        return F.cross_entropy(out, Y)

    opt = torch.optim.SGD(gm.parameters(), lr=0.1)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    first, second = sam_step(gm, closure, opt, rho=0.05, share_faults=share)
    assert (seen[0] == seen[1]) is share
    changed = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert "conv2.weight" in changed  # the optimizer stepped (from the restored weights)
    assert first.shape == second.shape == ()


def test_clean_quantized_weight_gradient_is_the_ste_gradient():
    model = lsq_small_cnn()
    gm = fxfault.transform(model, FaultConfig(ber=0.05, mode="persistent"))
    with clean_quantized_weights(gm) as w:
        out = gm(X)
    F.cross_entropy(out, Y).backward()
    g = w["conv2"].grad
    assert g is not None and g.shape == model.conv2.weight.shape and g.abs().sum() > 0


def test_gradient_flow_checks_in_the_style_of_the_users_report():
    """requires_grad / grad_fn where expected, and no detached path where a gradient is needed."""
    model = lsq_small_cnn()
    gm = fxfault.transform(model, FaultConfig(ber=0.05, mode="persistent"))
    gm.train()
    from .helpers import Capture

    cap = Capture(gm, suffixes=("_quantize", "_dequantize", "_straight_through"))
    out = cap.run(X)
    v = cap.values
    assert out.requires_grad and out.grad_fn is not None
    assert v["conv2_quan_w_fn"].requires_grad and v["conv2_quan_w_fn"].grad_fn is not None
    assert not v["conv2_weight_quantize"].requires_grad  # integer codes
    assert not v["conv2_weight_dequantize"].requires_grad  # the faulted value is detached...
    st = v["conv2_weight_straight_through"]
    assert st.requires_grad and st.grad_fn is not None  # ...but the chain's output is not
    (gw,) = torch.autograd.grad(out.sum(), model.conv2.weight, retain_graph=True)
    assert gw.abs().sum() > 0
    (gs,) = torch.autograd.grad(out.sum(), model.conv2.quan_w_fn.s)
    assert gs.abs().sum() > 0


def test_a_training_step_keeps_the_invariants():
    model = lsq_small_cnn()
    ref = copy.deepcopy(model)
    gm = fxfault.transform(model, FaultConfig(ber=0.05, seed=4))
    gm.train()
    opt = torch.optim.SGD(gm.parameters(), lr=0.05)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    loss = F.cross_entropy(gm(X), Y)
    opt.zero_grad()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    opt.step()
    assert torch.equal(torch.get_rng_state(), state)  # global RNG untouched
    for n, p in model.named_parameters():
        r = dict(ref.named_parameters())[n]
        expected = r - 0.05 * grads[n] if n in grads else r
        torch.testing.assert_close(p, expected)  # only the optimizer wrote the weights
    gm.eval()
    with torch.no_grad(), fxfault.disabled(gm):
        assert torch.equal(gm(X), model.eval()(X))  # faults still never in the weights
