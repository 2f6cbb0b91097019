import json

import pytest

import fxfault
from fxfault import ConfigError, FaultConfig
from fxfault.testing import quantize_lsq, resnet18_cifar

SEARCHABLE = 19  # a CIFAR ResNet-18 has 21 quantized layers, 2 with fixed_bits


@pytest.fixture(scope="module")
def unsearched():
    """An LSQ ResNet-18 as the search leaves it: middle layers without bits."""
    return quantize_lsq(resnet18_cifar(width=8), bits_list=(2, 3, 4, 5, 6, 8))


def _write(tmp_path, confs):
    data = {"arch": "resnet18", "target_bits": [6, 5, 4, 3, 2], "configurations": confs}
    p = tmp_path / "bits.json"
    p.write_text(json.dumps(data))
    return p


def test_from_search_json_maps_entries_to_layers_in_order(tmp_path, unsearched):
    wbits = [2, 3, 4, 5, 6] * 3 + [2, 3, 4, 5]
    abits = [8] * SEARCHABLE
    other = {"bops_limit": 3.0, "weight_bits": [4] * SEARCHABLE, "act_bits": [4] * SEARCHABLE}
    p = _write(tmp_path, [other, {"bops_limit": 6.0, "weight_bits": wbits, "act_bits": abits}])
    cfg = FaultConfig.from_search_json(p, unsearched, index=1, ber=1e-6)
    assert cfg.ber == 1e-6
    assert cfg.bits["layer1.0.conv1"] == 2 and cfg.bits["layer4.1.conv2"] == 5
    assert "conv1" not in cfg.bits and "linear" not in cfg.bits
    faulty = fxfault.transform(unsearched, cfg)
    got = {s.name: s.bits for s in fxfault.sites(faulty)}
    assert got["conv1"] == 8 and got["linear"] == 8
    middle = [s.bits for s in fxfault.sites(faulty)][1:-1]
    assert middle == wbits


def test_search_json_length_mismatch_says_which_counts(tmp_path, unsearched):
    p = _write(tmp_path, [{"weight_bits": [4] * 18, "act_bits": [4] * SEARCHABLE}])
    with pytest.raises(ConfigError, match=r"'weight_bits' has 18 entries, but the model has 19 searchable.*21 quantized layers, 2 with fixed_bits"):
        FaultConfig.from_search_json(p, unsearched)


def test_search_json_index_out_of_range(tmp_path, unsearched):
    p = _write(tmp_path, [{"weight_bits": [4] * SEARCHABLE}])
    with pytest.raises(ConfigError, match="has 1 configuration.*index 3 is out of range"):
        FaultConfig.from_search_json(p, unsearched, index=3)


def test_search_json_missing_keys(tmp_path, unsearched):
    p = tmp_path / "x.json"
    p.write_text(json.dumps({"arch": "resnet18"}))
    with pytest.raises(ConfigError, match="no 'configurations' key"):
        FaultConfig.from_search_json(p, unsearched)
    p.write_text(json.dumps({"configurations": [{"act_bits": [4] * SEARCHABLE}]}))
    with pytest.raises(ConfigError, match="no 'weight_bits' key"):
        FaultConfig.from_search_json(p, unsearched)


def test_search_json_width_without_scale_is_an_error(tmp_path, unsearched):
    p = _write(tmp_path, [{"weight_bits": [7] * SEARCHABLE, "act_bits": [4] * SEARCHABLE}])
    cfg = FaultConfig.from_search_json(p, unsearched)
    with pytest.raises(ConfigError, match=r"no scale for 7 bits \(it has scales for \[2, 3, 4, 5, 6, 8\]\)"):
        fxfault.transform(unsearched, cfg)
