import argparse
import shutil
import subprocess
import sys

import pytest

from fxfault.cli import main as fxfault_main
from fxfault.cli.inspect import add_parser, run
from fxfault.export import read_json


def main(argv):
    """``fxfault inspect ...``"""
    return fxfault_main(["inspect", *argv])


requires_dot = pytest.mark.skipif(
    shutil.which("dot") is None, reason="needs the Graphviz 'dot' program (apt-get install graphviz)"
)


@requires_dot
def test_demo_cnn_prints_the_summary_and_writes_an_svg(tmp_path, capsys):
    out = tmp_path / "cnn.svg"
    assert main(["demo-cnn", "--ber", "1e-3", "--seed", "1", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "demo-cnn: SmallCNN, 3 fault sites" in text
    assert "total" in text and "conv2" in text and "0.001" in text
    assert f"wrote {out}" in text
    svg = out.read_text()
    assert "<svg" in svg and "conv2_weight_flip" in svg and "16\u00d71\u00d73\u00d73" in svg


def test_print_only_with_diff_and_code(capsys):
    assert main(["demo-cnn", "--diff", "--code"]) == 0
    text = capsys.readouterr().out
    assert "~ conv2d now reads conv1_weight_straight_through" in text
    assert "def forward" in text and "wrote" not in text


def test_config_file_and_neighbourhood_json(tmp_path, capsys):
    cfg = tmp_path / "cfg.json"
    cfg.write_text('{"ber": 1e-4, "exclude": ["fc"]}')
    out = tmp_path / "g.json"
    assert main(["demo-cnn", "--config", str(cfg), "--out", str(out), "--neighbourhood", "1"]) == 0
    g = read_json(out)
    assert g.graph["sites"] == ["conv1", "conv2"] and g.graph["neighbourhood"] == 1
    assert g.nodes["conv1_weight_quantize"]["shape"] == [16, 1, 3, 3]  # bundled input shape
    assert "0.0001" in capsys.readouterr().out


def test_errors_are_one_line_messages(tmp_path, capsys):
    assert main(["demo-cn"]) == 2
    assert "Did you mean 'demo-cnn'" in capsys.readouterr().err
    assert main(["demo-cnn", "--out", str(tmp_path / "g.txt")]) == 2
    assert ".graphml" in capsys.readouterr().err
    assert main(["demo-cnn", "--ber", "2"]) == 2
    assert "ber must be" in capsys.readouterr().err
    assert main(["demo-cnn", "--neighbourhood", "2"]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["demo-cnn", "--neighbourhood", "-1"]) == 2
    assert "argument --neighbourhood" in capsys.readouterr().err


def test_add_parser_wires_into_a_parent_cli():
    parser = argparse.ArgumentParser(prog="fxfault")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(["inspect", "lsq-resnet18", "--out", "g.svg", "--neighborhood", "2"])
    assert args.func is run
    assert (args.model, args.out, args.neighbourhood) == ("lsq-resnet18", "g.svg", 2)


@pytest.mark.slow
def test_runs_as_a_module(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "fxfault", "inspect", "demo-cnn", "--out", str(tmp_path / "g.dot")],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "total" in out.stdout and (tmp_path / "g.dot").read_text().startswith("digraph")
