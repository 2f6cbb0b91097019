"""torch.ao QAT: FX (prepare_qat_fx) and eager (prepare_qat) models."""

import warnings

import pytest
import torch
from torch import nn

import fxfault
from fxfault import FaultConfig

from ..helpers import bits_equal, capture

tq = pytest.importorskip("torch.ao.quantization")
warnings.filterwarnings("ignore", message=".*deprecat.*")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


def _fx_qat(qconfig_mapping=None, seed=0):
    from torch.ao.quantization.quantize_fx import prepare_qat_fx

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = Net().train()
        x = torch.randn(4, 3, 8, 8)
        qm = qconfig_mapping or tq.get_default_qat_qconfig_mapping("x86")
        prepared = prepare_qat_fx(model, qm, (x,))
        for _ in range(3):
            prepared(torch.randn(4, 3, 8, 8))
    prepared.apply(tq.disable_observer)
    return prepared.eval()


@pytest.fixture(scope="module")
def fx_qat():
    return _fx_qat()


X = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def test_fx_qat_sites_bits_and_identity(fx_qat):
    gm = fxfault.transform(fx_qat, ber=0.0)
    sites = fxfault.sites(gm)
    assert [s.name for s in sites] == ["conv1", "conv2", "fc"]
    assert all(s.kind == "torch.ao" and s.bits == 8 and (s.qmin, s.qmax) == (-128, 127) for s in sites)
    with torch.no_grad():
        assert bits_equal(gm(X), fx_qat(X))
        fxfault.set_ber(gm, 1e-2)
        assert not torch.equal(gm(X), fx_qat(X))


def test_fx_qat_faulted_weights_are_on_the_per_channel_grid(fx_qat):
    gm = fxfault.transform(fx_qat, FaultConfig(ber=0.05, seed=1))
    _, v = capture(gm, X)
    fq = fx_qat.conv2.weight_fake_quant
    s = fq.scale.reshape(-1, 1, 1, 1)
    z = fq.zero_point.reshape(-1, 1, 1, 1)
    wf = v["conv2_weight_dequantize"]
    codes = wf / s + z
    assert ((codes - codes.round()).abs() / codes.abs().clamp(min=1)).max() < 1e-5
    assert codes.round().min() >= -128 and codes.round().max() <= 127
    assert (v["conv2_weight_flip"] != v["conv2_weight_quantize"]).any()


def test_bits_below_8_through_quant_min_max():
    from torch.ao.quantization import FakeQuantize, MovingAverageMinMaxObserver, QConfig, QConfigMapping
    from torch.ao.quantization.observer import MovingAveragePerChannelMinMaxObserver

    w4 = FakeQuantize.with_args(
        observer=MovingAveragePerChannelMinMaxObserver, quant_min=-8, quant_max=7,
        dtype=torch.qint8, qscheme=torch.per_channel_symmetric, ch_axis=0,
    )
    a8 = FakeQuantize.with_args(observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255, dtype=torch.quint8)
    prepared = _fx_qat(QConfigMapping().set_global(QConfig(activation=a8, weight=w4)))
    gm = fxfault.transform(prepared, ber=0.0)
    assert {(s.bits, s.qmin, s.qmax) for s in fxfault.sites(gm)} == {(4, -8, 7)}
    with torch.no_grad():
        assert bits_equal(gm(X), prepared(X))
    faulty = fxfault.transform(prepared, FaultConfig(ber=1.0))
    _, v = capture(faulty, X)
    assert torch.equal(v["fc_weight_flip"].long(), -1 - v["fc_weight_quantize"].long())


def test_observer_enabled_warns_and_disabled_fake_quant_gets_no_site():
    from torch.ao.quantization.quantize_fx import prepare_qat_fx

    prepared = prepare_qat_fx(Net().train(), tq.get_default_qat_qconfig_mapping("x86"), (X,)).eval()
    with pytest.warns(UserWarning, match="observer is enabled"):
        fxfault.transform(prepared)
    prepared.apply(tq.disable_observer)
    prepared.conv2.weight_fake_quant.disable_fake_quant()
    with pytest.warns(UserWarning, match="fake quantization is disabled"):
        gm = fxfault.transform(prepared)
    assert [s.name for s in fxfault.sites(gm)] == ["conv1", "fc"]


def test_eager_qat_modules():
    class Eager(nn.Module):
        def __init__(self):
            super().__init__()
            self.quant = tq.QuantStub()
            self.conv = nn.Conv2d(3, 8, 3)
            self.bn = nn.BatchNorm2d(8)
            self.relu = nn.ReLU()
            self.fc = nn.Linear(8 * 6 * 6, 4)
            self.dequant = tq.DeQuantStub()

        def forward(self, x):
            x = self.relu(self.bn(self.conv(self.quant(x))))
            return self.dequant(self.fc(x.flatten(1)))

    m = Eager().train()
    m.qconfig = tq.get_default_qat_qconfig("x86")
    m = tq.prepare_qat(tq.fuse_modules_qat(m, [["conv", "bn", "relu"]]))
    for _ in range(2):
        m(torch.randn(4, 3, 8, 8))
    m.apply(tq.disable_observer)
    m.eval()
    gm = fxfault.transform(m, ber=0.0)
    assert [(s.name, s.kind) for s in fxfault.sites(gm)] == [("conv", "torch.ao"), ("fc", "torch.ao")]
    with torch.no_grad():
        assert bits_equal(gm(X), m(X))
    # the activation fake-quantizers attached by hooks are kept, once each
    targets = [n.target for n in gm.graph.nodes if n.op == "call_module"]
    assert targets.count("conv.activation_post_process") == 1


def test_fx_qat_trains_with_faults(fx_qat):
    import copy

    model = copy.deepcopy(fx_qat)
    gm = fxfault.transform(model, FaultConfig(ber=1e-2, mode="persistent"))
    gm.train()
    out = gm(X)
    out.sum().backward()
    assert model.conv1.weight.grad is not None and model.conv1.weight.grad.abs().sum() > 0
    # BatchNorm statistics stay live inputs of the folded weight (not frozen at trace time)
    assert not any(n.name.startswith("_tensor_constant") for n in gm.graph.nodes)
