"""Forward-time overhead of fxfault beside MRFI (a hook-based peer injector), on torchvision
resnet18 (weights=None) with 8-bit weights, each variant against the float model, interleaved
in one run (rotating order, gc before each timed pass, medians, ratios from the same run).

MRFI lives in its own venv, never in the project's:

    python3 -m venv .venv-peers
    .venv-peers/bin/pip install -c constraints.txt torch==2.14.1 torchvision==0.29.1
    .venv-peers/bin/pip install -c constraints.txt mrfi
    .venv-peers/bin/pip install -c constraints.txt -e . --no-deps numpy networkx tqdm
    .venv-peers/bin/python benchmarks/bench_peers.py            # full run
    .venv-peers/bin/python benchmarks/bench_peers.py --quick    # batch 1, 5 rounds

Columns: fxfault with faults off (the transformed graph inside ``fxfault.disabled``), fxfault
persistent and transient at BER 1e-6 and 1e-4, MRFI at 1e-6 and 1e-4. MRFI is set up as its own
``weight_fi`` preset with 8-bit ``SymmericQuantization`` (dynamic_range auto, per tensor) and
``IntRandomBitFlip`` on ``RandomPositionByRate`` positions, the per-value rate being 8 x BER as
``mrfi.experiment.BER_Acc_experiment`` sets it. MRFI re-samples its positions on every pass (and
restores and requantizes every weight in a pre-hook), so it is the peer of fxfault's transient
mode. Rows: batch 1 at 224x224, batch 32 at 64x64. Writes benchmarks/results/peers.json.
"""

from __future__ import annotations

import argparse
import copy
import functools
import importlib.metadata
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from common import RESULTS, interleaved, machine, median_ms, setup
from torch import nn

import fxfault
from fxfault import FaultConfig

try:
    from mrfi import MRFI, EasyConfig
except ImportError:
    MRFI = EasyConfig = None

SETUP_HINT = """\
bench_peers.py needs MRFI (PyPI: mrfi), which is kept out of the project's venv. From the repo root:
    python3 -m venv .venv-peers
    .venv-peers/bin/pip install -c constraints.txt torch==2.14.1 torchvision==0.29.1
    .venv-peers/bin/pip install -c constraints.txt mrfi
    .venv-peers/bin/pip install -c constraints.txt -e . --no-deps numpy networkx tqdm
then run: .venv-peers/bin/python benchmarks/bench_peers.py"""

BITS = 8
BERS = (1e-6, 1e-4)
SHAPES = ((1, 224), (32, 64))  # (batch, image side)
MRFI_LAYERS = 21  # resnet18: 20 convolutions (3 of them downsample.0) and fc


def float_model() -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return torchvision.models.resnet18(weights=None).eval()


def fx(model: nn.Module, ber: float, mode: str) -> nn.Module:
    return fxfault.transform(model, FaultConfig(float_bits=BITS, ber=ber, mode=mode, seed=0))


def mrfi_model(model: nn.Module, ber: float) -> Any:
    """MRFI's 8-bit weight injection at per-value rate ``BITS * ber`` on a deep copy of ``model``
    (MRFI writes the faulty weights into the module it wraps, and tags every submodule)."""
    econfig = EasyConfig.load_preset("weight_fi")  # Conv2d + Linear weights, 16-bit sign flips
    econfig.set_quantization(0, {"bit_width": BITS}, update_only=True)  # SymmericQuantization, auto
    econfig.set_error_mode(0, {"method": "IntRandomBitFlip", "bit_width": BITS})
    fi = MRFI(copy.deepcopy(model), econfig)
    selectors = fi.get_weights_configs("selector")
    if len(selectors) != MRFI_LAYERS:
        raise RuntimeError(f"MRFI matched {len(selectors)} weight layers, expected {MRFI_LAYERS}")
    selectors.args.rate = BITS * ber  # as mrfi.experiment.BER_Acc_experiment does
    return fi


def _off(gm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with fxfault.disabled(gm):
        return gm(x)


def variants(model: nn.Module, x: torch.Tensor) -> dict[str, Callable[[], Any]]:
    off = fx(model, 1e-4, "transient")  # a graph of its own, always timed with faults off
    fns: dict[str, Callable[[], Any]] = {"float": lambda: model(x), "fx_off": lambda: _off(off, x)}
    for mode in ("persistent", "transient"):
        for ber in BERS:
            gm = fx(model, ber, mode)
            fns[f"fx_{mode[:4]}_{ber:g}"] = functools.partial(gm, x)
    for ber in BERS:
        fi = mrfi_model(model, ber)
        fns[f"mrfi_{ber:g}"] = functools.partial(fi, x)
    return fns


def check(model: nn.Module) -> dict[str, Any]:
    """Brief correctness: faults off equals the quantized-clean output (fxfault), BER 1e-2 differs
    from it (both injectors), MRFI's golden run is its own quantized-clean model."""
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    out: dict[str, Any] = {}
    with torch.no_grad():
        ref = model(x)
        qclean = fx(model, 0.0, "transient")(x)
        for mode in ("persistent", "transient"):
            gm = fx(model, 1e-2, mode)
            faulty = gm(x)
            off = _off(gm, x)
            out[f"fx_{mode}_off_equals_qclean"] = bool(torch.equal(off, qclean))
            out[f"fx_{mode}_1e-2_max_abs_diff"] = (faulty - qclean).abs().max().item()
        fi = mrfi_model(model, 1e-2)
        faulty = fi(x)
        with fi.golden_run():
            golden = fi(x)
        out["mrfi_1e-2_max_abs_diff"] = (faulty - golden).abs().max().item()
        out["quantization_max_abs_diff"] = {
            "fxfault": (qclean - ref).abs().max().item(), "mrfi": (golden - ref).abs().max().item()
        }
        out["float_model_untouched"] = bool(torch.equal(model(x), ref))
    ok = (
        out["fx_persistent_off_equals_qclean"] and out["fx_transient_off_equals_qclean"]
        and out["fx_persistent_1e-2_max_abs_diff"] > 0 and out["fx_transient_1e-2_max_abs_diff"] > 0
        and out["mrfi_1e-2_max_abs_diff"] > 0 and out["float_model_untouched"]
        and 0 < out["quantization_max_abs_diff"]["mrfi"] < 1
    )
    out["ok"] = bool(ok)
    return out


def run(rounds: int, shapes: tuple[tuple[int, int], ...]) -> list[dict[str, Any]]:
    model = float_model()
    rows = []
    for batch, side in shapes:
        x = torch.randn(batch, 3, side, side, generator=torch.Generator().manual_seed(0))
        torch.manual_seed(0)  # MRFI draws positions from torch's and NumPy's global generators
        np.random.seed(0)
        fns = variants(model, x)
        with torch.no_grad():
            t = interleaved(fns, repeats=rounds)
        med = {k: median_ms(v) for k, v in t.items()}
        row = {
            "model": "resnet18", "weight_bits": BITS, "batch": batch, "image": side, "rounds": rounds,
            "median_ms": med, "ratio": {k: v / med["float"] for k, v in med.items() if k != "float"},
            "times_s": t,
        }
        rows.append(row)
        print(_fmt(row), flush=True)
    return rows


def _fmt(row: dict[str, Any]) -> str:
    head = f"resnet18 b={row['batch']:<2} {row['image']}x{row['image']}  float {row['median_ms']['float']:7.2f} ms"
    return head + "".join(f"  {k} {v:.3f}" for k, v in row["ratio"].items())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=None, help="timed rounds per variant (default 21; 5 with --quick)")
    p.add_argument("--quick", action="store_true", help="batch 1 only, few rounds")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=None,
                   help="JSON file (default benchmarks/results/peers.json, or peers_quick.json with --quick)")
    a = p.parse_args()
    if MRFI is None:
        print(SETUP_HINT, file=sys.stderr)
        return 2
    rounds = a.rounds if a.rounds is not None else (5 if a.quick else 21)
    if rounds < 1:
        p.error("--rounds must be positive")
    setup(a.threads)
    model = float_model()
    checks = check(model)
    print("correctness:", json.dumps(checks), flush=True)
    if not checks["ok"]:
        print("correctness check failed; not timing", file=sys.stderr)
        return 1
    rows = run(rounds, SHAPES[:1] if a.quick else SHAPES)
    out = a.out or RESULTS / ("peers_quick.json" if a.quick else "peers.json")
    payload = {
        "machine": {**machine(), "mrfi": importlib.metadata.version("mrfi")},
        "mrfi_config": {
            "preset": "weight_fi", "quantization": f"SymmericQuantization bit_width={BITS} dynamic_range=auto",
            "selector": f"RandomPositionByRate poisson=True rate={BITS}*BER", "error_mode": "IntRandomBitFlip",
            "layers": "Conv2d and Linear weights (21)", "resampled": "every forward pass",
        },
        "fxfault_config": f"FaultConfig(float_bits={BITS}, ber=BER, mode=..., seed=0)",
        "checks": checks, "rows": rows,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print("wrote", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
