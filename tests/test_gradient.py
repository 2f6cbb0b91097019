"""The backward pass: the gradient of the clean quantized weight (straight-through)."""

import copy

import pytest
import torch
import torch.nn.functional as F

import fxfault
from fxfault import FaultConfig
from fxfault.testing import lsq_small_cnn

from .helpers import capture


def _faulted_weights(gm, x):
    _, v = capture(gm, x, suffixes=("_dequantize",))
    return {k[: -len("_weight_dequantize")]: t for k, t in v.items() if k.endswith("_dequantize")}


def _reference_grads(model, faulted, x, y):
    """Gradients of ``model`` computed by hand with the STE formula, via forward hooks."""
    ref = copy.deepcopy(model)
    handles = []
    for name, m in ref.named_modules():
        if hasattr(m, "quan_w_fn"):
            wf = faulted[name.replace(".", "_")]

            def hook(mod, args, out, wf=wf):
                if args[0] is not None and not mod.training and out.shape == wf.shape:
                    return wf.detach() + (out - out.detach())
                return out

            handles.append(m.quan_w_fn.register_forward_hook(hook))
    loss = F.cross_entropy(ref(x), y)
    loss.backward()
    for h in handles:
        h.remove()
    return loss, {n: p.grad for n, p in ref.named_parameters()}


@pytest.mark.parametrize("seed", [0, 1])
def test_parameter_gradients_equal_the_ste_formula(seed):
    model = lsq_small_cnn()
    x = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
    y = torch.arange(8) % 10
    gm = fxfault.transform(model, FaultConfig(ber=2e-2, mode="persistent", seed=seed))
    faulted = _faulted_weights(gm, x)
    ref_loss, ref_grads = _reference_grads(model, faulted, x, y)
    loss = F.cross_entropy(gm(x), y)
    loss.backward()
    assert torch.equal(loss, ref_loss)
    got = dict(gm.named_parameters())
    assert set(ref_grads) == set(got), "the faulty model exposes the same parameter names"
    for name, g in ref_grads.items():
        if g is None:  # e.g. the scale of an identity (32-bit) activation quantizer
            assert got[name].grad is None, name
            continue
        assert got[name].grad is not None, name
        torch.testing.assert_close(got[name].grad, g, rtol=1e-6, atol=1e-9, msg=name)
    # the gradient reaches the LSQ step sizes, as in the clean model
    assert got["conv2.quan_w_fn.s"].grad.abs().sum() > 0


def test_faulty_loss_differs_from_clean_loss():
    model = lsq_small_cnn()
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    y = torch.arange(16) % 10
    gm = fxfault.transform(model, FaultConfig(ber=5e-2, mode="persistent"))
    faulty = F.cross_entropy(gm(x), y)
    with fxfault.disabled(gm):
        clean = F.cross_entropy(gm(x), y)
    assert not torch.equal(faulty, clean)
    torch.testing.assert_close(clean, F.cross_entropy(model(x), y))


def test_straight_through_output_carries_the_clean_weights_gradient():
    model = lsq_small_cnn()
    gm = fxfault.transform(model, FaultConfig(ber=0.1, mode="persistent"))
    x = torch.rand(4, 1, 8, 8)
    out = gm(x)
    assert out.requires_grad and out.grad_fn is not None
    out.sum().backward()
    w = dict(gm.named_parameters())["conv2.weight"]
    assert w.grad is not None and w.grad.abs().sum() > 0


def test_zero_faulted_zeroes_exactly_the_changed_positions():
    model = lsq_small_cnn()
    x = torch.rand(8, 1, 8, 8)
    y = torch.arange(8) % 10
    ste = fxfault.transform(model, FaultConfig(ber=0.05, mode="persistent", seed=1))
    zero = fxfault.transform(model, FaultConfig(ber=0.05, mode="persistent", seed=1, gradient="zero_faulted"))
    _, v = capture(ste, x, suffixes=("_dequantize", "quan_w_fn"))
    # gradient w.r.t. the quantized weight of conv2, captured with a tensor hook on the ST output
    grads = {}
    for name, gm in (("ste", ste), ("zero", zero)):
        out = {}

        def keep(mod, args, output, out=out):
            output.register_hook(lambda g: out.setdefault("g", g))

        h = gm.conv2.quan_w_fn.register_forward_hook(keep)
        F.cross_entropy(gm(x), y).backward()
        h.remove()
        grads[name] = out["g"]
        for p in model.parameters():
            p.grad = None
    changed = v["conv2_weight_dequantize"] != v["conv2_quan_w_fn"]
    assert changed.any()
    assert torch.all(grads["zero"][changed] == 0)
    assert torch.equal(grads["zero"][~changed], grads["ste"][~changed])
    assert grads["ste"][changed].abs().sum() > 0
