import pytest
import torch
from torch import nn

import fxfault
from fxfault import FaultConfig

from ..helpers import bits_equal, capture

qnn = pytest.importorskip("brevitas.nn")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = qnn.QuantConv2d(3, 8, 3, weight_bit_width=4)
        self.fc = qnn.QuantLinear(8 * 6 * 6, 4, bias=True, weight_bit_width=6)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def test_brevitas_sites_and_identity():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Net().eval()
    x = torch.randn(2, 3, 8, 8)
    gm = fxfault.transform(model, ber=0.0)
    assert [(s.name, s.kind, s.bits, s.qmin, s.qmax) for s in fxfault.sites(gm)] == [
        ("conv", "brevitas", 4, -7, 7), ("fc", "brevitas", 6, -31, 31)]
    with torch.no_grad():
        assert bits_equal(gm(x), model(x))
    faulty = fxfault.transform(model, FaultConfig(ber=1.0))
    _, v = capture(faulty, x)
    assert torch.equal(v["conv_weight_flip"].long(), -1 - v["conv_weight_quantize"].long())
