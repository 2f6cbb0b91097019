"""PT2E graphs: torch.export + torchao's prepare_pt2e / convert_pt2e (XNNPACK quantizer)."""

import pytest
import torch
from torch import nn

import fxfault
from fxfault import FaultConfig

from ..helpers import bits_equal, capture

pt2e = pytest.importorskip("torchao.quantization.pt2e.quantize_pt2e")
xnn = pytest.importorskip("torchao.testing.pt2e._xnnpack_quantizer")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.fc = nn.Linear(8 * 6 * 6, 4)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


X = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def _converted(fold=True):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Net().eval()
    exported = torch.export.export(model, (X,)).module()
    q = xnn.XNNPACKQuantizer().set_global(xnn.get_symmetric_quantization_config(is_per_channel=True))
    prepared = pt2e.prepare_pt2e(exported, q)
    prepared(X)
    return pt2e.convert_pt2e(prepared, fold_quantize=fold)


@pytest.mark.parametrize("fold", [True, False])
def test_pt2e_sites_named_after_layers(fold):
    c = _converted(fold)
    gm = fxfault.transform(c, ber=0.0)
    sites = fxfault.sites(gm)
    assert [(s.name, s.kind, s.bits, s.qmin, s.qmax) for s in sites] == [
        ("conv", "pt2e", 8, -127, 127), ("fc", "pt2e", 8, -127, 127)]
    with torch.no_grad():
        assert bits_equal(gm(X), c(X))
        fxfault.set_ber(gm, 0.05)
        assert not torch.equal(gm(X), c(X))


def test_pt2e_flip_sits_on_the_integer_path():
    c = _converted()
    gm = fxfault.transform(c, FaultConfig(ber=1.0))
    flip = next(n for n in gm.graph.nodes if n.name == "conv_weight_flip")
    (deq,) = flip.users
    assert "dequantize_per_channel" in str(deq.target) and deq.args[0] is flip
    _, v = capture(gm, X, suffixes=("_flip",))
    codes = getattr(c, flip.args[0].target)
    assert torch.equal(v["conv_weight_flip"].long(), -1 - codes.long())


def test_pt2e_result_exports_again_with_single_flip_nodes():
    gm = fxfault.transform(_converted(), FaultConfig(ber=0.02, mode="persistent"))
    ep = torch.export.export(gm, (X,))
    flips = [n for n in ep.graph.nodes if "flip_bits" in str(n.target)]
    assert len(flips) == 2
    with torch.no_grad():
        assert torch.equal(ep.module()(X), gm(X))
