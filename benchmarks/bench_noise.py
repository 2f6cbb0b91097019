"""The noise floor of the forward-time ratios: the clean model against an identical copy of
itself, timed exactly as bench_overhead.py times clean against faulty (interleaved rounds,
ratio of medians), repeated to show how far such a ratio strays from 1 on this machine.

    .venv/bin/python benchmarks/bench_noise.py

Writes benchmarks/results/noise.json.
"""

from __future__ import annotations

import copy
import statistics

import torch
from common import interleaved, median_ms, setup, write

from fxfault.testing import lsq_resnet18


def run(repeats: int = 7) -> dict:
    model = lsq_resnet18(weight_bits=4, act_bits=4, width=64)
    twin = copy.deepcopy(model)
    rows = []
    for batch in (1, 32):
        x = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        ratios = []
        for _ in range(repeats):
            with torch.no_grad():
                t = interleaved({"a": lambda: model(x), "b": lambda: twin(x)}, repeats=21)
            ratios.append(median_ms(t["b"]) / median_ms(t["a"]))
        row = {"model": "lsq_resnet18_cifar", "batch": batch, "runs": repeats, "rounds": 21,
               "ratios": ratios, "min": min(ratios), "max": max(ratios),
               "median": statistics.median(ratios)}
        rows.append(row)
        print(f"A/A b={batch:<3} ratio of medians over {repeats} runs: min {row['min']:.3f} "
              f"median {row['median']:.3f} max {row['max']:.3f}", flush=True)
    return {"rows": rows}


if __name__ == "__main__":
    setup(2)
    print("wrote", write("noise", run()))
