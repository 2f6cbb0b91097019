"""``torchrun`` with two CPU processes gives the same results as one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fxfault.campaign import SweepResult, sweep
from fxfault.campaign.distributed import Workers, env_world_size
from fxfault.testing import lsq_small_cnn
from fxfault.testing.digits import digits_batches

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_single_process_needs_no_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with Workers.start(torch.device("cpu")) as w:
        assert (w.rank, w.world, w.main) == (0, 1, True)
        assert w.broadcast("x") == "x" and w.all_gather(3) == [3]
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE"):
        env_world_size()


@pytest.mark.slow
def test_two_ranks_match_one_process_and_resume(tmp_path):
    """One process starts the sweep (3 pairs); two torchrun ranks resume it (6 more pairs in
    3 rounds, the last one uneven); the result equals a single-process run of all 9."""
    bers, trials = [1e-3, 1e-2, 1e-1], 3
    data = digits_batches("test", 128)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                           # as each rank runs
    try:
        sweep(lsq_small_cnn(), None, data, bers[:1], trials, out=tmp_path, progress=False)
        one = sweep(lsq_small_cnn(), None, data, bers, trials, progress=False)
    finally:
        torch.set_num_threads(threads)

    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           f"--master_port={_free_port()}", "-m", "fxfault", "sweep", "demo-cnn",
           "--data", "digits", "--batch-size", "128", "--bers", ",".join(map(str, bers)),
           "--trials", str(trials), "--out", str(tmp_path), "--quiet"]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("wrote ") == 4            # rank 0 alone writes and reports
    lines = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [x["kind"] for x in lines] == ["header", "baseline"] + ["trial"] * 9
    two = SweepResult.load(tmp_path)
    assert two.baseline == one.baseline
    assert [r.key for r in two.records] == [r.key for r in one.records]
    assert all(a.same_outcome(b) for a, b in zip(two.records, one.records))
    assert two.meta["model"] == one.meta["model"] and two.config == one.config
