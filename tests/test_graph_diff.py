import json

import pytest
import torch

import fxfault
from fxfault.export import to_networkx
from fxfault.graph_diff import GraphDiff, diff
from fxfault.testing import lsq_small_cnn


def test_inserted_nodes_and_rewired_consumers_per_site(cnn):
    before = {k: v.clone() for k, v in cnn.state_dict().items()}
    gm = fxfault.transform(cnn, ber=1e-3)
    d = diff(cnn, gm)
    assert isinstance(d, GraphDiff)
    assert [s.site for s in d.sites] == ["conv1", "conv2", "fc"]
    s = d.sites[1]
    assert (s.layer, s.layer_type, s.adapter, s.bits) == ("conv2", "QuanConv2d", "lsq", 4)
    assert s.module == "fxfault_sites.conv2_weight" and s.quantizer_output == "conv2_quan_w_fn"
    assert [(n.name, n.role) for n in s.inserted][-4:] == [
        ("conv2_weight_quantize", "quantize"),
        ("conv2_weight_flip", "flip"),
        ("conv2_weight_dequantize", "dequantize"),
        ("conv2_weight_straight_through", "straight_through"),
    ]
    assert {n.role for n in s.inserted[:-4]} == {"grid"}
    order = [n.name for n in gm.graph.nodes]
    assert [n.name for n in s.inserted] == sorted((n.name for n in s.inserted), key=order.index)
    (r,) = s.rewired
    assert (r.consumer, r.reads, r.was) == ("conv2d_1", "conv2_weight_straight_through", "conv2_quan_w_fn")
    assert "conv2_weight_straight_through" in r.code
    assert d.inserted == 22 and d.rewired == 3  # 7 nodes per site and the pass clock
    assert d.nodes_after == len(gm.graph.nodes) == d.nodes_before + d.inserted
    assert all(torch.equal(v, cnn.state_dict()[k]) for k, v in before.items())


def test_diff_as_text_and_data(cnn):
    d = diff(cnn, fxfault.transform(cnn, ber=1e-3))
    text = str(d)
    assert text.startswith("fxfault diff of SmallCNN: 3 sites, 22 nodes inserted")
    assert "+ conv1_weight_flip" in text
    assert "~ conv2d now reads conv1_weight_straight_through instead of conv1_quan_w_fn" in text
    data = json.loads(json.dumps(d.to_dict()))
    assert data["sites"][2]["rewired"][0]["consumer"] == "linear"


def test_diff_of_the_resnet18_names_every_site(resnet18):
    d = diff(resnet18, fxfault.transform(resnet18, ber=1e-6))
    assert len(d.sites) == 21 and d.rewired == 21
    assert d.sites[-1].layer_type == "QuanLinear"


def test_diff_checks_the_model(cnn, resnet18):
    gm = fxfault.transform(cnn, ber=1e-3)
    with pytest.raises(ValueError, match="does not have"):
        diff(resnet18, gm)
    with pytest.raises(TypeError, match="fxfault.transform"):
        diff(cnn, lsq_small_cnn())
    with pytest.raises(TypeError, match="nn.Module"):
        diff("model", gm)


def test_nodes_that_only_feed_a_grid_count_as_inserted():
    """torch.ao adapters read the scale buffers with new get_attr nodes: they are part of the
    diff, and grid nodes of their site in exports."""
    import warnings

    tq = pytest.importorskip("torch.ao.quantization")
    from torch.ao.quantization.quantize_fx import prepare_qat_fx

    with torch.random.fork_rng(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).train()
        prepared = prepare_qat_fx(model, tq.get_default_qat_qconfig_mapping("x86"), (torch.randn(2, 3, 8, 8),))
        prepared(torch.randn(2, 3, 8, 8))
    prepared.apply(tq.disable_observer)
    prepared.eval()
    try:
        gm = fxfault.transform(prepared, ber=1e-3)
    except fxfault.NoSitesError:
        pytest.skip("no torch.ao adapter in this build")
    (s,) = diff(prepared, gm).sites
    grid = [n for n in s.inserted if n.role == "grid"]
    assert any(n.op == "get_attr" and n.target.endswith(".scale") for n in grid)
    g = to_networkx(gm)
    assert all(g.nodes[n.name]["role"] == "grid" and g.nodes[n.name]["site"] == s.site for n in grid)
