"""Extra peak memory of the faulty model over the clean one, during inference.

Fresh subprocesses per configuration (three; the median and the range are reported): it builds the model, resets the peak-RSS counter
(``/proc/self/clear_refs``), runs clean forward passes and reads the peak; transforms the model
(its own peak is reported apart); resets again, runs faulty passes and reads the peak. The extra
peak is the difference, so it includes every buffer the faulty model keeps.

glibc keeps freed memory in its heap instead of returning it, which inflates resident-set
figures; the runs are repeated with ``MALLOC_MMAP_THRESHOLD_=131072`` (large blocks always
mmapped and returned on free), which measures live memory more closely.

    .venv/bin/python benchmarks/bench_memory.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from common import setup, write

CHILD = r"""
import json, sys, torch
torch.set_num_threads(2); torch.set_flush_denormal(True)
import fxfault
from fxfault import FaultConfig

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")

model_name, batch, variant = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if model_name == "lsq_resnet18_cifar":
    from fxfault.testing import lsq_resnet18
    model, shape, extra = lsq_resnet18(width=64), (3, 32, 32), {}
else:
    import torchvision
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = torchvision.models.resnet50(weights=None).eval()
    shape, extra = (3, 224, 224), {"float_bits": 8}
weights = sum(p.numel() * p.element_size() for n, p in model.named_parameters() if p.dim() > 1)
x = torch.randn(batch, *shape)
mode, cache = variant.split("-")
with torch.no_grad():
    model(x)
    reset_peak()
    base = status("VmRSS")
    for _ in range(4):
        model(x)
    clean = status("VmHWM") - base
    reset_peak()
    t_base = status("VmRSS")
    faulty = fxfault.transform(model, FaultConfig(ber=1e-4, mode=mode, cache=cache == "cache", **extra))
    transform_peak = status("VmHWM") - t_base
    reset_peak()
    base2 = status("VmRSS")
    for _ in range(6):
        faulty(x)
    held = status("VmRSS") - base2
    faulty_peak = status("VmHWM") - base2
print(json.dumps({"weights": weights, "clean": clean, "faulty": faulty_peak, "held": held,
                  "transform": transform_peak}))
"""


RUNS = 3  # fresh processes per row; the row reports the median run and the range


def measure(model: str, batch: int, variant: str, env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, model, str(batch), variant],
                         capture_output=True, text=True, check=True, env={**os.environ, **env})
    return json.loads(out.stdout.strip().splitlines()[-1])


def run() -> dict:
    rows = []
    envs = {"default malloc": {}, "MALLOC_MMAP_THRESHOLD_=131072": {"MALLOC_MMAP_THRESHOLD_": "131072"}}
    for env_name, env in envs.items():
        for model, batch in (("lsq_resnet18_cifar", 32), ("resnet50_own8", 1)):
            for variant in ("transient-cache", "persistent-cache", "transient-nocache", "persistent-nocache"):
                runs = sorted((measure(model, batch, variant, env) for _ in range(RUNS)),
                              key=lambda d: d["faulty"] - d["clean"])
                r = runs[len(runs) // 2]  # the median run
                extra = r["faulty"] - r["clean"]
                w = r["weights"]
                row = {"malloc": env_name, "model": model, "batch": batch, "variant": variant,
                       "runs": RUNS, "weights_mb": w / 2**20, "extra_peak_mb": extra / 2**20,
                       "extra_over_weights": extra / w,
                       "extra_over_weights_min": (runs[0]["faulty"] - runs[0]["clean"]) / w,
                       "extra_over_weights_max": (runs[-1]["faulty"] - runs[-1]["clean"]) / w,
                       "transform_peak_over_weights": r["transform"] / w}
                rows.append(row)
                print(f"{env_name:30} {model:20} b={batch:<3} {variant:19} weights {row['weights_mb']:6.1f} MB  "
                      f"extra peak {row['extra_over_weights']:5.2f} x  transform peak "
                      f"{row['transform_peak_over_weights']:5.2f} x", flush=True)
    return {"rows": rows}


if __name__ == "__main__":
    setup(2)
    print("wrote", write("memory", run()))
