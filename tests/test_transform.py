"""Structure of the transformed graph, and the pass's errors."""

import operator

import pytest
import torch
import torch.nn.functional as F
from torch import fx, nn

import fxfault
from fxfault import ConfigError, FaultConfig, NoSitesError, TraceError, ops
from fxfault.testing import LsqQuan, QuanConv2d, quantize_lsq, resnet18_cifar

RESNET_LAYERS = 21


def _chains(gm):
    """Map quantizer node -> its chain, checking the exact structure on the way."""
    out = {}
    for n in gm.graph.nodes:
        if n.op == "call_module" and n.target.endswith("quan_w_fn"):
            users = list(n.users)
            (quant,) = [u for u in users if u.target is ops.quantize]
            assert quant.args[0] is n
            (flip,) = quant.users.keys() - {u for u in quant.users if u.target is ops.dequantize}
            assert flip.op == "call_module" and flip.target.startswith("fxfault_sites.")
            (deq,) = flip.users
            assert deq.target is ops.dequantize and deq.args[0] is flip
            (st,) = deq.users
            assert st.target is ops.straight_through and st.args[:2] == (n, deq)
            # nothing else reads the quantizer's raw output
            assert set(users) == {quant, deq, st}, [u.format_node() for u in users]
            out[n] = (quant, flip, deq, st)
    return out


def test_every_weight_quantizer_gets_exactly_the_chain(resnet18):
    gm = fxfault.transform(resnet18, ber=1e-6)
    chains = _chains(gm)
    assert len(chains) == RESNET_LAYERS
    assert len(fxfault.sites(gm)) == RESNET_LAYERS
    for q, (quant, flip, deq, st) in chains.items():
        layer = q.target.rpartition(".")[0]
        stem = layer.replace(".", "_") + "_weight"
        assert [quant.name, flip.name, deq.name, st.name] == [
            f"{stem}_quantize", f"{stem}_flip", f"{stem}_dequantize", f"{stem}_straight_through"
        ]
        for role, node in zip(("quantize", "flip", "dequantize", "straight_through"), (quant, flip, deq, st)):
            assert node.meta["fxfault"]["role"] == role
            assert node.meta["fxfault"]["site"] == layer
        # the conv/linear consumes the straight-through output
        consumer = [u for u in st.users]
        assert consumer and all(u.target in (torch.conv2d, F.linear, torch._C._nn.linear) for u in consumer)
    gm.graph.lint()


def test_activation_quantizers_get_no_site(resnet18):
    gm = fxfault.transform(resnet18, ber=1e-6)
    for n in gm.graph.nodes:
        if n.op == "call_module" and n.target.endswith("quan_a_fn"):
            assert not any(u.target is ops.quantize for u in n.users)


def test_bit_widths_come_from_the_model_and_the_config(resnet18):
    gm = fxfault.transform(resnet18, ber=1e-6)
    bits = {s.name: s.bits for s in fxfault.sites(gm)}
    assert bits["conv1"] == 8 and bits["linear"] == 8
    assert {b for n, b in bits.items() if n not in ("conv1", "linear")} == {4}
    cfg = FaultConfig(ber=1e-6, bits={"layer1.*": 2, "layer4.1.conv2": 6, "layer3.0.conv1": 3})
    gm = fxfault.transform(resnet18, cfg)
    bits = {s.name: s.bits for s in fxfault.sites(gm)}
    assert bits["layer1.0.conv1"] == 2 and bits["layer1.1.conv2"] == 2
    assert bits["layer4.1.conv2"] == 6 and bits["layer3.0.conv1"] == 3 and bits["linear"] == 8 and bits["layer2.0.conv1"] == 4
    # the quantizer call really uses the site's width, and the node metadata agrees
    for n in gm.graph.nodes:
        if n.op == "call_module" and n.target.endswith("quan_w_fn"):
            layer = n.target.rpartition(".")[0]
            assert n.args[1] == bits[layer]
        if "fxfault" in n.meta:
            assert n.meta["fxfault"]["bits"] == bits[n.meta["fxfault"]["site"]]


def test_config_default_bits_apply_only_where_the_model_sets_none():
    model = quantize_lsq(resnet18_cifar(width=8))  # middle layers: bits=None (float)
    gm = fxfault.transform(model, FaultConfig(bits=5))
    bits = {s.name: s.bits for s in fxfault.sites(gm)}
    assert bits["conv1"] == 8 and bits["linear"] == 8 and bits["layer2.1.conv1"] == 5
    # without a default the middle layers stay float: only the fixed layers are sites
    gm = fxfault.transform(model)
    assert [s.name for s in fxfault.sites(gm)] == ["conv1", "linear"]


def test_width_the_quantizer_has_no_scale_for_is_an_error(resnet18):
    with pytest.raises(ConfigError, match=r"layer 'layer1.0.conv1': its weight quantizer has no scale for 7 bits"):
        fxfault.transform(resnet18, FaultConfig(bits={"layer1.0.conv1": 7}))


def test_pattern_that_matches_nothing_suggests_names(resnet18):
    with pytest.raises(ConfigError, match=r"'layer1.0.cnv1' matches no.*Close names: 'layer1.0.conv1'"):
        fxfault.transform(resnet18, FaultConfig(bits={"layer1.0.cnv1": 4}))
    with pytest.raises(ConfigError, match="'layer9.*' matches no fault site"):
        fxfault.transform(resnet18, FaultConfig(exclude=["layer9.*"]))
    with pytest.raises(ConfigError, match="matches no fault site"):
        fxfault.transform(resnet18, FaultConfig(ber={"lyr.*": 1e-3}))


def test_model_without_weight_quantizer_says_what_was_looked_for():
    with pytest.raises(NoSitesError, match=r"(?s)looked for:.*quan_w_fn.*float_bits=8"):
        fxfault.transform(resnet18_cifar(width=8))


class _Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow
            return self.conv(x)
        return x


class _Host(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = _Untraceable()
        q = LsqQuan()
        self.head = QuanConv2d(nn.Conv2d(3, 4, 1), q, LsqQuan(all_positive=True), (8,), fixed_bits=(8, 32))

    def forward(self, x):
        return self.head(self.block(x))


def test_untraceable_module_is_named_with_the_leaf_hint():
    with pytest.raises(TraceError, match=r"(?s)module 'block'.*_Untraceable.*leaf_modules=\['block'\]"):
        fxfault.transform(_Host())


def test_marking_the_untraceable_module_as_leaf_works():
    model = _Host().eval()
    gm = fxfault.transform(model, FaultConfig(leaf_modules=["block"]))
    assert [s.name for s in fxfault.sites(gm)] == ["head"]
    gm2 = fxfault.transform(model, leaf_modules=[_Untraceable])
    x = torch.rand(1, 3, 4, 4)
    with torch.no_grad():
        assert torch.equal(gm(x), model(x)) and torch.equal(gm2(x), model(x))


def test_dead_side_effect_nodes_are_removed(resnet18):
    gm = fxfault.transform(resnet18.train(), ber=1e-6)
    targets = [n.target for n in gm.graph.nodes]
    assert "retain_grad" not in targets
    assert operator.pow not in targets  # output_size = out.shape[-1] ** 2
    assert not any(n.op == "call_function" and not n.users for n in gm.graph.nodes if n.op != "output")


def test_transforming_a_transformed_model_is_refused(cnn):
    gm = fxfault.transform(cnn)
    with pytest.raises(TypeError, match="already transformed"):
        fxfault.transform(gm)


def test_bad_arguments():
    with pytest.raises(TypeError, match="needs a torch.nn.Module"):
        fxfault.transform("resnet")
    with pytest.raises(TypeError, match="leaf_modules must hold nn.Module subclasses"):
        fxfault.transform(nn.Linear(2, 2), leaf_modules=[int])


def test_result_is_a_standalone_graph_module(cnn):
    gm = fxfault.transform(cnn, ber=1e-3)
    assert isinstance(gm, fx.GraphModule)
    assert "fxfault_ops_quantize" in gm.code and "fxfault_sites.conv2_weight" in gm.code
    assert type(gm).__name__ == type(cnn).__name__
