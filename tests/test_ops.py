"""The graph ops, and the safety of writing faults into the quantizer's output."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import fxfault
from fxfault import FaultConfig, ops
from fxfault.control import fault_sites

from .helpers import capture


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


def test_fresh_quantizer_outputs_are_never_written():
    """Even a fresh output of the quantizer that nothing else holds keeps its clean values: in
    eval mode the faults are written into the site's own buffers."""
    from fxfault.testing import lsq_small_cnn

    seen = []
    gm = fxfault.transform(lsq_small_cnn(), FaultConfig(ber=0.05, seed=0, mode="persistent")).eval()
    gm.conv2.quan_w_fn.register_forward_hook(lambda m, a, out: seen.append((out, out.clone())))
    with torch.no_grad():
        for _ in range(3):
            gm(torch.rand(2, 1, 8, 8))
    assert len(seen) == 3 and all(torch.equal(out, copy) for out, copy in seen)
    assert sum(s.cache.nbytes() for s in fault_sites(gm)) > 0, "eval passes use the buffers"


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


def test_own_quantizer_keeps_its_steps_and_weights_only_while_the_weight_is_unchanged():
    from fxfault.quantizers.own import fake_quantize, symmetric_scale

    model = _conv()
    gm = fxfault.transform(model, FaultConfig(float_bits=8, ber=0.0)).eval()
    (site,) = fault_sites(gm)
    w = model.conv.weight
    token = fxfault.faults.Pass(0, cached=True)
    with torch.no_grad():
        a = symmetric_scale(w, 8, 0, site=site, pass_=token)
        q = fake_quantize(w, a, -127, 127, 0, site=site, pass_=token)
        assert symmetric_scale(w, 8, 0, site=site, pass_=token) is a
        assert fake_quantize(w, a, -127, 127, 0, site=site, pass_=token) is q
        assert symmetric_scale(w, 8, 0) is not a  # no site: computed afresh
        w.mul_(2.0)  # bumps the version counter
        b = symmetric_scale(w, 8, 0, site=site, pass_=token)
        assert b is not a and torch.allclose(b, 2 * a)
        w.data.mul_(2.0)  # no version bump: fxfault.clear_cache forgets
        fxfault.clear_cache(gm)
        assert torch.allclose(symmetric_scale(w, 8, 0, site=site, pass_=token), 4 * a)
    untracked = fxfault.faults.Pass(1, cached=False)  # training or autograd: always fresh
    assert symmetric_scale(w, 8, 0, site=site, pass_=untracked) is not b


def test_a_pruned_channel_keeps_the_layers_step():
    """A channel of zeros gets a step tied to the layer: no fault there can produce a weight
    larger than the layer's clean range (issue 17)."""
    from fxfault.quantizers.own import symmetric_scale

    model = _conv()
    w = model.conv.weight
    with torch.no_grad():
        w[1] = 0.0
    steps = symmetric_scale(w, 8, 0)
    assert torch.isfinite(steps).all() and 0 < steps[1] <= w.abs().max() / 128
    dead = [("conv", 1 * 9 + i, 7) for i in range(9)]  # the top bit of every weight of channel 1
    gm = fxfault.transform(model, FaultConfig(float_bits=8, faults=dead)).eval()
    _, values = capture(gm, torch.rand(1, 1, 6, 6), suffixes=("_dequantize",))
    faulted = values["conv_weight_dequantize"]
    assert faulted[1].abs().max() <= w.abs().max() + 1e-7
    assert not torch.equal(faulted[1], torch.zeros_like(faulted[1]))


def _conv():
    from collections import OrderedDict

    with torch.random.fork_rng():
        torch.manual_seed(0)
        return nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 4, 3))).eval()
