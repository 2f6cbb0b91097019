from __future__ import annotations

import json

import pytest
import torch

from fxfault.campaign import SweepResult
from fxfault.cli.demo import run_demo


@pytest.mark.slow
def test_quick_demo(tmp_path, capsys):
    pytest.importorskip("sklearn")
    threads = torch.get_num_threads()
    rng = torch.get_rng_state()
    assert run_demo(str(tmp_path / "demo"), quick=True, seed=0) == 0
    assert torch.get_num_threads() == threads and torch.equal(torch.get_rng_state(), rng)
    out = capsys.readouterr().out
    for piece in ("Trained for 1 epoch", "conv3       3", "bit for bit: True", "clean", "1e-01",
                  "Demo finished in"):
        assert piece in out
    names = sorted(p.name for p in (tmp_path / "demo").iterdir())
    assert names == [
        "faulty_graph.dot", "faulty_graph.py", "faulty_graph.svg", "model.pt", "plot.png",
        "report.md", "results.jsonl", "summary.csv",
    ]
    assert "conv3_weight_flip" in (tmp_path / "demo" / "faulty_graph.py").read_text()
    r = SweepResult.load(tmp_path / "demo")
    assert r.bers == [1e-3, 1e-1] and len(r.records) == 4 and r.mode == "persistent"
    assert r.config["bits"] == {"conv2": 4, "conv3": 3, "conv4": 4}
    assert "demo_digits_bits.json" in (tmp_path / "demo" / "report.md").read_text()
    state = torch.load(tmp_path / "demo" / "model.pt", weights_only=True)
    assert "conv2.quan_w_fn.s" in state

    # seeded: the same seed gives the same results
    assert run_demo(str(tmp_path / "again"), quick=True, seed=0) == 0
    capsys.readouterr()
    r2 = SweepResult.load(tmp_path / "again")
    assert r2.baseline == r.baseline
    assert all(a.same_outcome(b) for a, b in zip(r.records, r2.records))
    first = json.loads((tmp_path / "demo" / "results.jsonl").read_text().splitlines()[0])
    assert first["kind"] == "header" and first["model"]["values"] == r2.meta["model"]["values"]
