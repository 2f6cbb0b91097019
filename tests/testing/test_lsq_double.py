"""The LSQ test double is faithful to shared/reference/lsq-layers.md."""

import pytest
import torch
from torch import fx, nn

from fxfault.testing import LsqQuan, QuanConv2d, QuanLinear, lsq_resnet18, lsq_thresholds, quantize_lsq
from fxfault.testing.models import resnet18_cifar


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_code_ranges(bits):
    assert lsq_thresholds(bits, True, False) == (0, 2**bits - 1)
    assert lsq_thresholds(bits, False, True) == (-(2 ** (bits - 1)) + 1, 2 ** (bits - 1) - 1)
    assert lsq_thresholds(bits, False, False) == (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    with pytest.raises(ValueError):
        lsq_thresholds(bits, True, True)


def test_quantizer_output_is_code_times_scale():
    q = LsqQuan()
    w = torch.randn(16, 8)
    q.init_from(w, [2, 4, 8])
    assert q.s.shape == (3,)
    for b in (2, 4, 8):
        out = q(w, b)
        s = q.get_scale(b)
        codes = out / s
        assert ((codes - codes.round()).abs() < 1e-4).all()
        lo, hi = lsq_thresholds(b, False, False)
        assert codes.round().min() >= lo and codes.round().max() <= hi
    assert q.bits == 8  # records the last width, as the real quantizer does
    assert torch.equal(q(w, 32), w) and torch.equal(q(w, None), w)


def test_lazy_scale_initialisation():
    q = LsqQuan(all_positive=True)
    q.init_from(None, [4, 8])
    assert q.init_state.tolist() == [0, 0]
    x = torch.rand(10)
    q(x, 4)
    assert q.init_state.tolist() == [1, 0]
    assert q.get_scale(4) != 1.0
    assert q.get_scale(8) == 1.0


def test_per_channel_scale_per_width():
    q = LsqQuan(per_channel=True)
    w = torch.randn(6, 3, 3, 3)
    q.init_from(w, [4, 8])
    assert q.get_scale(4).shape == (6,)
    out = q(w, 4)
    assert out.shape == w.shape


def test_layers_fixed_bits_win_and_float_without_bits():
    conv = QuanConv2d(nn.Conv2d(3, 4, 3), LsqQuan(), LsqQuan(all_positive=True), [4, 8])
    x = torch.rand(1, 3, 8, 8)
    conv.eval()
    assert torch.equal(conv(x), nn.functional.conv2d(x, conv.weight, conv.bias))
    conv.bits = (4, 4)
    y4 = conv(x)
    conv.fixed_bits = (8, 8)
    conv.quan_w_fn.bit_mapping  # noqa: B018
    y8 = conv(x)
    assert not torch.equal(y4, y8)


def test_side_effects_in_forward():
    conv = QuanConv2d(nn.Conv2d(3, 4, 3), LsqQuan(), LsqQuan(all_positive=True), [4], fixed_bits=(4, 4))
    x = torch.rand(2, 3, 8, 8)
    conv.train()
    conv.epsilon = torch.zeros_like(conv.weight)
    conv(x)
    assert conv.output_size == 36
    assert conv.quantized_weight is not None and conv.quantized_weight.requires_grad
    conv.eval()
    with torch.no_grad():
        conv(x)
    assert conv.quantized_weight is None and conv.epsilon is None


def test_naive_symbolic_trace_leaves_a_proxy_on_the_module():
    """Why fxfault needs its own tracer: plain symbolic_trace writes a Proxy into the model."""
    conv = QuanConv2d(nn.Conv2d(3, 4, 3), LsqQuan(), LsqQuan(all_positive=True), [4], fixed_bits=(4, 32))

    class Leafy(fx.Tracer):
        def is_leaf_module(self, m, name):
            return isinstance(m, LsqQuan) or super().is_leaf_module(m, name)

    model = nn.Sequential(conv).eval()
    Leafy().trace(model)
    assert isinstance(conv.output_size, fx.Proxy)


def test_linear_passes_floor_tensor_to_the_activation_quantizer():
    seen = {}

    class Spy(LsqQuan):
        def forward(self, x, bits, is_activation=False, **kw):
            seen.update(kw, is_activation=is_activation)
            return super().forward(x, bits, is_activation=is_activation, **kw)

    lin = QuanLinear(nn.Linear(4, 2), LsqQuan(), Spy(all_positive=True), [8], fixed_bits=(8, 8))
    lin.eval()
    lin(torch.rand(1, 4))
    assert seen == {"floor_tensor": False, "is_activation": True}


def test_quantize_lsq_fixes_first_and_last_layers():
    model = quantize_lsq(resnet18_cifar(width=8))
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (QuanConv2d, QuanLinear))]
    assert len(layers) == 21
    assert layers[0][1].fixed_bits == (8, 32) and layers[-1][1].fixed_bits == (8, 8)
    assert all(m.fixed_bits is None and m.bits is None for _, m in layers[1:-1])


def test_lsq_resnet18_is_deterministic():
    a, b = lsq_resnet18(width=8, seed=3), lsq_resnet18(width=8, seed=3)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
