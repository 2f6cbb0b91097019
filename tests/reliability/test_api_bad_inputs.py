"""Bad inputs to the public API: each gets a clear error of the right type whose message names
the field (or argument) and says what would be right (issue 17). The table is the contract."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import fxfault
from fxfault import ConfigError, FaultConfig
from fxfault.testing import lsq_small_cnn
from fxfault.training import BerSchedule, sam_step

_MODEL = lsq_small_cnn()


def _gm():
    return fxfault.transform(_MODEL, ber=1e-3)


def cfg(**kw: Any) -> Callable[[], Any]:
    return lambda: FaultConfig(**kw)


def tf(cfg_: Any = None, **kw: Any) -> Callable[[], Any]:
    return lambda: fxfault.transform(_MODEL, cfg_, **kw)


# (id, call, exception type, a regex the message must match: it names the field)
CASES: list[tuple[str, Callable[[], Any], type[BaseException], str]] = [
    # --- ber
    ("ber-negative", cfg(ber=-0.1), ConfigError, r"ber.*\[0, 1\]"),
    ("ber-above-one", cfg(ber=1.5), ConfigError, r"ber.*\[0, 1\]"),
    ("ber-nan", cfg(ber=float("nan")), ConfigError, r"ber"),
    ("ber-inf", cfg(ber=float("inf")), ConfigError, r"ber"),
    ("ber-bool", cfg(ber=True), ConfigError, r"ber.*bool"),
    ("ber-word", cfg(ber="often"), ConfigError, r"ber.*string 'often'"),
    ("ber-list", cfg(ber=[1e-3]), ConfigError, r"ber.*list"),
    ("ber-none", cfg(ber=None), ConfigError, r"ber"),
    ("ber-tensor-2", cfg(ber=torch.tensor([1e-3, 2e-3])), ConfigError, r"ber"),
    ("ber-dict-bad-value", cfg(ber={"conv*": 2.0}), ConfigError, r"ber\['conv\*'\]"),
    ("ber-dict-bad-key", cfg(ber={3: 1e-3}), ConfigError, r"ber.*glob"),
    ("ber-dict-empty-key", cfg(ber={"": 1e-3}), ConfigError, r"ber.*glob"),
    # --- seed
    ("seed-negative", cfg(seed=-1), ConfigError, r"seed must be >= 0 \(a non-negative integer\)"),
    ("seed-float", cfg(seed=1.5), ConfigError, r"seed.*integer"),
    ("seed-string", cfg(seed="abc"), ConfigError, r"seed.*integer"),
    ("seed-bool", cfg(seed=True), ConfigError, r"seed.*bool"),
    ("seed-none", cfg(seed=None), ConfigError, r"seed"),
    ("seed-list", cfg(seed=[1]), ConfigError, r"seed"),
    # --- bits and widths
    ("bits-zero", cfg(bits=0), ConfigError, r"bits.*1\.\.16"),
    ("bits-17", cfg(bits=17), ConfigError, r"bits.*1\.\.16"),
    ("bits-float", cfg(bits=4.5), ConfigError, r"bits"),
    ("bits-string", cfg(bits="four"), ConfigError, r"bits"),
    ("bits-map-bad", cfg(bits={"conv1": 0}), ConfigError, r"bits\['conv1'\]"),
    ("bits-map-bool", cfg(bits={"conv1": True}), ConfigError, r"bits\['conv1'\]"),
    ("act-bits-0", cfg(act_bits=0), ConfigError, r"act_bits"),
    ("act-bits-33", cfg(act_bits=33), ConfigError, r"act_bits"),
    ("float-bits-0", cfg(float_bits=0), ConfigError, r"float_bits"),
    ("float-bits-99", cfg(float_bits=99), ConfigError, r"float_bits"),
    ("float-act-bits-0", cfg(float_act_bits=0), ConfigError, r"float_act_bits"),
    # --- bit_rates
    ("rates-unknown", cfg(bit_rates="msb"), ConfigError, r"bit_rates.*unknown preset"),
    ("rates-empty-list", cfg(bit_rates=[]), ConfigError, r"bit_rates.*empty"),
    ("rates-bad-rate", cfg(bit_rates=[0.1, 2.0]), ConfigError, r"bit_rates.*\[0, 1\]"),
    ("rates-bit-word", cfg(bit_rates="bit=x"), ConfigError, r"bit_rates.*integer bit index"),
    ("rates-bit-neg", cfg(bit_rates="bit=-1"), ConfigError, r"bit_rates.*>= 0"),
    ("rates-dual-one", cfg(bit_rates="dual:1e-3"), ConfigError, r"bit_rates.*dual"),
    ("rates-dual-bad", cfg(bit_rates="dual:a,b"), ConfigError, r"bit_rates"),
    ("rates-number", cfg(bit_rates=0.5), ConfigError, r"bit_rates"),
    ("rates-too-long", tf(FaultConfig(bit_rates=[1e-3] * 9)), ConfigError, r"bit_rates has 9 entries"),
    ("rates-bit-too-high", tf(FaultConfig(bit_rates="bit=9", ber=1e-3)), ConfigError, r"bit 9 does not exist"),
    ("rates-float-preset-int-site", tf(FaultConfig(bit_rates="mantissa", ber=1e-3)), ConfigError, r"float word"),
    # --- fault kinds, encodings, modes, gradients
    ("fault-unknown", cfg(fault="flips"), ConfigError, r"fault.*did you mean 'flip'"),
    ("fault-number", cfg(fault=1), ConfigError, r"fault"),
    ("encoding-unknown", cfg(encoding="grey"), ConfigError, r"encoding.*did you mean 'gray'"),
    ("encoding-table-short", tf(FaultConfig(encoding=[0, 1, 2], ber=1e-3)), ConfigError, r"code table.*3 words"),
    ("encoding-table-dup", tf(FaultConfig(encoding={"conv1": [*range(255), 0]}, ber=1e-3)), ConfigError,
     r"code table.*bijection"),
    ("encoding-table-words", cfg(encoding=["a", "b"]), ConfigError, r"encoding.*integer words"),
    ("encoding-type", cfg(encoding=3.5), ConfigError, r"encoding"),
    ("encoding-signmag-unsigned", tf(FaultConfig(encoding="sign_magnitude", include=["conv1"], ber=1e-3,
                                                 bits={"conv1": 8})), ConfigError, r"sign_magnitude"),
    ("mode-unknown", cfg(mode="permanent"), ConfigError, r"mode.*persistent"),
    ("mode-none", cfg(mode=None), ConfigError, r"mode"),
    ("gradient-unknown", cfg(gradient="zero"), ConfigError, r"gradient"),
    ("act-gradient-unknown", cfg(act_gradient="none"), ConfigError, r"act_gradient"),
    # --- count and fault lists
    ("count-negative", cfg(count=-1), ConfigError, r"count must be >= 0"),
    ("count-float", cfg(count=2.5), ConfigError, r"count.*integer"),
    ("count-and-faults", cfg(count=1, faults=[("conv1", 0, 0)]), ConfigError, r"count and faults are exclusive"),
    ("count-too-big", tf(FaultConfig(count=10**9)), ConfigError, r"count=1000000000 is larger"),
    ("faults-int", cfg(faults=5), ConfigError, r"faults must be a list of \(site, flat_index, bit\)"),
    ("faults-str", cfg(faults="conv1"), ConfigError, r"faults must be a list"),
    ("faults-dict", cfg(faults={"conv1": 0}), ConfigError, r"faults must be a list"),
    ("faults-pair", cfg(faults=[("conv1", 0)]), ConfigError, r"faults\[0\] must be a triple"),
    ("faults-site-int", cfg(faults=[(1, 0, 0)]), ConfigError, r"faults\[0\].*site"),
    ("faults-neg-index", cfg(faults=[("conv1", -1, 0)]), ConfigError, r"faults\[0\] flat_index"),
    ("faults-neg-bit", cfg(faults=[("conv1", 0, -2)]), ConfigError, r"faults\[0\] bit"),
    ("faults-float-index", cfg(faults=[("conv1", 0.5, 0)]), ConfigError, r"faults\[0\] flat_index"),
    ("faults-unknown-site", tf(FaultConfig(faults=[("conv9", 0, 0)])), ConfigError, r"faults\[0\].*conv9"),
    ("faults-index-range", tf(FaultConfig(faults=[("conv1", 10**6, 0)])), ConfigError, r"out of range for site 'conv1'"),
    ("faults-bit-range", tf(FaultConfig(faults=[("conv1", 0, 9)])), ConfigError, r"bit 9 does not exist"),
    # --- seed lists
    ("seed-list-empty", cfg(seed_list=[]), ConfigError, r"seed_list.*at least one"),
    ("seed-list-str", cfg(seed_list="123"), ConfigError, r"seed_list must be a list"),
    ("seed-list-neg", cfg(seed_list=[1, -2]), ConfigError, r"seed_list entry"),
    ("seed-list-persistent", cfg(seed_list=[1], mode="persistent"), ConfigError, r"seed_list.*persistent"),
    ("seed-list-int", cfg(seed_list=5), ConfigError, r"seed_list must be a list"),
    # --- selection
    ("include-int", cfg(include=3), ConfigError, r"include"),
    ("include-empty-str", cfg(include=[""]), ConfigError, r"include.*non-empty"),
    ("exclude-none-items", cfg(exclude=[None]), ConfigError, r"exclude"),
    ("only-int", cfg(only=3), ConfigError, r"only"),
    ("only-empty", cfg(only=""), ConfigError, r"only"),
    ("skip-first-last-int", cfg(skip_first_last=1), ConfigError, r"skip_first_last.*True or False"),
    ("in-training-str", cfg(in_training="yes"), ConfigError, r"in_training"),
    ("in-inference-none", cfg(in_inference=None), ConfigError, r"in_inference"),
    ("cache-int", cfg(cache=0), ConfigError, r"cache"),
    ("include-no-match", tf(FaultConfig(include=["conv9"])), ConfigError, r"include.*'conv9' matches no fault site"),
    ("exclude-no-match", tf(FaultConfig(exclude=["nope*"])), ConfigError, r"exclude.*matches no fault site"),
    ("exclude-all", tf(FaultConfig(exclude=["*"])), ConfigError, r"leaves no fault site"),
    ("only-two", tf(FaultConfig(only="conv*")), ConfigError, r"only='conv\*' must select exactly one"),
    ("only-no-match", tf(FaultConfig(only="zzz")), ConfigError, r"only.*matches no"),
    ("ber-map-no-match", tf(FaultConfig(ber={"layer9.*": 1e-3})), ConfigError, r"ber.*layer9"),
    ("bits-map-no-match", tf(FaultConfig(bits={"nope": 4})), ConfigError, r"bits.*'nope'"),
    ("leaf-no-match", tf(FaultConfig(leaf_modules=["NoSuchModule"])), ConfigError, r"leaf_modules"),
    ("leaf-modules-int", cfg(leaf_modules=[3]), ConfigError, r"leaf_modules"),
    # --- value-level faults and new fields
    ("unit-unknown", cfg(fault_unit="word"), ConfigError, r"fault_unit"),
    ("fraction-bit-unit", cfg(value_fraction=0.1), ConfigError, r"value_fraction.*fault_unit='value'"),
    ("fraction-range", cfg(fault_unit="value", value_fraction=1.5), ConfigError, r"value_fraction"),
    ("pattern-unknown", cfg(pattern="flip_middle"), ConfigError, r"pattern"),
    ("pattern-zero-mask", cfg(pattern=0), ConfigError, r"pattern.*>= 1"),
    ("pattern-huge-mask", cfg(pattern=1 << 40), ConfigError, r"pattern.*bit mask"),
    ("value-unit-with-rates", tf(FaultConfig(fault_unit="value", bit_rates="msb_only", ber=1e-3)), ConfigError,
     r"bit_rates.*fault_unit='value'"),
    ("targets-empty", cfg(targets=()), ConfigError, r"targets"),
    ("targets-unknown", cfg(targets=("weights",)), ConfigError, r"targets.*did you mean 'weight'"),
    ("targets-dup", cfg(targets=("weight", "weight")), ConfigError, r"targets.*once"),
    ("act-ber-range", cfg(act_ber=3), ConfigError, r"act_ber"),
    ("float-format-unknown", cfg(float_format="float64x"), ConfigError, r"float_format"),
    ("track-effect-int", cfg(track_effect=1), ConfigError, r"track_effect"),
    ("format-and-bits", lambda: fxfault.transform(nn.Linear(2, 2), FaultConfig(float_format="float32",
                                                                                float_bits=8, ber=1e-3)),
     ConfigError, r"both float_format and float_bits"),
    ("format-and-encoding", lambda: fxfault.transform(nn.Sequential(nn.Linear(2, 2)),
                                                      FaultConfig(float_format="float32", encoding="gray")),
     ConfigError, r"encoding='gray' does not apply"),
    # --- config files and mappings
    ("from-dict-unknown", lambda: FaultConfig.from_dict({"bre": 1e-3}), ConfigError, r"unknown FaultConfig field 'bre'.*'ber'"),
    ("from-dict-list", lambda: FaultConfig.from_dict([1, 2]), ConfigError, r"mapping of field names"),
    ("replace-unknown", lambda: FaultConfig().replace(sed=1), ConfigError, r"unknown FaultConfig field 'sed'"),
    ("version", cfg(version=99), ConfigError, r"schema version"),
    ("from-json-missing", lambda: FaultConfig.from_json("/nonexistent/cfg.json"), ConfigError, r"does not exist"),
    ("search-json-bits-twice", lambda: FaultConfig.from_search_json({"configurations": [{"weight_bits": [4]}]},
                                                                    _MODEL, bits=4), ConfigError, r"sets bits from the file"),
    # --- transform's arguments
    ("transform-not-module", lambda: fxfault.transform("model"), TypeError, r"nn.Module.*str"),
    ("transform-cfg-type", lambda: fxfault.transform(_MODEL, 42), TypeError, r"cfg must be a FaultConfig"),
    ("transform-twice", lambda: fxfault.transform(_gm()), TypeError, r"already transformed"),
    ("transform-leaf-type", lambda: fxfault.transform(_MODEL, leaf_modules=["Conv2d"]), TypeError, r"leaf_modules must hold"),
    ("transform-check-str", lambda: fxfault.transform(_MODEL, check="yes"), TypeError, r"check must be True or False"),
    ("transform-strict-int", lambda: fxfault.transform(_MODEL, strict=1), TypeError, r"strict must be True or False"),
    ("transform-inputs-str", lambda: fxfault.transform(_MODEL, example_inputs="x"), TypeError, r"example_inputs"),
    ("transform-ber-word", lambda: fxfault.transform(_MODEL, ber="high"), ConfigError, r"ber.*string 'high'"),
    ("transform-seed-neg", lambda: fxfault.transform(_MODEL, seed=-3), ConfigError, r"seed"),
    ("no-sites", lambda: fxfault.transform(nn.Sequential(nn.ReLU())), fxfault.NoSitesError, r"no weight quantizer"),
    # --- run-time control
    ("set-ber-range", lambda: fxfault.set_ber(_gm(), 2.0), ConfigError, r"ber.*\[0, 1\]"),
    ("set-ber-word", lambda: fxfault.set_ber(_gm(), "x"), ConfigError, r"ber"),
    ("set-ber-layers-no-match", lambda: fxfault.set_ber(_gm(), 1e-3, layers="conv9"), ConfigError, r"conv9"),
    ("set-ber-layers-int", lambda: fxfault.set_ber(_gm(), 1e-3, layers=[3]), TypeError, r"layers must be site names"),
    ("set-ber-kind", lambda: fxfault.set_ber(_gm(), 1e-3, kind="bias"), ConfigError, r"kind must be 'weight'"),
    ("set-ber-not-gm", lambda: fxfault.set_ber(_MODEL, 1e-3), TypeError, r"fxfault.transform"),
    ("set-enabled-int", lambda: fxfault.set_enabled(_gm(), 1), TypeError, r"enabled must be True or False"),
    ("disabled-no-match", lambda: fxfault.disabled(_gm(), layers="zz").__enter__(), ConfigError, r"zz"),
    ("resample-neg", lambda: fxfault.resample(_gm(), seed=-1), ConfigError, r"seed must be >= 0 \(a non-negative integer\)"),
    ("resample-float", lambda: fxfault.resample(_gm(), seed=2.5), ConfigError, r"seed"),
    ("resample-str", lambda: fxfault.resample(_gm(), seed="1"), ConfigError, r"seed"),
    ("resample-not-gm", lambda: fxfault.resample(nn.Linear(1, 1)), TypeError, r"fxfault.transform"),
    ("fault-list-neg", lambda: fxfault.fault_list(_gm(), -1), ConfigError, r"pass_index"),
    ("fault-list-float", lambda: fxfault.fault_list(_gm(), 1.5), ConfigError, r"pass_index"),
    ("stats-not-gm", lambda: fxfault.stats(_MODEL), TypeError, r"fxfault.transform"),
    ("sites-not-gm", lambda: fxfault.sites(_MODEL), TypeError, r"fxfault.transform"),
    ("summary-not-gm", lambda: fxfault.summary(42), TypeError, r"fxfault.transform"),
    ("clear-cache-not-gm", lambda: fxfault.clear_cache(_MODEL), TypeError, r"fxfault.transform"),
    ("reset-stats-not-gm", lambda: fxfault.reset_stats(_MODEL), TypeError, r"fxfault.transform"),
    ("absolute-rates-set-ber", lambda: fxfault.set_ber(fxfault.transform(_MODEL, FaultConfig(bit_rates="dual:1e-3,1e-4")),
                                                      1e-3), ConfigError, r"absolute bit_rates"),
    # --- inspection
    ("export-suffix", lambda: fxfault.export(_gm(), "/tmp/graph.xyz"), ValueError, r"suffix"),
    ("export-not-gm", lambda: fxfault.export(_MODEL, "/tmp/g.json"), TypeError, r"fxfault.transform"),
    ("export-hops", lambda: fxfault.export(_gm(), "/tmp/g.json", neighbourhood=-1), ValueError, r"neighbourhood"),
    ("networkx-inputs", lambda: fxfault.to_networkx(_gm(), example_inputs="x"), TypeError, r"example_inputs"),
    ("networkx-shape", lambda: fxfault.to_networkx(_gm(), example_inputs=torch.zeros(1, 3, 5, 5)), ValueError,
     r"example_inputs"),
    ("diff-not-module", lambda: fxfault.diff("m", _gm()), TypeError, r"nn.Module"),
    ("diff-other-model", lambda: fxfault.diff(nn.Linear(1, 1), _gm()), ValueError, r"does not have"),
    # --- saving
    ("save-not-gm", lambda: fxfault.save(_MODEL, "/tmp/x.fxf"), TypeError, r"fxfault.transform"),
    ("load-missing", lambda: fxfault.load("/nonexistent/f.fxf", _MODEL), FileNotFoundError, r"no saved faulty model"),
    ("load-not-module", lambda: fxfault.load("/nonexistent/f.fxf", "model"), TypeError, r"nn.Module"),
    # --- quantizer registration
    ("register-not-type", lambda: fxfault.register_quantizer("Quant", scale="s", code_range=(0, 1)), TypeError,
     r"nn.Module subclass"),
    ("register-scale-int", lambda: fxfault.register_quantizer(nn.Identity, scale=3, code_range=(0, 1)), TypeError,
     r"scale must name an attribute"),
    ("register-scale-expr", lambda: fxfault.register_quantizer(nn.Identity, scale="a.b", code_range=(0, 1)),
     TypeError, r"scale must name"),
    # --- training helpers
    ("schedule-kind", lambda: BerSchedule(1e-3, kind="sine"), ConfigError, r"kind must be one of"),
    ("schedule-target", lambda: BerSchedule(2.0), ConfigError, r"BerSchedule target"),
    ("schedule-warmup-neg", lambda: BerSchedule(1e-3, kind="linear", warmup=-1), ConfigError, r"warmup"),
    ("schedule-exp-start", lambda: BerSchedule(1e-3, kind="exp", start=0.0, warmup=2), ConfigError, r"start > 0"),
    ("schedule-step-empty", lambda: BerSchedule(1e-3, kind="step"), ConfigError, r"milestones"),
    ("sam-rho", lambda: sam_step(_gm(), lambda: torch.tensor(0.0), torch.optim.SGD(_MODEL.parameters(), lr=0.1), rho=0),
     ConfigError, r"rho must be a positive number"),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_error(call, exc, pattern):
    with pytest.raises(exc) as info:
        call()
    message = str(info.value)
    assert re.search(pattern, message, re.S), message
    assert "Traceback" not in message and len(message) < 2000


def test_the_table_is_large():
    assert len(CASES) >= 150


def test_config_files_name_themselves(tmp_path):
    d = tmp_path / "cfgdir"
    d.mkdir()
    with pytest.raises(ConfigError, match="is a directory"):
        FaultConfig.from_json(d)
    bad = tmp_path / "latin1.json"
    bad.write_bytes('{"ber": 0.001, "seed": "\xe9"}'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1.json.*not UTF-8"):
        FaultConfig.from_json(bad)
    broken = tmp_path / "broken.json"
    broken.write_text('{"ber": 0.001,', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken.json.*not valid JSON"):
        FaultConfig.from_json(broken)
    search = tmp_path / "search.json"
    search.write_text(json.dumps({"configurations": []}), encoding="utf-8")
    with pytest.raises(ConfigError, match="from_search_json"):
        FaultConfig.from_json(search)


@pytest.mark.parametrize("value", [np.int64(3), np.int32(3), torch.tensor(3)])
def test_integer_likes_are_accepted_where_an_integer_is_meant(value):
    assert FaultConfig(seed=value).seed == 3
    assert FaultConfig(count=value).count == 3
    gm = _gm()
    fxfault.resample(gm, seed=value)
    assert fxfault.graph.access.plan_of(gm).seed == 3


@pytest.mark.parametrize("value", [np.float32(1e-3), torch.tensor(1e-3), np.float64(1e-3), "1e-3"])
def test_number_likes_are_accepted_where_a_rate_is_meant(value):
    assert FaultConfig(ber=value).ber == 0.001


def test_a_rate_with_count_or_faults_is_an_explicit_warning():
    with pytest.warns(UserWarning, match="ber=0.001 has no effect with count="):
        FaultConfig(count=3, ber=1e-3)
    with pytest.warns(UserWarning, match="no effect with faults="):
        FaultConfig(faults=[("conv1", 0, 0)], ber=1e-3)
