from __future__ import annotations

import csv
import json
import math
import sys

import pytest

from fxfault.campaign import SweepResult, TrialRecord, sweep
from fxfault.campaign.report import write_outputs
from fxfault.testing import lsq_small_cnn


@pytest.fixture(scope="module")
def result(_batches):
    return sweep(lsq_small_cnn(), None, _batches, [1e-3, 1e-2], trials=3, progress=False)


def test_csv_summary_and_trials(result, tmp_path):
    with result.to_csv(tmp_path / "s.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [float(r["ber"]) for r in rows] == [1e-3, 1e-2]
    for row, s in zip(rows, result.summary()):
        assert float(row["mean"]) == s.mean and float(row["ci_high"]) == s.ci_high
        assert float(row["baseline"]) == result.baseline and int(row["trials"]) == 3
    with result.to_csv(tmp_path / "t.csv", trials=True).open() as f:
        trials = list(csv.DictReader(f))
    assert len(trials) == 6 and [int(t["seed"]) for t in trials] == [r.seed for r in result.records]


def test_json_round_trip(result, tmp_path):
    path = result.to_json(tmp_path / "r.json")
    data = json.loads(path.read_text())
    assert data["format"] == "fxfault.sweep-result" and len(data["trials"]) == 6
    assert data["summary"][0]["ci_low"] == result.summary()[0].ci_low
    assert SweepResult.load(path) == result


def test_single_trial_gives_nan_spread_and_null_json(model, batches, tmp_path):
    r = sweep(model, None, batches, [1e-2], trials=1, progress=False)
    s = r.summary()[0]
    assert math.isnan(s.std) and math.isnan(s.ci_low)
    data = json.loads(r.to_json(tmp_path / "r.json").read_text())
    assert data["summary"][0]["std"] is None
    assert "[" not in r.table().splitlines()[-1]          # no interval shown
    assert SweepResult.load(tmp_path / "r.json").records == r.records


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")])
def test_plot_formats(result, tmp_path, suffix, magic):
    pytest.importorskip("matplotlib")
    p = result.plot(tmp_path / f"plot{suffix}")
    assert p.read_bytes().startswith(magic)


def test_plot_errors(result, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="plot format"):
        result.plot(tmp_path / "plot.gif")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install fxfault\[plot\]"):
        result.plot(tmp_path / "plot.png")
    files = write_outputs(result, tmp_path / "no-plot")   # the other files are still written
    assert files.plot is None and files.summary.exists()
    assert "fxfault[plot]" in files.report.read_text()


def test_write_outputs(result, tmp_path):
    pytest.importorskip("matplotlib")
    files = write_outputs(result, tmp_path / "out", setup={"model": "`demo-cnn`"})
    assert sorted(p.name for p in files.written) == ["plot.png", "report.md", "summary.csv"]
    text = files.report.read_text()
    for piece in ("`demo-cnn`", "![", "plot.png", "Student-t", "| 1e-03 | 3 |", "`conv2` 4-bit"):
        assert piece in text


def test_trial_record_dict_round_trip(result):
    rec = result.records[0]
    assert TrialRecord.from_dict(rec.to_dict()) == rec
    with pytest.raises(ValueError, match="lacks"):
        TrialRecord.from_dict({"ber": 1.0})
