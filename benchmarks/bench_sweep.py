"""Sweep throughput on the demo: trials per second (transform, baseline and all trials).

    .venv/bin/python benchmarks/bench_sweep.py
"""

from __future__ import annotations

import time

from common import setup, write

import fxfault
from fxfault.testing.digits import demo_bits_path, digits_batches, lsq_digits_cnn, train_digits


def run() -> dict:
    model = lsq_digits_cnn(demo_bits_path(), seed=0)
    train_digits(model, epochs=8, seed=0)
    cfg = fxfault.FaultConfig.from_search_json(demo_bits_path(), model, seed=0)
    data = digits_batches("test", 256)
    rows = []
    for mode in ("persistent", "transient"):
        best = None
        for _ in range(3):
            t0 = time.perf_counter()
            r = fxfault.sweep(model, cfg, data, [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1], 10,
                              progress=False, mode=mode)
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
        n = len(r.records)
        rows.append({"mode": mode, "trials": n, "seconds": best, "trials_per_s": n / best})
        print(f"demo sweep ({mode}): {n} trials in {best:.2f} s = {n / best:.1f} trials/s", flush=True)
    return {"rows": rows}


if __name__ == "__main__":
    setup(2)
    print("wrote", write("sweep", run()))
