"""``fxfault.cli.main``: one entry point, one registry of bundled models, one-line errors."""

from __future__ import annotations

import argparse

import pytest

from fxfault import __version__
from fxfault.cli import main
from fxfault.cli.main import build_parser
from fxfault.cli.specs import BUNDLED_MODELS
from fxfault.cli.usage import UsageError, one_line, user_input
from fxfault.errors import AdapterError, ConfigError, GraphvizError
from fxfault.export import read_json


def test_help_and_version_exit_0(capsys):
    assert main(["--help"]) == 0
    assert "inspect" in capsys.readouterr().out
    assert main(["sweep", "--help"]) == 0
    assert "--bers" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"fxfault {__version__}"


def test_every_subcommand_registers_through_add_parser():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert sorted(sub.choices) == ["demo", "inspect", "sweep"]
    for name, p in sub.choices.items():
        args = p.parse_args(["demo-cnn"] if name == "inspect" else
                            ["demo-cnn", "--data", "digits", "--bers", "1e-3", "--out", "o"] if name == "sweep" else [])
        assert callable(args.func) and args.traceback is False


@pytest.mark.parametrize("command", ["inspect", "sweep"])
def test_every_command_lists_every_bundled_model(command, capsys):
    assert main([command, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for name in BUNDLED_MODELS:
        assert name in text


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "digits-cnn" else n
                                  for n in BUNDLED_MODELS])
def test_inspect_knows_every_bundled_model_and_its_input_shape(name, tmp_path, capsys):
    out = tmp_path / "g.json"
    assert main(["inspect", name, "--out", str(out)]) == 0
    assert f"{name}: " in capsys.readouterr().out
    graph = read_json(out)
    first = next(n for n, d in graph.nodes(data=True) if n.endswith("_weight_quantize"))
    assert graph.nodes[first].get("shape")  # from the registry's input shape


def test_one_line():
    assert one_line("a\n\tb   c\n") == "a b c"
    assert one_line("\x1b[1mbold\x1b[0m") == "bold"
    long = one_line("x " * 1000, limit=50)
    assert len(long) == 50 and long.endswith("...")


def test_user_input_blames_the_option():
    with pytest.raises(UsageError, match=r"^--config cfg.json: bad field$"), user_input("--config", "cfg.json"):
        raise ConfigError("bad field")
    with pytest.raises(UsageError, match=r"^--config: 'cfg.json' is bad$"), user_input("--config", "cfg.json"):
        raise ValueError("'cfg.json' is bad")
    with pytest.raises(UsageError, match=r"^plain$"), user_input():
        raise TypeError("plain")
    with pytest.raises(UsageError, match="^--weights: disk on fire$"), user_input("--weights"):
        raise OSError("disk on fire")
    with pytest.raises(OSError, match="disk full"), user_input(os_errors=False):  # writing: not a mistake
        raise OSError("disk full")
    for not_the_user in (AdapterError("adapter bug"), GraphvizError("no dot"), RuntimeError("bug"), KeyError("k")):
        with pytest.raises(type(not_the_user)), user_input("--config"):
            raise not_the_user


def test_failures_that_are_not_mistakes(monkeypatch, capsys):
    from fxfault.cli import inspect

    def fail(exc):
        def run(args):
            raise exc
        return run

    monkeypatch.setattr(inspect, "run", fail(GraphvizError("dot is not installed")))
    assert main(["inspect", "demo-cnn"]) == 1
    assert capsys.readouterr().err == "fxfault inspect: error: dot is not installed\n"
    monkeypatch.setattr(inspect, "run", fail(AdapterError("an adapter broke its contract")))
    with pytest.raises(AdapterError):  # a bug: the traceback stays
        main(["inspect", "demo-cnn"])
    monkeypatch.setattr(inspect, "run", fail(KeyboardInterrupt()))
    assert main(["inspect", "demo-cnn"]) == 130
    assert capsys.readouterr().err == "fxfault inspect: error: interrupted\n"


def test_rank_is_named_under_torchrun(monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert main(["inspect", "demo-cnn", "--ber", "1e-3", "--out", "x.svg", "--neighbourhood", "1",
                 "--input-shape", "1,1,8,8", "--config", "missing.json"]) == 2
    assert capsys.readouterr().err.startswith("fxfault inspect (rank 1): error: argument --config")
    assert main(["inspect", "demo-cn"]) == 2
    assert capsys.readouterr().err.startswith("fxfault inspect (rank 1): error: MODEL")
