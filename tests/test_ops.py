"""The graph ops, and the safety of writing faults into the quantizer's output."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import fxfault
from fxfault import FaultConfig, ops
from fxfault.control import fault_sites


class CachingQuant(nn.Module):
    """A weight quantizer that caches its output in eval mode (as brevitas can)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("step", torch.tensor(0.05))
        self.cached = None

    def forward(self, w):
        if not self.training and self.cached is not None:
            return self.cached
        q = torch.clamp(torch.round(w / self.step), -8, 7) * self.step
        if not self.training:
            self.cached = q
        return q


class KeepingQuant(CachingQuant):
    """A weight quantizer that keeps a reference to its last output (as LSQ's qw)."""

    def forward(self, w):
        self.last = torch.clamp(torch.round(w / self.step), -8, 7) * self.step
        return self.last


def _net(quant_cls):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.wq = quant_cls()

        def forward(self, x):
            return F.conv2d(x, self.wq(self.conv.weight), self.conv.bias)

    return Net().eval()


@pytest.mark.parametrize("quant_cls", [CachingQuant, KeepingQuant])
def test_faults_never_land_in_tensors_someone_else_holds(quant_cls):
    adapter = fxfault.register_quantizer(quant_cls, scale="step", code_range=(-8, 7))
    try:
        model = _net(quant_cls)
        x = torch.rand(2, 1, 6, 6)
        with torch.no_grad():
            clean = model(x)
            faulty = fxfault.transform(model, FaultConfig(ber=0.2, seed=1))
            outs = [faulty(x) for _ in range(3)]
            held = faulty.wq.cached if quant_cls is CachingQuant else faulty.wq.last
            ref = torch.clamp(torch.round(model.conv.weight / model.wq.step), -8, 7)
            assert torch.equal((held / model.wq.step).round(), ref), "the held tensor was faulted"
            with fxfault.disabled(faulty):
                again = faulty(x)
        assert not torch.equal(outs[0], clean)
        assert torch.equal(again, clean), "faults leaked into a tensor the quantizer holds"
    finally:
        fxfault.quantizers.unregister_adapter(adapter)


def test_in_place_path_is_taken_for_fresh_outputs(monkeypatch):
    calls = []
    real = ops._patch_in_place
    monkeypatch.setattr(ops, "_patch_in_place", lambda *a: calls.append(1) or real(*a))
    from fxfault.testing import lsq_small_cnn

    gm = fxfault.transform(lsq_small_cnn(), FaultConfig(ber=0.01))
    with torch.no_grad():
        gm(torch.rand(2, 1, 8, 8))
    assert calls, "fresh LSQ outputs are patched in place (no copy)"
    calls.clear()
    gm(torch.rand(2, 1, 8, 8))  # autograd on: never in place
    assert not calls


def test_quantize_dequantize_round_trip_and_straight_through():
    w = torch.randn(4, 3) * 0.3
    s = torch.tensor(0.05)
    wq = torch.clamp(torch.round(w / s), -8, 7) * s
    codes = ops.quantize(wq, s, None, -8, 7, torch.int8)
    assert codes.dtype == torch.int8 and torch.equal(codes.float() * s, wq)
    flipped = codes.clone()
    flipped[0, 0] = -8
    out = ops.dequantize(flipped, s, None, wq.clone(), codes)
    assert out[0, 0] == -8 * s and torch.equal(out.reshape(-1)[1:], wq.reshape(-1)[1:])
    clean = wq.clone().requires_grad_(True)
    y = ops.straight_through(clean, out)
    assert torch.equal(y, out)
    y.sum().backward()
    assert torch.equal(clean.grad, torch.ones_like(clean))


def test_custom_ops_pass_opcheck():
    x = torch.randn(4, 3)
    s = torch.tensor(0.1)
    q = ops.quantize(x, s, None, -8, 7, torch.int8)
    for op, args in (
        (torch.ops.fxfault.quantize.default, (x, s, None, -8, 7, torch.int8)),
        (torch.ops.fxfault.dequantize.default, (q, s, None, x, q)),
        (torch.ops.fxfault.straight_through.default, (x.requires_grad_(), x.detach() + 1, False)),
    ):
        torch.library.opcheck(op, args, test_utils=("test_schema", "test_faketensor"))


def test_a_direct_call_never_writes_into_the_callers_tensor():
    """Only graphs written by transform (in_place=True) may patch the quantizer's output."""
    from fxfault.testing import lsq_small_cnn

    gm = fxfault.transform(lsq_small_cnn(), FaultConfig(ber=0.5, seed=0)).eval()
    site = fault_sites(gm)[0]
    s = torch.tensor(0.05)
    wq = (torch.randint(-8, 8, site.shape) * s).float()
    keep = wq.clone()
    codes = ops.quantize(wq, s, None, -8, 7, torch.int8)
    with torch.no_grad():
        flipped = site(codes)
        out = ops.dequantize(flipped, s, None, wq, codes, site=site)
    assert not torch.equal(out, keep), "faults reached the output"
    assert torch.equal(wq, keep), "the caller's tensor was written"


def test_a_tensor_held_through_dlpack_is_not_private():
    t = torch.zeros(8)
    with torch.no_grad():
        assert ops._private(t)
        capsule = torch.utils.dlpack.to_dlpack(t)
        assert not ops._private(t)
        del capsule


@pytest.mark.parametrize("mode", ["transient", "persistent"])
def test_bfloat16_models_run_in_eval_on_the_cpu(mode):
    """bfloat16 has no NumPy view: the few-fault arithmetic runs as torch ops instead."""
    from fxfault.testing import lsq_small_cnn, quantize_lsq, small_cnn

    model = quantize_lsq(small_cnn(), weight_bits=4, act_bits=4, first_bits=(4, 8), last_bits=(4, 8))
    model = model.eval().to(torch.bfloat16)
    x = torch.rand(2, 1, 8, 8, dtype=torch.bfloat16)
    with torch.no_grad():
        clean = model(x)
        faulty = fxfault.transform(model, FaultConfig(ber=0.05, seed=3, mode=mode))
        outs = [faulty(x) for _ in range(2)]
        with fxfault.disabled(faulty):
            off = faulty(x)
    assert outs[0].dtype == torch.bfloat16 and torch.isfinite(outs[0]).all()
    assert not torch.equal(outs[0], clean)
    assert torch.equal(off, clean)
    # the 8-bit first and last layers work too while their codes stay small enough
    fxfault.transform(lsq_small_cnn().to(torch.bfloat16), FaultConfig(ber=0.05))(x)


class Int8Quant(nn.Module):
    def __init__(self, step):
        super().__init__()
        self.register_buffer("step", torch.tensor(step))

    def forward(self, w):
        return torch.clamp(torch.round(w / self.step), -128, 127) * self.step


def test_codes_a_narrow_float_cannot_hold_are_refused():
    """Codes near 127 do not survive bfloat16's 8 significant bits: a clear error."""
    adapter = fxfault.register_quantizer(Int8Quant, scale="step", code_range=(-128, 127))
    try:
        model = _net(lambda: Int8Quant(0.001)).to(torch.bfloat16)
        with pytest.raises(fxfault.QuantizerMismatchError, match=r"bfloat16.*float32"):
            fxfault.transform(model, FaultConfig(ber=0.01))
        fxfault.transform(model.float(), FaultConfig(ber=0.01))  # fine in float32
    finally:
        fxfault.quantizers.unregister_adapter(adapter)


def test_own_quantizer_steps_are_reused_only_for_an_unchanged_weight():
    w = torch.randn(4, 3)
    with torch.no_grad():
        a = ops.symmetric_scale(w, 8, 0, cache=True)
        assert ops.symmetric_scale(w, 8, 0, cache=True) is a
        assert ops.symmetric_scale(w, 4, 0, cache=True) is not a  # other width
        assert ops.symmetric_scale(w, 8, 0) is not a  # cache off
        w.mul_(2.0)  # bumps the version counter
        b = ops.symmetric_scale(w, 8, 0, cache=True)
        assert b is not a and torch.allclose(b, 2 * a)
        w.data.mul_(2.0)  # no version bump: clear_scales (fxfault.clear_cache) forgets
        ops.clear_scales()
        assert torch.allclose(ops.symmetric_scale(w, 8, 0, cache=True), 4 * a)
    assert ops.symmetric_scale(w.requires_grad_(), 8, 0, cache=True) is not b  # autograd: fresh
