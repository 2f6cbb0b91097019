from __future__ import annotations

import argparse
import csv
import json

import pytest
import torch

from fxfault.campaign import SweepResult
from fxfault.cli import main
from fxfault.cli.args import rate_list as parse_bers
from fxfault.cli.data import load_data
from fxfault.cli.specs import load_model_arg
from fxfault.cli.sweep import add_parser
from fxfault.testing import lsq_small_cnn


def small_digits(batch_size: int = 64):
    """A data factory for the command line: 128 held-out digits."""
    from fxfault.testing.digits import digits_batches

    return digits_batches("test", batch_size, limit=128)


def no_batch_size():
    return small_digits()


def test_sweep_writes_its_files(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    rc = main(["sweep", "demo-cnn", "--data", "tests.test_campaign_cli:small_digits", "--batch-size", "32",
               "--bers", "1e-3, 1e-2", "--trials", "2", "--out", str(out)])
    assert rc == 0
    cap = capsys.readouterr()
    assert "top-1 accuracy (%)" in cap.out and "1e-02" in cap.out and "sweep finished" in cap.out
    assert "2/2" in cap.err or "4/4" in cap.err                    # the progress bar
    assert sorted(p.name for p in out.iterdir()) == ["plot.png", "report.md", "results.jsonl", "summary.csv"]
    r = SweepResult.load(out)
    assert len(r.records) == 4 and r.meta["data"] == {"batches": 4, "examples": 128}
    with (out / "summary.csv").open() as f:
        assert [float(row["ber"]) for row in csv.DictReader(f)] == [1e-3, 1e-2]
    report = (out / "report.md").read_text()
    assert "fxfault sweep demo-cnn --data tests.test_campaign_cli:small_digits" in report
    assert "![" in report

    # quiet resume with one more BER: only the new pairs run
    rc = main(["sweep", "demo-cnn", "--data", "tests.test_campaign_cli:small_digits", "--batch-size", "32",
               "--bers", "1e-3,1e-2,1e-1", "--trials", "2", "--out", str(out), "--quiet"])
    cap = capsys.readouterr()
    assert rc == 0 and "top-1" not in cap.out and cap.err == ""
    r2 = SweepResult.load(out)
    assert len(r2.records) == 6 and r2.records[:4] == r.records


def test_sweep_errors_exit_2_with_a_message(tmp_path, capsys):
    args = ["sweep", "demo-cnn", "--data", "tests.test_campaign_cli:small_digits", "--bers", "1e-2",
            "--trials", "1", "--out", str(tmp_path), "--quiet"]
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args, "--mode", "transient"]) == 2
    assert "holds the results of a different" in capsys.readouterr().err
    assert main([*args[:3], "tests.test_campaign_cli:no_batch_size", *args[4:], "--batch-size", "8"]) == 2
    assert "takes no batch_size" in capsys.readouterr().err
    assert main([*args[:3], "nonsense", *args[4:]]) == 2
    assert "unknown data 'nonsense'" in capsys.readouterr().err
    assert main(["sweep", "demo-cnn", "--data", "digits", "--bers", "1e-3,x", "--out", str(tmp_path)]) == 2
    assert "'x' is not a number" in capsys.readouterr().err


def test_config_search_json_and_metric(tmp_path, capsys):
    from fxfault import FaultConfig
    from fxfault.testing.digits import demo_bits_path

    cfg = tmp_path / "cfg.json"
    FaultConfig(encoding="gray", seed=3).to_json(cfg)
    rc = main(["sweep", "fxfault.testing.digits:lsq_digits_cnn", "--data", "tests.test_campaign_cli:small_digits",
               "--config", str(cfg), "--search-json", str(demo_bits_path()), "--search-index", "1",
               "--metric", "loss", "--bers", "1e-2", "--trials", "2", "--out", str(tmp_path / "o"), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    r = SweepResult.load(tmp_path / "o")
    assert r.metric == "loss" and r.seed == 3 and r.config["encoding"] == "gray"
    assert r.config["bits"] == {"conv2": 3, "conv3": 3, "conv4": 3}
    assert [s[1] for s in r.meta["model"]["sites"]] == [8, 3, 3, 3, 8]


def test_model_files(tmp_path):
    model = lsq_small_cnn()
    torch.save(model, tmp_path / "whole.pt")
    with pytest.raises(ValueError, match="--trust-pickle"):
        load_model_arg(str(tmp_path / "whole.pt"))
    loaded = load_model_arg(str(tmp_path / "whole.pt"), trust_pickle=True)
    assert torch.equal(loaded.conv2.weight, model.conv2.weight)

    other = lsq_small_cnn(seed=4)
    torch.save(other.state_dict(), tmp_path / "state.pt")
    with pytest.raises(ValueError, match="--weights"):
        load_model_arg(str(tmp_path / "state.pt"))
    m = load_model_arg("demo-cnn", weights=str(tmp_path / "state.pt"))
    assert torch.equal(m.conv2.weight, other.conv2.weight)
    torch.save(lsq_small_cnn(width=8).state_dict(), tmp_path / "narrow.pt")
    with pytest.raises(ValueError, match="does not fit"):
        load_model_arg("demo-cnn", weights=str(tmp_path / "narrow.pt"))
    with pytest.raises(FileNotFoundError):
        load_model_arg(str(tmp_path / "missing.pt"))


def test_parse_bers_and_data_specs():
    assert parse_bers("1e-7, 1e-6,,1e-5") == [1e-7, 1e-6, 1e-5]
    for bad in ("", "2", "1e-3,-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_bers(bad)
    assert [len(b[1]) for b in load_data("digits", 200)] == [200, 200, 139]
    assert len(load_data("tests.test_campaign_cli:small_digits", 100)) == 2
    with pytest.raises(ValueError, match="cannot import"):
        load_data("no_such_module:x")
    with pytest.raises(ValueError, match="has no attribute"):
        load_data("tests.test_campaign_cli:nothing")


def test_add_parser_registers_sweep():
    p = argparse.ArgumentParser(prog="fxfault")
    sub = p.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = p.parse_args(["sweep", "demo-cnn", "--data", "digits", "--bers", "1e-3", "--out", "o"])
    assert args.trials == 10 and args.mode == "persistent" and callable(args.func)
    assert json.dumps(args.bers) == "[0.001]"
