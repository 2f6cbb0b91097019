"""The command line never tracebacks on a user's mistake: one line on stderr, exit status 2.

Each case is a bad command line, the text that names what was wrong (the option or the value)
and a fragment of the explanation. Every case runs in-process through ``fxfault.cli.main``; a
handful also run as ``python -m fxfault`` in a fresh process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
import torch

from fxfault.cli import main
from fxfault.testing import lsq_small_cnn

ROOT = Path(__file__).resolve().parents[2]
F = "tests.cli.factories"


class Case(NamedTuple):
    name: str
    argv: tuple[str, ...]  # "{t}" is the folder of the fixture files
    names: str  # the option or value the message must name
    says: str  # a fragment of the explanation


def sweep(*extra: str, model: str = "demo-cnn", data: str = f"{F}:tiny_data", out: str = "{t}/out") -> tuple[str, ...]:
    """A sweep command line that is fine until ``extra`` is added (later options win)."""
    return ("sweep", model, "--data", data, "--bers", "1e-2", "--trials", "1", "--out", out, "--quiet", *extra)


def inspect(*extra: str, model: str = "demo-cnn") -> tuple[str, ...]:
    return ("inspect", model, *extra)


NO_CUDA = [] if torch.cuda.is_available() else [
    Case("device-cuda-without-gpu", sweep("--device", "cuda"), "--device", "no cuda device"),
]

CASES = [
    # ------------------------------------------------------------------ the parser
    Case("no-command", (), "COMMAND", "required"),
    Case("unknown-command", ("frobnicate",), "frobnicate", "invalid choice"),
    Case("sweep-nothing", ("sweep",), "MODEL", "required"),
    Case("sweep-no-data", ("sweep", "demo-cnn", "--bers", "1e-3", "--out", "{t}/o"), "--data", "required"),
    Case("sweep-no-bers", ("sweep", "demo-cnn", "--data", "digits", "--out", "{t}/o"), "--bers", "required"),
    Case("sweep-no-out", ("sweep", "demo-cnn", "--data", "digits", "--bers", "1e-3"), "--out", "required"),
    Case("unknown-option", sweep("--frobnicate"), "--frobnicate", "unrecognized"),
    Case("bers-not-a-number", sweep("--bers", "1e-3,x"), "'x'", "is not a number"),
    Case("bers-above-one", sweep("--bers", "2"), "--bers", "[0, 1]"),
    Case("bers-negative", sweep("--bers", "-0.1"), "-0.1", "[0, 1]"),
    Case("bers-nan", sweep("--bers", "nan"), "nan", "[0, 1]"),
    Case("bers-inf", sweep("--bers", "1e-3,inf"), "inf", "[0, 1]"),
    Case("bers-empty", sweep("--bers", ""), "--bers", "no bit-error rate"),
    Case("bers-commas", sweep("--bers", ", ,"), "--bers", "no bit-error rate"),
    Case("trials-zero", sweep("--trials", "0"), "--trials", "positive integer"),
    Case("trials-negative", sweep("--trials", "-3"), "--trials", "positive integer"),
    Case("trials-text", sweep("--trials", "ten"), "ten", "positive integer"),
    Case("trials-fraction", sweep("--trials", "1.5"), "1.5", "positive integer"),
    Case("batch-size-zero", sweep("--batch-size", "0"), "--batch-size", "positive integer"),
    Case("seed-negative", sweep("--seed", "-1"), "--seed", ">= 0"),
    Case("seed-text", sweep("--seed", "abc"), "abc", ">= 0"),
    Case("mode-unknown", sweep("--mode", "sometimes"), "sometimes", "invalid choice"),
    Case("search-index-text", sweep("--search-index", "x"), "--search-index", "invalid int"),
    Case("device-index-too-high", sweep("--device", "cuda:99"), "cuda:99", "device"),
    Case("device-nonsense", sweep("--device", "foo"), "'foo'", "not a device"),
    Case("device-meta", sweep("--device", "meta"), "meta", "cannot run on"),
    *NO_CUDA,
    Case("out-empty", sweep(out=""), "--out", "empty"),
    Case("out-is-a-file", sweep(out="{t}/afile"), "afile", "is a file, not a folder"),
    Case("out-under-a-file", sweep(out="{t}/afile/sub"), "afile", "is a file, not a folder"),
    Case("metric-unknown", sweep("--metric", "accuracy"), "accuracy", "unknown metric"),
    Case("config-missing", sweep("--config", "{t}/missing.json"), "missing.json", "no file"),
    Case("config-is-a-folder", sweep("--config", "{t}"), "--config", "is a folder"),
    Case("weights-missing", sweep("--weights", "{t}/missing.pt"), "missing.pt", "no file"),
    # ------------------------------------------------------------------ models
    Case("model-typo", sweep(model="demo-cn"), "demo-cn", "Did you mean 'demo-cnn'"),
    Case("model-no-module", sweep(model="no_such_module:build"), "no_such_module", "cannot import"),
    Case("model-no-attribute", sweep(model=f"{F}:nothing"), "nothing", "has no attribute"),
    Case("model-not-a-module", sweep(model=f"{F}:not_a_model"), "not_a_model", "not an nn.Module"),
    Case("model-file-missing", sweep(model="{t}/missing.pt"), "missing.pt", "no model file"),
    Case("model-file-not-torch", sweep(model="{t}/notes.pt"), "notes.pt", "not a file written by torch.save"),
    Case("model-file-pickled", sweep(model="{t}/whole.pt"), "whole.pt", "--trust-pickle"),
    Case("model-file-state-dict", sweep(model="{t}/state.pt"), "state.pt", "--weights"),
    Case("weights-text-file", sweep("--weights", "{t}/notes.txt"), "--weights", "not a file written by torch.save"),
    Case("weights-pickled-module", sweep("--weights", "{t}/whole.pt"), "--weights", "state_dict()"),
    Case("weights-wrong-shapes", sweep("--weights", "{t}/narrow.pt"), "--weights", "does not fit"),
    Case("weights-not-a-dict", sweep("--weights", "{t}/tensor.pt"), "--weights", "not a state dict"),
    # ------------------------------------------------------------------ data
    Case("data-unknown", sweep(data="nonsense"), "nonsense", "unknown data"),
    Case("data-no-module", sweep(data="no_such_module:x"), "--data", "cannot import"),
    Case("data-not-callable", sweep(data=f"{F}:NOT_CALLABLE"), "NOT_CALLABLE", "not a callable"),
    Case("data-no-batch-size", sweep("--batch-size", "8", data=f"{F}:no_batch_size"), "--batch-size", "takes no batch_size"),
    Case("data-wrong-shape", sweep(data=f"{F}:wrong_shape_data"), "--data", "cannot take its inputs"),
    Case("data-not-iterable", sweep(data=f"{F}:not_iterable_data"), "--data", "returned an object of type int"),
    Case("data-one-shot", sweep(data=f"{F}:one_shot_data"), "--data", "one-shot iterator"),
    Case("data-not-pairs", sweep(data=f"{F}:not_pairs_data"), "--data", "not an (inputs, targets) pair"),
    Case("data-empty", sweep(data=f"{F}:empty_data"), "--data", "no batches"),
    # ------------------------------------------------------------------ configs and search files
    Case("config-garbled", sweep("--config", "{t}/garbled.json"), "garbled.json", "not valid JSON"),
    Case("config-not-utf8", sweep("--config", "{t}/latin1.json"), "latin1.json", "UTF-8"),
    Case("config-unknown-field", sweep("--config", "{t}/unknown_field.json"), "berr", "unknown"),
    Case("config-ber-too-high", sweep("--config", "{t}/ber2.json"), "ber", "[0, 1]"),
    Case("config-count", sweep("--config", "{t}/count.json"), "count=", "random bit errors"),
    Case("config-and-search-bits", sweep("--config", "{t}/bits.json", "--search-json", "{t}/search.json"),
         "--search-json", "give one of them"),
    Case("search-json-mismatch", sweep("--search-json", "{t}/search_two.json"), "--search-json", "entries"),
    Case("search-json-not-search", sweep("--search-json", "{t}/ber2.json"), "--search-json", "configurations"),
    Case("search-json-garbled", sweep("--search-json", "{t}/garbled.json"), "garbled.json", "not valid JSON"),
    Case("search-index-out-of-range", sweep("--search-json", "{t}/search.json", "--search-index", "5"),
         "index 5", "out of range"),
    Case("search-index-alone", sweep("--search-index", "1"), "--search-index", "--search-json"),
    Case("metric-no-module", sweep("--metric", "no_such_module:fn"), "--metric", "cannot import"),
    Case("metric-not-callable", sweep("--metric", f"{F}:NOT_CALLABLE"), "--metric", "not a callable"),
    Case("metric-wrong-signature", sweep("--metric", f"{F}:one_argument_metric"), "--metric",
         "metric(outputs, targets)"),
    Case("results-of-another-mode", sweep("--mode", "transient", out="{t}/done"), "results.jsonl", "use another output folder"),
    Case("results-of-another-seed", sweep("--seed", "7", out="{t}/done"), "results.jsonl", "use another output folder"),
    # ------------------------------------------------------------------ inspect
    Case("inspect-nothing", ("inspect",), "MODEL", "required"),
    Case("inspect-model-typo", inspect(model="demo-cn"), "demo-cn", "Did you mean"),
    Case("inspect-no-sites", inspect(model=f"{F}:plain_model"), "plain_model", "no weight quantizer"),
    Case("inspect-ber-too-high", inspect("--ber", "2"), "--ber", "ber must be"),
    Case("inspect-ber-text", inspect("--ber", "x"), "'x'", "is not a number"),
    Case("inspect-seed-negative", inspect("--seed", "-2"), "--seed", ">= 0"),
    Case("inspect-out-suffix", inspect("--out", "{t}/g.txt"), "g.txt", ".graphml"),
    Case("inspect-out-empty", inspect("--out", ""), "--out", "empty"),
    Case("inspect-out-folder", inspect("--out", "{t}"), "--out", "is a folder"),
    Case("inspect-out-under-a-file", inspect("--out", "{t}/afile/g.svg"), "afile", "is a file, not a folder"),
    Case("inspect-hops-without-out", inspect("--neighbourhood", "2"), "--neighbourhood", "--out"),
    Case("inspect-hops-negative", inspect("--neighbourhood", "-1"), "--neighbourhood", ">= 0"),
    Case("inspect-hops-with-code", inspect("--neighbourhood", "1", "--out", "{t}/g.py"), "--neighbourhood", "graph format"),
    Case("inspect-shape-zero", inspect("--input-shape", "0,1"), "0,1", "positive sizes"),
    Case("inspect-shape-text", inspect("--input-shape", "abc"), "abc", "sizes such as"),
    Case("inspect-shape-wrong", inspect("--input-shape", "1,3,8,8", "--out", "{t}/g.json"), "1,3,8,8", "cannot take"),
    Case("inspect-shape-without-out", inspect("--input-shape", "1,1,8,8"), "--input-shape", "--out"),
    Case("inspect-config-garbled", inspect("--config", "{t}/garbled.json"), "garbled.json", "not valid JSON"),
    Case("inspect-config-not-utf8", inspect("--config", "{t}/latin1.json"), "latin1.json", "UTF-8"),
    Case("inspect-config-unknown-field", inspect("--config", "{t}/unknown_field.json"), "berr", "unknown"),
    # ------------------------------------------------------------------ demo
    Case("demo-out-empty", ("demo", "--out", ""), "--out", "empty"),
    Case("demo-out-is-a-file", ("demo", "--out", "{t}/afile"), "afile", "is a file, not a folder"),
    Case("demo-out-under-a-file", ("demo", "--out", "{t}/afile/sub"), "afile", "is a file, not a folder"),
    Case("demo-seed-negative", ("demo", "--seed", "-1"), "--seed", ">= 0"),
    Case("demo-extra-argument", ("demo", "--quick", "now"), "now", "unrecognized"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """The fixture files the bad command lines name, and a finished sweep in ``done/``."""
    t = tmp_path_factory.mktemp("bad-inputs")
    (t / "afile").write_text("not a folder\n")
    (t / "notes.txt").write_text("some notes, not a checkpoint\n")
    (t / "notes.pt").write_text("some notes with a .pt suffix\n")
    torch.save(lsq_small_cnn(), t / "whole.pt")
    torch.save(lsq_small_cnn(seed=3).state_dict(), t / "state.pt")
    torch.save(lsq_small_cnn(width=8).state_dict(), t / "narrow.pt")
    torch.save(torch.zeros(3), t / "tensor.pt")
    (t / "garbled.json").write_text('{"ber": 1e-3,,}')
    (t / "latin1.json").write_bytes('{"ber": 1e-3, "note": "d\u00e9j\u00e0"}'.encode("latin-1"))
    (t / "unknown_field.json").write_text('{"berr": 1e-3}')
    (t / "ber2.json").write_text('{"ber": 2}')
    (t / "count.json").write_text('{"count": 5}')
    (t / "bits.json").write_text('{"bits": {"conv2": 4}}')
    (t / "search.json").write_text('{"configurations": [{"weight_bits": [4]}]}')
    (t / "search_two.json").write_text('{"configurations": [{"weight_bits": [4, 3]}]}')
    assert main(list(sweep(out=str(t / "done")))) == 0
    return t


def _argv(case: Case, t: Path) -> list[str]:
    return [a.replace("{t}", str(t)) for a in case.argv]


def _check(case: Case, status: int, err: str) -> None:
    lines = err.splitlines()
    assert status == 2, f"{case.name}: exit status {status}, stderr: {err}"
    assert "Traceback" not in err, f"{case.name}: {err}"
    assert len(lines) == 1 and err.endswith("\n"), f"{case.name}: {len(lines)} lines on stderr: {err}"
    assert lines[0].startswith(f"fxfault{' ' + case.argv[0] if case.argv and case.argv[0] in ('sweep', 'inspect', 'demo') else ''}: error: "), err
    assert case.names in lines[0], f"{case.name}: {case.names!r} not named in: {lines[0]}"
    assert case.says in lines[0], f"{case.name}: {case.says!r} not in: {lines[0]}"


def test_the_table_is_big_enough():
    assert len(CASES) >= 50
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_bad_command_line_gets_one_line_and_status_2(case, files, capsys):
    status = main(_argv(case, files))
    captured = capsys.readouterr()
    _check(case, status, captured.err)
    assert "wrote" not in captured.out


SUBPROCESS = ["no-command", "weights-text-file", "weights-pickled-module", "out-under-a-file",
              "device-index-too-high", "data-wrong-shape", "inspect-shape-wrong", "results-of-another-mode"]


@pytest.mark.slow
@pytest.mark.parametrize("name", SUBPROCESS)
def test_a_bad_command_line_in_a_fresh_process(name, files):
    case = next(c for c in CASES if c.name == name)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "fxfault", *_argv(case, files)], cwd=files, env=env,
                          capture_output=True, text=True, timeout=120)
    _check(case, proc.returncode, proc.stderr)


def test_traceback_option_shows_the_traceback(files):
    with pytest.raises(ValueError, match="does not fit"):
        main([*_argv(Case("", sweep("--weights", "{t}/narrow.pt"), "", ""), files), "--traceback"])
