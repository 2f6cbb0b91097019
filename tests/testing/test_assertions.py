import pytest
import torch

import fxfault
from fxfault.testing.assertions import assert_fault_chain, assert_sites


@pytest.fixture
def faulty(cnn):
    return fxfault.transform(cnn, ber=1e-3)


def _node(gm, name):
    return next(n for n in gm.graph.nodes if n.name == name)


def test_a_good_graph_passes(faulty, resnet18):
    assert_fault_chain(faulty)
    assert_fault_chain(fxfault.transform(resnet18, ber=1e-6))
    assert_sites(faulty, layers=["conv1", "conv2", "fc"], bits={"conv2": 4, "*": 8})
    assert_sites(faulty, layers={"conv*", "fc"}, bits={"conv1": 8, "fc": 8})
    assert_sites(faulty, bits={"conv2": 4})


def test_a_consumer_reading_the_raw_quantizer_output_fails(faulty):
    conv = _node(faulty, "conv2d_1")
    conv.replace_input_with(_node(faulty, "conv2_weight_straight_through"), _node(faulty, "conv2_quan_w_fn"))
    faulty.recompile()
    with pytest.raises(AssertionError) as info:
        assert_fault_chain(faulty)
    msg = str(info.value)
    assert "read the raw quantizer output conv2_quan_w_fn" in msg
    assert conv.format_node() in msg
    assert "nothing reads the straight-through output" in msg
    assert "conv1" not in msg


def test_an_erased_dequantize_fails(faulty):
    deq = _node(faulty, "fc_weight_dequantize")
    flip = _node(faulty, "fc_weight_flip")
    st = _node(faulty, "fc_weight_straight_through")
    st.replace_input_with(deq, flip)
    faulty.graph.erase_node(deq)
    faulty.recompile()
    with pytest.raises(AssertionError) as info:
        assert_fault_chain(faulty)
    msg = str(info.value)
    assert "site 'fc'" in msg and "missing dequantize, straight_through" in msg
    assert flip.format_node() in msg
    assert st.format_node() in msg  # a straight-through outside any chain


def test_a_site_the_graph_never_calls_fails(faulty):
    flip = _node(faulty, "conv1_weight_flip")
    flip.target = "fxfault_sites.conv2_weight"
    with pytest.raises(AssertionError, match="never calls fxfault_sites.conv1_weight"):
        assert_fault_chain(faulty)


def test_assert_fault_chain_needs_a_transformed_graph(cnn):
    with pytest.raises(AssertionError, match="no fault sites"):
        assert_fault_chain(torch.fx.symbolic_trace(torch.nn.Linear(2, 2)))
    with pytest.raises(TypeError, match="GraphModule"):
        assert_fault_chain(cnn)


def test_assert_sites_failures_show_the_nodes(faulty):
    with pytest.raises(AssertionError, match=r"expected a site matching 'layer9'") as info:
        assert_sites(faulty, layers=["conv1", "conv2", "fc", "layer9"])
    with pytest.raises(AssertionError, match="unexpected site 'fc'") as info:
        assert_sites(faulty, layers=["conv*"])
    assert _node(faulty, "fc_weight_flip").format_node() in str(info.value)
    with pytest.raises(AssertionError, match="site 'conv2' has 4 bits, expected 8") as info:
        assert_sites(faulty, bits=8)
    assert _node(faulty, "conv2_weight_flip").format_node() in str(info.value)
    assert "conv1" not in str(info.value)
    with pytest.raises(AssertionError, match="'conv1' has 8 bits, expected 4"):
        assert_sites(faulty, bits={"conv*": 4, "conv1*": 4})
    with pytest.raises(AssertionError, match="'lin' matches no site"):
        assert_sites(faulty, bits={"lin": 8})
    with pytest.raises(TypeError, match=r"\['fc'\]"):
        assert_sites(faulty, layers="fc")
    with pytest.raises(TypeError, match="bits"):
        assert_sites(faulty, bits="8")
