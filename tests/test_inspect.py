import json

import pytest
import torch

import fxfault
from fxfault import FaultConfig
from fxfault.inspect import Summary, rate_text, sites, summary

WIDTHS = {"conv1": 8, "conv2": 4, "fc": 8}


def test_summary_numbers_for_the_uniform_rate(cnn):
    gm = fxfault.transform(cnn, ber=1e-3)
    s = summary(gm)
    assert isinstance(s, Summary)
    assert [r.site for r in s.rows] == ["conv1", "conv2", "fc"]
    numel = {n: m.weight.numel() for n, m in cnn.named_modules() if n in WIDTHS}
    for r in s.rows:
        assert (r.layer, r.quantizer, r.bits, r.encoding) == (r.site, "lsq", WIDTHS[r.site], "offset")
        assert r.weights == numel[r.site]
        assert r.exposed_bits == numel[r.site] * WIDTHS[r.site]
        assert r.expected_faults == pytest.approx(numel[r.site] * WIDTHS[r.site] * 1e-3)
        assert r.rates == "0.001" and r.active
    assert s.total.site == "total"
    assert s.total.weights == sum(numel.values())
    assert s.total.exposed_bits == sum(numel[n] * b for n, b in WIDTHS.items())
    assert s.total.expected_faults == pytest.approx(s.total.exposed_bits * 1e-3)


def test_summary_as_data_and_text(cnn):
    s = summary(fxfault.transform(cnn, ber=1e-3))
    data = json.loads(json.dumps(s.to_dict()))
    assert [r["site"] for r in data["rows"]] == ["conv1", "conv2", "fc"]
    assert data["total"]["weights"] == s.total.weights
    text = str(s)
    assert text == s.table()
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["site", "layer", "quantizer", "bits"]
    assert lines[-1].startswith("total") and str(s.total.exposed_bits) in lines[-1]
    assert any(line.startswith("conv2 ") and " 4 " in line for line in lines)


def test_summary_follows_the_current_settings(cnn):
    gm = fxfault.transform(cnn, ber=1e-3)
    with fxfault.disabled(gm, layers="conv*"):
        s = summary(gm)
        assert [r.expected_faults for r in s.rows][:2] == [0.0, 0.0]
        assert [r.active for r in s.rows] == [False, False, True]
        assert "(off)" in s.table()
    fxfault.set_ber(gm, 1e-2)
    assert summary(gm).rows[1].expected_faults == pytest.approx(4608 * 4 * 1e-2)


def test_rates_text_for_presets_counts_and_lists(cnn):
    gm = fxfault.transform(cnn, FaultConfig(ber=1e-3, bit_rates={"conv2": "msb_only"}))
    row = summary(gm).rows[1]
    assert row.rates == "msb_only@0.001"
    assert row.expected_faults == pytest.approx(4608 * 1e-3)  # one bit of four at risk
    gm = fxfault.transform(cnn, FaultConfig(count=10))
    assert summary(gm).total.expected_faults == pytest.approx(10)
    assert summary(gm).rows[0].rates.startswith("count share")
    gm = fxfault.transform(cnn, FaultConfig(faults=[("fc", 0, 7), ("fc", 3, 0)]))
    assert [r.rates for r in summary(gm).rows] == ["list of 0", "list of 0", "list of 2"]
    assert summary(gm).total.expected_faults == 2
    assert rate_text(fxfault.control.fault_sites(gm)[2]) == "list of 2"


def test_sites_stay_compatible_and_carry_rates_text(cnn):
    gm = fxfault.transform(cnn, ber=1e-3)
    info = sites(gm)
    assert info[0].nodes["flip"] == "conv1_weight_flip"
    assert info[0].exposed_bits == 144 * 8
    assert info[0].rates_text == "0.001" and info[0].active
    assert info[1].expected_faults == pytest.approx(4608 * 4 * 1e-3)


def test_summary_of_the_resnet18(resnet18):
    s = summary(fxfault.transform(resnet18, ber=1e-6))
    assert len(s.rows) == 21
    assert s.total.weights == sum(r.weights for r in s.rows)


def test_summary_needs_a_transformed_model(cnn):
    with pytest.raises(TypeError, match="fxfault.transform"):
        summary(cnn)
    with pytest.raises(TypeError, match="fxfault.transform"):
        summary(torch.fx.symbolic_trace(torch.nn.Linear(2, 2)))
