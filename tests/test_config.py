import json
import math

import pytest

from fxfault import ConfigError, FaultConfig
from fxfault.config import check_patterns, load_config, resolve_per_layer


@pytest.mark.parametrize("ber, expected", [(0, 0.0), (1, 1.0), ("1e-6", 1e-6), (" 0.5 ", 0.5), (1e-9, 1e-9)])
def test_ber_accepts_numbers_and_numeric_strings(ber, expected):
    assert FaultConfig(ber=ber).ber == expected


@pytest.mark.parametrize("ber", [-1e-3, 1.5, math.nan, math.inf, "abc", None, True, [1e-3]])
def test_ber_rejects_bad_values_with_a_clear_message(ber):
    with pytest.raises(ConfigError, match=r"ber must be a number in \[0, 1\]"):
        FaultConfig(ber=ber)


@pytest.mark.parametrize("bits", [0, 17, -4, 4.5, "four", True])
def test_bits_must_be_int_1_to_16(bits):
    with pytest.raises(ConfigError, match="bit width in 1..16"):
        FaultConfig(bits=bits)
    with pytest.raises(ConfigError, match="bit width in 1..16"):
        FaultConfig(bits={"layer1.*": bits})


def test_bits_accepts_ints_per_layer():
    cfg = FaultConfig(bits={"layer1.*": 4, "fc": 8.0})
    assert cfg.bits == {"layer1.*": 4, "fc": 8}
    assert cfg.bits_override("layer1.0.conv1") == 4
    assert cfg.bits_override("layer2.0.conv1") is None
    assert FaultConfig(bits=6).bits_default() == 6


def test_per_layer_resolution_exact_then_longest_glob():
    value = {"*": 1, "layer1.*": 2, "layer1.0.*": 3, "layer1.0.conv1": 4}
    assert resolve_per_layer(value, "layer1.0.conv1") == 4
    assert resolve_per_layer(value, "layer1.0.conv2") == 3
    assert resolve_per_layer(value, "layer1.1.conv2") == 2
    assert resolve_per_layer(value, "fc") == 1
    assert resolve_per_layer({"layer9.*": 1}, "fc", default=7) == 7


def test_unknown_field_gets_a_suggestion():
    with pytest.raises(ConfigError, match="Did you mean 'seed'"):
        FaultConfig.from_dict({"sed": 1})


def test_choices_are_validated_with_suggestions():
    with pytest.raises(ConfigError, match="did you mean 'persistent'"):
        FaultConfig(mode="persistant")
    with pytest.raises(ConfigError, match="fault must be one of"):
        FaultConfig(fault="stuck")
    with pytest.raises(ConfigError, match="unknown encoding 'grey'"):
        FaultConfig(encoding="grey")


def test_json_round_trip(tmp_path):
    cfg = FaultConfig(
        ber={"layer1.*": 1e-5, "*": 1e-6},
        seed=3,
        bits={"fc": 8},
        bit_rates={"conv1": "msb_only"},
        encoding={"layer2.*": "gray"},
        exclude=("conv1",),
        faults=(("fc", 3, 1),),
        mode="persistent",
    )
    path = tmp_path / "cfg.json"
    cfg.to_json(path)
    again = FaultConfig.from_json(path)
    assert again == cfg
    assert json.loads(path.read_text())["version"] == 1


def test_from_json_reports_missing_and_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        FaultConfig.from_json(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        FaultConfig.from_json(bad)
    search = tmp_path / "search.json"
    search.write_text(json.dumps({"configurations": []}))
    with pytest.raises(ConfigError, match="from_search_json"):
        FaultConfig.from_json(search)


def test_load_config_overrides_and_types(tmp_path):
    assert load_config(None, ber=1e-3).ber == 1e-3
    assert load_config({"ber": 1e-4}, seed=2).seed == 2
    assert load_config(FaultConfig(ber=1e-2), ber=None).ber == 1e-2
    with pytest.raises(TypeError, match="cfg must be a FaultConfig"):
        load_config(42)


def test_cross_field_rules():
    with pytest.raises(ConfigError, match="count and faults are exclusive"):
        FaultConfig(count=3, faults=[("fc", 0, 0)])
    with pytest.raises(ConfigError, match="seed_list"):
        FaultConfig(seed_list=[1, 2], mode="persistent")


def test_fault_list_validation():
    with pytest.raises(ConfigError, match=r"faults\[0\] must be a triple"):
        FaultConfig(faults=[("fc", 1)])
    with pytest.raises(ConfigError, match="flat_index must be >= 0"):
        FaultConfig(faults=[("fc", -1, 0)])


def test_check_patterns_suggests_close_names():
    names = ["layer1.0.conv1", "layer1.0.conv2", "fc"]
    check_patterns("bits", ["layer1.*"], names, kind="layer")
    with pytest.raises(ConfigError, match="'layer1.0.conv3' matches no layer.*Close names: 'layer1.0.conv2', 'layer1.0.conv1'"):
        check_patterns("bits", ["layer1.0.conv3"], names, kind="layer")


def test_config_is_frozen():
    cfg = FaultConfig()
    with pytest.raises(AttributeError):
        cfg.ber = 0.5  # type: ignore[misc]
    assert cfg.replace(ber=0.5).ber == 0.5
