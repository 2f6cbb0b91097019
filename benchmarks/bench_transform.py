"""Time of fxfault.transform (tracing, matching, verification, insertion) on large models.

    .venv/bin/python benchmarks/bench_transform.py
"""

from __future__ import annotations

import statistics
import time

import torch
import torchvision
from common import setup, write

import fxfault
from fxfault import FaultConfig
from fxfault.testing import lsq_resnet18


def build(name: str) -> tuple[torch.nn.Module, FaultConfig]:
    if name == "lsq_resnet18_cifar":
        return lsq_resnet18(width=64), FaultConfig(ber=1e-6)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return getattr(torchvision.models, name)(weights=None).eval(), FaultConfig(ber=1e-6, float_bits=8)


def run() -> dict:
    rows = []
    for name in ("resnet50", "vit_b_16", "lsq_resnet18_cifar"):
        model, cfg = build(name)
        fxfault.transform(model, cfg)  # warm-up (imports, first-call costs)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            gm = fxfault.transform(model, cfg)
            times.append(time.perf_counter() - t0)
        row = {"model": name, "median_s": statistics.median(times), "min_s": min(times),
               "sites": len(fxfault.sites(gm)), "nodes": len(gm.graph.nodes)}
        rows.append(row)
        print(f"{name:20} transform median {row['median_s']:.3f} s (min {row['min_s']:.3f}), "
              f"{row['sites']} sites, {row['nodes']} nodes", flush=True)
    return {"rows": rows}


if __name__ == "__main__":
    setup(2)
    print("wrote", write("transform", run()))
