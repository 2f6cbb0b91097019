"""fxfault's own weight quantizer for plain float layers (FaultConfig(float_bits=...))."""

import copy

import torch
import torchvision
from torch import nn

import fxfault
from fxfault import FaultConfig, NoSitesError

from ..helpers import bits_equal, capture


def _reference(model, bits_of):
    """The float model with each conv/linear weight quantized per channel, computed apart."""
    ref = copy.deepcopy(model)
    with torch.no_grad():
        for name, m in ref.named_modules():
            if type(m) in (nn.Conv2d, nn.Linear) and bits_of(name):
                w = m.weight
                qmax = 2 ** (bits_of(name) - 1) - 1
                amax = w.abs().reshape(w.shape[0], -1).amax(1).reshape(-1, *[1] * (w.dim() - 1))
                s = torch.where(amax > 0, amax / qmax, torch.ones_like(amax))
                m.weight.copy_(torch.clamp(torch.round(w * (1 / s)), -qmax, qmax) * s)
    return ref


def test_float_model_needs_opt_in():
    model = torchvision.models.resnet18(weights=None)
    try:
        fxfault.transform(model)
    except NoSitesError as e:
        assert "float_bits=8" in str(e)
    else:  # pragma: no cover
        raise AssertionError("expected NoSitesError")


def test_float_bits_with_per_layer_widths_and_identity():
    model = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    cfg = FaultConfig(float_bits=8, bits={"layer1.*": 4, "fc": 6})
    gm = fxfault.transform(model, cfg)
    bits = {s.name: s.bits for s in fxfault.sites(gm)}
    assert len(bits) == 21 and bits["conv1"] == 8 and bits["layer1.0.conv2"] == 4 and bits["fc"] == 6
    assert {s.kind for s in fxfault.sites(gm)} == {"float"}

    def width(name):
        return bits.get(name)

    ref = _reference(model, width)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), ref(x), rtol=1e-5, atol=1e-5)
        fxfault.set_ber(gm, 1e-2)
        assert not torch.allclose(gm(x), ref(x))


def test_float_bits_per_layer_off():
    model = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    gm = fxfault.transform(model, FaultConfig(float_bits={"*": 8, "fc": None}))
    assert "fc" not in [s.name for s in fxfault.sites(gm)]


def test_own_quantizer_grid_and_gradient():
    from collections import OrderedDict

    model = nn.Sequential(OrderedDict(a=nn.Linear(16, 8), r=nn.ReLU(), b=nn.Linear(8, 2)))
    gm = fxfault.transform(model, FaultConfig(float_bits=4, ber=0.1, mode="persistent"))
    x = torch.randn(3, 16)
    _, v = capture(gm, x)
    assert all(k in v for k in ("a_weight_quantize", "a_weight_flip", "a_weight_dequantize"))
    codes = v["a_weight_flip"]
    assert codes.min() >= -8 and codes.max() <= 7 and (codes != v["a_weight_quantize"]).any()
    s = v["a_weight_dequantize"] / codes.clamp(min=1)
    gm(x).sum().backward()
    assert model.a.weight.grad is not None and model.a.weight.grad.abs().sum() > 0
    assert torch.isfinite(s).all()


def test_ber_zero_equals_disabled_for_float():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)).eval()
    gm = fxfault.transform(model, FaultConfig(float_bits=8, ber=0.05))
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        with fxfault.disabled(gm):
            a = gm(x)
        fxfault.set_ber(gm, 0.0)
        assert bits_equal(gm(x), a)
