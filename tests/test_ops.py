"""The graph ops, and the safety of writing faults into the quantizer's output."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import fxfault
from fxfault import FaultConfig, ops


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
