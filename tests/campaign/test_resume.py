"""Resumable result files: skip finished pairs, refuse other sweeps, survive kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fxfault import FaultConfig, ResultsMismatchError
from fxfault.campaign import Metric, SweepResult, sweep
from fxfault.testing import lsq_small_cnn
from fxfault.testing.digits import digits_batches

ROOT = Path(__file__).resolve().parents[2]
BERS = [1e-3, 1e-2, 5e-2]
TRIALS = 3


class CountingTop1:
    """top-1 that counts its calls, and SIGKILLs its own process after
    ``FXFAULT_TEST_KILL_AFTER`` calls (to simulate a crash in the middle of a trial)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, outputs, targets):
        self.calls += 1
        limit = os.environ.get("FXFAULT_TEST_KILL_AFTER")
        if limit is not None and self.calls > int(limit):
            os.kill(os.getpid(), signal.SIGKILL)
        return (outputs.argmax(1) == targets).sum(), targets.numel()


def counting_metric() -> Metric:
    return Metric("counting-top1", CountingTop1(), label="top-1 accuracy (%)", scale=100.0)


def run(out, metric=None, bers=BERS, trials=TRIALS, **kwargs):
    """The sweep of these tests (also run in a subprocess by the crash test)."""
    return sweep(lsq_small_cnn(), None, digits_batches("test", 64, limit=192), bers, trials,
                 metric=metric or counting_metric(), out=out, progress=False, **kwargs)


def _lines(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_results_file_lines(tmp_path):
    r = run(tmp_path)
    lines = _lines(tmp_path / "results.jsonl")
    assert [x["kind"] for x in lines] == ["header", "baseline"] + ["trial"] * 9
    assert lines[0]["metric"] == "counting-top1" and lines[0]["config"]["mode"] == "persistent"
    assert lines[1]["value"] == r.baseline and lines[1]["examples"] == 192
    assert SweepResult.load(tmp_path) == SweepResult.load(tmp_path / "results.jsonl")
    loaded = SweepResult.load(tmp_path)
    assert loaded.records == r.records and loaded.baseline == r.baseline


def test_resume_skips_finished_pairs_and_reuses_the_baseline(tmp_path):
    first = run(tmp_path, bers=BERS[:2], trials=2)
    metric = counting_metric()
    full = run(tmp_path, metric=metric)                   # 3 BERs x 3 trials, 4 pairs done
    assert metric.fn.calls == (9 - 4) * 3                 # no baseline, 5 trials of 3 batches
    assert all(a.same_outcome(b) for a, b in zip(first.records, [full.records[i] for i in (0, 1, 3, 4)]))
    assert [a.seconds for a in first.records] == [full.records[i].seconds for i in (0, 1, 3, 4)]
    assert len(_lines(tmp_path / "results.jsonl")) == 2 + 9
    metric = counting_metric()
    again = run(tmp_path, metric=metric)
    assert metric.fn.calls == 0 and again == full
    fresh = run(None)
    assert fresh.baseline == full.baseline
    assert all(a.same_outcome(b) for a, b in zip(fresh.records, full.records))


@pytest.mark.parametrize(
    "change, says",
    [
        (dict(seed=1), "config field 'seed' (stored 0, now 1)"),
        (dict(mode="transient"), "config field 'mode'"),
        (dict(cfg=FaultConfig(encoding="gray")), "config field 'encoding'"),
        (dict(metric="top1"), "the metric (stored 'counting-top1', now 'top1')"),
        (dict(model="values"), "parameter or buffer values"),
        (dict(model="arch"), "architecture"),
    ],
)
def test_another_sweep_is_refused(tmp_path, change, says):
    run(tmp_path, bers=[1e-2], trials=1)
    before = (tmp_path / "results.jsonl").read_bytes()
    model = lsq_small_cnn()
    if change.get("model") == "values":
        model = lsq_small_cnn(seed=1)
    elif change.get("model") == "arch":
        model = lsq_small_cnn(width=8)
    cfg = change.get("cfg")
    kwargs = {k: v for k, v in change.items() if k in ("seed", "mode", "metric")}
    kwargs.setdefault("metric", counting_metric())
    with pytest.raises(ResultsMismatchError, match="different sweep") as info:
        sweep(model, cfg, digits_batches("test", 64, limit=192), [1e-2], 1, out=tmp_path,
              progress=False, **kwargs)
    assert says in str(info.value) and "delete the file" in str(info.value)
    assert (tmp_path / "results.jsonl").read_bytes() == before


def test_other_data_are_refused_before_anything_is_written(tmp_path):
    run(tmp_path, bers=[1e-2], trials=1)
    before = (tmp_path / "results.jsonl").read_bytes()
    with pytest.raises(ResultsMismatchError, match="data differ"):
        sweep(lsq_small_cnn(), None, digits_batches("test", 64, limit=128), [1e-2], 2,
              metric=counting_metric(), out=tmp_path, progress=False)
    assert (tmp_path / "results.jsonl").read_bytes() == before


def test_a_foreign_or_damaged_file_is_refused(tmp_path):
    (tmp_path / "results.jsonl").write_text('{"hello": 1}\n')
    with pytest.raises(ResultsMismatchError, match="not an fxfault sweep results file"):
        run(tmp_path)
    run(tmp_path / "b", bers=[1e-2], trials=1)
    path = tmp_path / "b" / "results.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "{not json", *lines[1:]]) + "\n")
    with pytest.raises(ResultsMismatchError, match="line 2 .* is not valid JSON"):
        run(tmp_path / "b")


def test_a_torn_last_line_is_ignored_and_cut(tmp_path):
    run(tmp_path, bers=[1e-2], trials=2)
    path = tmp_path / "results.jsonl"
    complete = path.read_bytes()
    last = complete.splitlines(keepends=True)[-1]
    path.write_bytes(complete[: -len(last)] + last[: len(last) // 2])   # the last trial, torn
    assert len(SweepResult.load(path).records) == 1
    metric = counting_metric()
    r = run(tmp_path, metric=metric, bers=[1e-2], trials=2)
    assert metric.fn.calls == 3                                            # only the torn trial
    assert [json.loads(x)["kind"] for x in path.read_text().splitlines()] == ["header", "baseline", "trial", "trial"]
    assert SweepResult.load(path) == r


@pytest.mark.slow
def test_resume_after_kill_9(tmp_path):
    """A sweep SIGKILLed in the middle of its 5th trial keeps 4 trials; the rerun does the rest."""
    done_before_kill = 4
    env = dict(os.environ, FXFAULT_TEST_KILL_AFTER=str(3 + done_before_kill * 3))   # baseline + 4 trials
    script = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "import torch; torch.set_num_threads(1)\n"
        "from tests.campaign.test_resume import run\n"
        f"run({str(tmp_path)!r})\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    kinds = [json.loads(x)["kind"] for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert kinds == ["header", "baseline"] + ["trial"] * done_before_kill

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        metric = counting_metric()
        resumed = run(tmp_path, metric=metric)
        uninterrupted = run(None)
    finally:
        torch.set_num_threads(threads)
    assert metric.fn.calls == (9 - done_before_kill) * 3          # nothing finished is recomputed
    assert len(resumed.records) == 9
    assert resumed.baseline == uninterrupted.baseline
    assert all(a.same_outcome(b) for a, b in zip(resumed.records, uninterrupted.records))
    assert SweepResult.load(tmp_path) == resumed
