"""A stored weight read more than once (a layer called twice, tied weights) has one site, one
fault map and one count (issue 17)."""

from collections import OrderedDict

import torch
from torch import nn

import fxfault
from fxfault import FaultConfig
from fxfault.testing import LsqQuan, QuanConv2d, calibrate

from ..helpers import capture


class Twice(nn.Module):
    """One quantized conv applied twice (weight sharing)."""

    def __init__(self) -> None:
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(0)
            conv = nn.Conv2d(4, 4, 3, padding=1)
        self.block = QuanConv2d(conv, LsqQuan(), LsqQuan(all_positive=True), bits_list=[4], fixed_bits=(4, 32))

    def forward(self, x):
        return self.block(torch.relu(self.block(x)))


X = torch.rand(2, 4, 5, 5, generator=torch.Generator().manual_seed(1))


def _model():
    return calibrate(Twice().eval(), X)


def test_a_layer_called_twice_is_one_site_with_one_map():
    model = _model()
    gm = fxfault.transform(model, FaultConfig(ber=0.05, seed=1, mode="persistent"))
    assert [s.name for s in fxfault.sites(gm)] == ["block"]
    # both calls read the one chain: every conv reads the straight-through output
    convs = [n for n in gm.graph.nodes if n.op == "call_function" and n.target is torch.conv2d]
    assert len(convs) == 2 and {c.args[1].name for c in convs} == {"block_weight_straight_through"}
    with torch.no_grad():
        gm(X)
    st = fxfault.stats(gm)
    assert st.total.passes == 1 and st.total.exposed_bits == 4 * 4 * 9 * 4  # 144 weights, stored once
    with torch.no_grad(), fxfault.disabled(gm):
        assert torch.equal(gm(X), model(X))


def test_the_fault_list_of_a_shared_layer_replays():
    model = _model()
    gm = fxfault.transform(model, FaultConfig(ber=0.05, seed=2, mode="persistent")).eval()
    faults = fxfault.fault_list(gm)
    assert faults and {s for s, _, _ in faults} == {"block"}
    replay = fxfault.transform(model, FaultConfig(faults=faults)).eval()
    with torch.no_grad():
        assert torch.equal(gm(X), replay(X))
    _, a = capture(gm, X, suffixes=("_flip",))
    _, b = capture(replay, X, suffixes=("_flip",))
    assert torch.equal(a["block_weight_flip"], b["block_weight_flip"])


def test_tied_weights_share_one_site():
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(6, 6, bias=False)
            self.b = nn.Linear(6, 6, bias=False)
            self.b.weight = self.a.weight  # tied

        def forward(self, x):
            return self.b(torch.relu(self.a(x)))

    model = Tied().eval()
    gm = fxfault.transform(model, FaultConfig(float_bits=8, ber=0.05, seed=0, mode="persistent"))
    assert len(fxfault.sites(gm)) == 1
    x = torch.rand(3, 6)
    with torch.no_grad():
        gm(x)
    assert fxfault.stats(gm).total.exposed_bits == 36 * 8


def test_shared_layers_in_a_sequential_twice():
    layer = nn.Linear(4, 4)
    model = nn.Sequential(OrderedDict(first=layer, act=nn.ReLU(), again=layer)).eval()
    gm = fxfault.transform(model, FaultConfig(float_bits=8, ber=0.05, seed=0))
    assert [s.name for s in fxfault.sites(gm)] == ["first"]
