"""Forward-time overhead of fault injection against the clean model, and against the usual
dense-mask injector, with interleaved repeats and medians measured in the same run.

    .venv/bin/python benchmarks/bench_overhead.py            # full run (about 30 minutes)
    .venv/bin/python benchmarks/bench_overhead.py --quick    # a smaller run
    .venv/bin/python benchmarks/bench_overhead.py --only resnet50_own8:32   # rerun one block

(a) the test-double CIFAR ResNet-18 (LSQ, 4-bit middle layers, 8-bit first and last);
(b) torchvision resnet50 with fxfault's own 8-bit weight quantizer (float_bits=8);
(c) the dense-mask baseline (a uniform draw per bit per pass) on the same graphs.
Writes benchmarks/results/overhead.json and prints a table.
"""

from __future__ import annotations

import argparse
import json

import torch
import torchvision
from common import RESULTS, dense_variant, interleaved, median_ms, setup, write

import fxfault
from fxfault import FaultConfig
from fxfault.testing import lsq_resnet18


def models(quick: bool):
    lsq = lsq_resnet18(weight_bits=4, act_bits=4, width=64)
    yield "lsq_resnet18_cifar", lsq, (3, 32, 32), {}
    if not quick:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            r50 = torchvision.models.resnet50(weights=None).eval()
        yield "resnet50_own8", r50, (3, 224, 224), {"float_bits": 8}


def run(quick: bool, only: str | None = None, big_rounds: int = 11, device: str = "cpu") -> dict:
    rows = []
    sync = device.startswith("cuda")
    for name, model, shape, extra in models(quick):
        model = model.to(device)
        batches = (1,) if quick else (1, 32)
        for batch in batches:
            if only is not None and only != f"{name}:{batch}":
                continue
            x = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(0)).to(device)
            big = batch * shape[-1] * shape[-2] >= 32 * 224 * 224
            repeats = big_rounds if big else (9 if quick else 21)
            for mode in ("transient", "persistent"):
                bers = (0.0, 1e-6, 1e-4, 1e-2) if mode == "transient" else (1e-6, 1e-4, 1e-2)
                for ber in bers:
                    cfg = FaultConfig(ber=ber, mode=mode, seed=0, **extra)
                    faulty = fxfault.transform(model, cfg)
                    fns = {"clean": lambda: model(x), "faulty": lambda: faulty(x)}
                    if extra:  # a float model: also the same graph with faults off
                        fns["faults_off"] = lambda: _off(faulty, x)
                    if mode == "transient" and ber in (1e-6, 1e-4):
                        dense = dense_variant(model, cfg)
                        fns["dense"] = lambda: dense(x)
                    with torch.no_grad():
                        t = interleaved(fns, repeats=repeats, sync=sync)
                    med = {k: median_ms(v) for k, v in t.items()}
                    row = {
                        "model": name, "batch": batch, "mode": mode, "ber": ber, "device": device,
                        "median_ms": med, "repeats": repeats,
                        "ratio": med["faulty"] / med["clean"],
                    }
                    if "faults_off" in med:
                        row["ratio_vs_faults_off"] = med["faulty"] / med["faults_off"]
                    if "dense" in med:
                        row["dense_ratio"] = med["dense"] / med["clean"]
                        over = med["faulty"] - med["clean"]
                        row["dense_overhead_over_fxfault_overhead"] = (
                            (med["dense"] - med["clean"]) / over if over > 0 else float("inf")
                        )
                    rows.append(row)
                    print(_fmt(row), flush=True)
    return {"rows": rows}


def _off(faulty, x):
    with fxfault.disabled(faulty):
        return faulty(x)


def _fmt(r: dict) -> str:
    extra = ""
    if "ratio_vs_faults_off" in r:
        extra += f"  vs faults-off {r['ratio_vs_faults_off']:.3f}"
    if "dense_ratio" in r:
        extra += f"  dense {r['dense_ratio']:.2f}x (overhead x{r['dense_overhead_over_fxfault_overhead']:.0f})"
    return (f"{r['model']:20} b={r['batch']:<3} {r['mode']:10} ber={r['ber']:<7g} "
            f"clean {r['median_ms']['clean']:8.2f} ms  faulty {r['median_ms']['faulty']:8.2f} ms  "
            f"ratio {r['ratio']:.3f}{extra}")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", metavar="MODEL:BATCH",
                   help="rerun one model and batch (e.g. resnet50_own8:32) and replace its rows")
    p.add_argument("--big-rounds", type=int, default=11, help="rounds for resnet50 at batch 32")
    p.add_argument("--device", default="cpu", help="cpu or cuda (results go to overhead_cuda.json)")
    a = p.parse_args()
    setup(a.threads)
    out = run(a.quick, a.only, a.big_rounds, a.device)
    name = "overhead" if a.device == "cpu" else f"overhead_{a.device.split(':')[0]}"
    if a.quick:
        name += "_quick"
    if a.only:
        old = json.loads((RESULTS / f"{name}.json").read_text())
        model_name, batch = a.only.split(":")
        keep = [r for r in old["rows"] if (r["model"], str(r["batch"])) != (model_name, batch)]
        out = {"rows": keep + out["rows"]}
    print("wrote", write(name, out))
