"""Where the batch-1 overhead goes: time spent inside fxfault's own code per forward pass,
against the total faulty - clean difference, and torch's per-op profile of both models.

    .venv/bin/python benchmarks/profile_overhead.py

Writes benchmarks/results/profile.json.
"""

from __future__ import annotations

import collections
import statistics
import time

import torch
from common import interleaved, setup, write
from torch.profiler import ProfilerActivity, profile

import fxfault
import fxfault.ops as ops
from fxfault.faults.cache import Buffers
from fxfault.faults.site import BitFlip
from fxfault.testing import lsq_resnet18

ACC: collections.Counter = collections.Counter()


def _timed(name, fn):
    def wrapper(*a, **k):
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            ACC[name] += time.perf_counter() - t0

    return wrapper


def instrument() -> None:
    ops.quantize = _timed("quantize", ops.quantize)
    ops.dequantize = _timed("dequantize", ops.dequantize)
    ops._dequantize_impl = _timed("  of which: copy and compare", ops._dequantize_impl)
    ops._quantize_impl = _timed("  of which: compute codes", ops._quantize_impl)
    Buffers.write = _timed("  of which: buffer writes", Buffers.write)
    BitFlip.inject = _timed("flip (sampling + apply)", BitFlip.inject)
    BitFlip._draw = _timed("  of which: sampling", BitFlip._draw)


def top_ops(fn, n: int = 10) -> list[tuple[str, float]]:
    with profile(activities=[ProfilerActivity.CPU]) as p:
        for _ in range(n):
            fn()
    rows = sorted(p.key_averages(), key=lambda e: -e.self_cpu_time_total)[:8]
    return [(e.key, e.self_cpu_time_total / n / 1e3) for e in rows]


def run() -> dict:
    model = lsq_resnet18(width=64)
    x = torch.randn(1, 3, 32, 32)
    instrument()
    rows = []
    for mode, ber in (("persistent", 1e-6), ("persistent", 1e-4), ("transient", 1e-6), ("transient", 1e-4)):
        faulty = fxfault.transform(model, fxfault.FaultConfig(ber=ber, mode=mode))
        with torch.no_grad():
            for _ in range(3):
                faulty(x)
            ACC.clear()
            repeats = 41
            t = interleaved({"clean": lambda: model(x), "faulty": lambda: faulty(x)}, repeats=repeats, warmup=0)
            med = {k: statistics.median(v) * 1e3 for k, v in t.items()}
            inside = {k: v / repeats * 1e3 for k, v in ACC.items()}
            prof = {"clean": top_ops(lambda: model(x)), "faulty": top_ops(lambda: faulty(x))}
        row = {"mode": mode, "ber": ber, "clean_ms": med["clean"], "faulty_ms": med["faulty"],
               "overhead_ms": med["faulty"] - med["clean"],
               "inside_fxfault_ms": sum(v for k, v in inside.items() if not k.startswith(" ")),
               "breakdown_ms": inside, "top_ops_ms": prof}
        rows.append(row)
        print(f"{mode:10} ber={ber:<7g} clean {row['clean_ms']:.1f} ms, faulty {row['faulty_ms']:.1f} ms: "
              f"overhead {row['overhead_ms']:.1f} ms, of which inside fxfault {row['inside_fxfault_ms']:.1f} ms "
              + ", ".join(f"{k.strip()} {v:.2f}" for k, v in inside.items()), flush=True)
    return {"rows": rows}


if __name__ == "__main__":
    setup(2)
    print("wrote", write("profile", run()))
