import importlib
import json
import os
import shutil
import subprocess

import networkx as nx
import pytest
import torch

import fxfault
from fxfault.export import (
    ROLES,
    SUFFIXES,
    GraphvizError,
    export,
    keep_neighbourhood,
    read_json,
    to_dot,
    to_networkx,
)

# CI sets FXFAULT_REQUIRE_DOT=1 (and installs graphviz): there a missing `dot` fails instead of skipping.
_DOT_REQUIRED = os.environ.get("FXFAULT_REQUIRE_DOT") == "1"
requires_dot = pytest.mark.skipif(
    shutil.which("dot") is None and not _DOT_REQUIRED,
    reason="needs the Graphviz 'dot' program (apt-get install graphviz)",
)
CHAIN = ["quantize", "flip", "dequantize", "straight_through"]


@pytest.fixture
def faulty(cnn):
    return fxfault.transform(cnn, ber=1e-3, seed=0)


def _meta_snapshot(gm):
    return [(n.name, sorted(n.meta), dict(n.meta.get("fxfault", {}))) for n in gm.graph.nodes]


def test_nodes_attributes_and_data_flow_edges(faulty):
    g = to_networkx(faulty)
    assert isinstance(g, nx.DiGraph)
    assert list(g.nodes) == [n.name for n in faulty.graph.nodes]
    assert set(g.edges) == {(n.name, u.name) for n in faulty.graph.nodes for u in n.users}
    for role in CHAIN:
        d = g.nodes[f"conv2_weight_{role}"]
        assert (d["role"], d["site"], d["layer"], d["bits"], d["adapter"]) == (role, "conv2", "conv2", 4, "lsq")
    assert g.nodes["conv2_weight_quantize"]["target"] == "fxfault.ops.quantize"
    assert g.nodes["conv2_weight_flip"]["target"] == "fxfault_sites.conv2_weight"
    assert g.nodes["conv2_weight_flip"]["module"] == "BitFlip"
    assert g.nodes["conv2_weight_flip"]["rates"] == "0.001"
    assert g.nodes["conv2_weight_scale"]["role"] == "grid"
    assert g.nodes["conv2d"]["role"] == "other" and g.nodes["conv2d"]["site"] is None
    assert g.nodes["conv2d"]["target"] == "torch.conv2d"
    assert {d["role"] for _, d in g.nodes(data=True)} <= set(ROLES)
    assert ("conv2_weight_straight_through", "conv2d_1") in g.edges
    assert g.graph["sites"] == ["conv1", "conv2", "fc"] and g.graph["model"] == "SmallCNN"


def test_shapes_and_dtypes_leave_the_model_untouched(cnn, digits_x):
    gm = fxfault.transform(cnn, ber=0.05, seed=3)
    twin = fxfault.transform(cnn, ber=0.05, seed=3)
    gm.train()
    bn = gm.bn1.running_mean.clone()
    code, meta = gm.code, _meta_snapshot(gm)
    g = to_networkx(gm, example_inputs=digits_x[:1])
    assert g.nodes["conv1_weight_quantize"]["shape"] == (16, 1, 3, 3)
    assert g.nodes["conv1_weight_quantize"]["dtype"] == "torch.int8"
    assert g.nodes["conv1_weight_dequantize"]["dtype"] == "torch.float32"
    assert g.nodes["output"]["shape"] == (1, 10)
    assert g.nodes["x"]["shape"] == (1, 1, 8, 8)
    # nothing changed: graph, metadata, modes, BN statistics, fault streams and statistics
    assert gm.code == code and _meta_snapshot(gm) == meta
    assert all(m.training for m in gm.modules())
    assert torch.equal(gm.bn1.running_mean, bn)
    assert fxfault.stats(gm).total.passes == 0
    gm.eval()
    twin.eval()
    with torch.no_grad():
        assert torch.equal(gm(digits_x), twin(digits_x))  # the same first transient pass


def test_bad_example_inputs_say_what_to_give(faulty):
    with pytest.raises(ValueError, match="example_inputs"):
        to_networkx(faulty, example_inputs=torch.zeros(1, 3, 32, 32))
    with pytest.raises(TypeError, match="example_inputs"):
        to_networkx(faulty, example_inputs="x")
    assert all("tensor_meta" not in n.meta for n in faulty.graph.nodes)


def test_json_reads_back_with_networkx(faulty, tmp_path, digits_x):
    path = export(faulty, tmp_path / "g.json", example_inputs=digits_x[:1])
    data = json.loads(path.read_text())
    assert (data["schema"], data["version"]) == ("fxfault-graph", 1)
    assert data["config"]["ber"] == 1e-3 and data["fxfault_version"] == fxfault.__version__
    g = to_networkx(faulty, example_inputs=digits_x[:1])
    back = read_json(path)
    assert list(back.nodes) == list(g.nodes)
    assert set(back.edges) == set(g.edges)
    assert back.nodes["fc_weight_flip"]["bits"] == 8
    assert back.nodes["fc_weight_flip"]["shape"] == [10, 512]
    link = {k: data[k] for k in ("directed", "multigraph", "graph", "nodes", "edges")}
    try:
        plain = nx.node_link_graph(link, edges="edges")
    except TypeError:  # networkx < 3.4
        plain = nx.node_link_graph(link, link="edges")
    assert set(plain.edges) == set(g.edges)
    with pytest.raises(ValueError, match="not an fxfault graph"):
        (tmp_path / "other.json").write_text("{}")
        read_json(tmp_path / "other.json")


def test_graphml_reads_back_with_networkx(faulty, tmp_path, digits_x):
    path = export(faulty, tmp_path / "g.graphml", example_inputs=digits_x[:1])
    back = nx.read_graphml(path)
    g = to_networkx(faulty)
    assert set(back.nodes) == set(g.nodes)
    assert set(back.edges) == set(g.edges)
    assert back.nodes["conv2_weight_flip"]["role"] == "flip"
    assert back.nodes["conv2_weight_flip"]["bits"] == 4
    assert json.loads(back.nodes["conv2_weight_flip"]["shape"]) == [32, 16, 3, 3]
    assert "site" not in back.nodes["conv2d"]  # None is left out


@requires_dot
def test_dot_renders_and_shows_every_site_with_its_bits(faulty, tmp_path):
    path = export(faulty, tmp_path / "g.dot")
    text = path.read_text()
    assert text == to_dot(to_networkx(faulty))
    for site, bits in (("conv1", 8), ("conv2", 4), ("fc", 8)):
        assert f"site <b>{site}</b> \u00b7 {bits} bits" in text
    assert text.count('fillcolor="#e53935"') == 3  # the flip nodes stand out
    out = subprocess.run(["dot", "-Tsvg", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "<svg" in out.stdout and "conv2_weight_flip" in out.stdout


@requires_dot
def test_svg_export(faulty, tmp_path):
    path = export(faulty, tmp_path / "g.svg")
    svg = path.read_text()
    assert "<svg" in svg and "fc_weight_straight_through" in svg


def test_missing_dot_says_how_to_install_it(faulty, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(GraphvizError, match="apt-get install graphviz") as info:
        export(faulty, tmp_path / "g.svg")
    assert "brew install graphviz" in str(info.value) and ".dot" in str(info.value)
    assert not (tmp_path / "g.svg").exists()
    export(faulty, tmp_path / "g.dot")  # needs no Graphviz


def test_python_code_export(faulty, tmp_path):
    text = export(faulty, tmp_path / "g.py").read_text()
    head = text.split("def forward")[0]
    assert f"fxfault {fxfault.__version__}" in head
    assert '"ber": 0.001' in head
    assert "conv2: conv2_weight_quantize -> conv2_weight_flip" in head
    assert all(line.startswith("#") for line in head.strip().splitlines())
    assert faulty.code.strip() in text
    with pytest.raises(ValueError, match="graph formats"):
        export(faulty, tmp_path / "g.py", neighbourhood=1)


def test_unknown_suffix_lists_the_supported_ones(faulty, tmp_path):
    with pytest.raises(ValueError, match=r"\.json.*\.graphml.*\.dot.*\.svg") as info:
        export(faulty, tmp_path / "g.txt")
    assert all(s in str(info.value) for s in SUFFIXES)
    with pytest.raises(TypeError, match="GraphModule"):
        export(torch.nn.Linear(2, 2), tmp_path / "g.json")


def test_neighbourhood_keeps_fault_nodes_and_collapses_the_rest(resnet18, tmp_path):
    gm = fxfault.transform(resnet18, ber=1e-6)
    full = to_networkx(gm)
    fault = {n for n, d in full.nodes(data=True) if d["role"] != "other"}
    path = export(gm, tmp_path / "near.json", neighbourhood=1)
    near = read_json(path)
    assert fault <= set(near.nodes)
    assert near.number_of_nodes() < full.number_of_nodes()
    collapsed = [d for _, d in near.nodes(data=True) if d["op"] == "collapsed"]
    assert collapsed and all(d["count"] >= 1 for d in collapsed)
    kept = near.number_of_nodes() - len(collapsed)
    assert kept + sum(d["count"] for d in collapsed) == full.number_of_nodes()
    assert "layer1_0_conv1_weight_straight_through" in near and "conv2d_1" in near
    zero = keep_neighbourhood(full, 0)
    assert {n for n, d in zero.nodes(data=True) if d["op"] != "collapsed"} == fault
    assert "digraph" in to_dot(zero)
    with pytest.raises(ValueError, match="hops"):
        keep_neighbourhood(full, -1)


def test_exports_leave_the_graph_alone(faulty, tmp_path, digits_x):
    code, meta, n = faulty.code, _meta_snapshot(faulty), len(faulty.graph.nodes)
    for suffix in (".json", ".graphml", ".dot"):
        export(faulty, tmp_path / f"g{suffix}", example_inputs=digits_x[:1], neighbourhood=2)
    export(faulty, tmp_path / "g.py")
    assert (faulty.code, _meta_snapshot(faulty), len(faulty.graph.nodes)) == (code, meta, n)


def test_module_is_reachable_by_import_path():
    mod = importlib.import_module("fxfault.export")
    assert mod.export is export


def test_a_plain_graph_module_has_only_other_nodes(tmp_path):
    gm = torch.fx.symbolic_trace(torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU()))
    g = to_networkx(gm, example_inputs=torch.zeros(1, 3))
    assert {d["role"] for _, d in g.nodes(data=True)} == {"other"}
    assert g.nodes["output"]["shape"] == (1, 2) and g.graph["sites"] == []
    assert read_json(export(gm, tmp_path / "g.json")).number_of_nodes() == g.number_of_nodes()
    with pytest.raises(ValueError, match="no fault nodes"):
        export(gm, tmp_path / "g.dot", neighbourhood=1)
