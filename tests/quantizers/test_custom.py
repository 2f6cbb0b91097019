"""register_quantizer: a user's own quantizer in a few lines."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import fxfault
from fxfault import ConfigError
from fxfault.quantizers import unregister_adapter

from ..helpers import bits_equal, capture


class PowerOfTwoQuant(nn.Module):
    def __init__(self, bits=4, exponent=-4):
        super().__init__()
        self.bits = bits
        self.register_buffer("step", torch.tensor(2.0**exponent))

    def forward(self, w):
        lim = 2 ** (self.bits - 1)
        q = torch.clamp(torch.round(w / self.step), -lim, lim - 1)
        return w + (q * self.step - w).detach()


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.wq = PowerOfTwoQuant()
        self.aq = PowerOfTwoQuant(bits=8)

    def forward(self, x):
        x = self.aq(x)  # an activation: no site
        return F.conv2d(x, self.wq(self.conv.weight), self.conv.bias)


@pytest.fixture
def registered():
    adapter = fxfault.register_quantizer(
        PowerOfTwoQuant, scale="step", code_range=lambda q: (-(2 ** (q.bits - 1)), 2 ** (q.bits - 1) - 1)
    )
    yield adapter
    unregister_adapter(adapter)


def test_registered_quantizer_gets_sites(registered):
    model = Net().eval()
    x = torch.rand(2, 1, 6, 6)
    gm = fxfault.transform(model, ber=0.0)
    assert [(s.name, s.kind, s.bits) for s in fxfault.sites(gm)] == [("conv", "PowerOfTwoQuant", 4)]
    with torch.no_grad():
        assert bits_equal(gm(x), model(x))
    faulty = fxfault.transform(model, fxfault.FaultConfig(ber=1.0))
    _, v = capture(faulty, x)
    assert torch.equal(v["conv_weight_flip"].long(), -1 - v["conv_weight_quantize"].long())


def test_unregistered_quantizer_is_named_in_the_error():
    with pytest.raises(fxfault.NoSitesError, match=r"(?s)look like quantizers.*PowerOfTwoQuant.*register_quantizer"):
        fxfault.transform(Net())


def test_unregistered_quantizer_kept_whole_warns():
    with (
        pytest.warns(UserWarning, match="looks like a weight quantizer.*register_quantizer"),
        pytest.raises(fxfault.NoSitesError),
    ):
        fxfault.transform(Net(), leaf_modules=[PowerOfTwoQuant])


def test_registration_errors(registered):
    with pytest.raises(TypeError, match="nn.Module subclass"):
        fxfault.register_quantizer(int, scale="s", code_range=(0, 1))
    with pytest.raises(TypeError, match="must name an attribute"):
        fxfault.register_quantizer(PowerOfTwoQuant, scale=lambda q: q.step, code_range=(0, 1))
    bad = fxfault.register_quantizer(PowerOfTwoQuant, scale="step", code_range=(3, 1))
    try:
        with pytest.raises(ConfigError, match="lo < hi"):
            fxfault.transform(Net())
    finally:
        unregister_adapter(bad)


def test_mismatched_grid_is_caught(registered):
    """A registration that names the wrong step size is caught when transforming."""
    model = Net()
    model.wq.step.fill_(0.1)
    adapter = fxfault.register_quantizer(
        PowerOfTwoQuant, scale="step", code_range=(-8, 7), name="wrong"
    )
    try:
        model.wq.register_buffer("step2", torch.tensor(0.0625))
        unregister_adapter(adapter)
        adapter = fxfault.register_quantizer(PowerOfTwoQuant, scale="step2", code_range=(-8, 7), name="wrong")
        with pytest.raises(fxfault.QuantizerMismatchError, match="not on the grid"):
            fxfault.transform(model)
    finally:
        unregister_adapter(adapter)
