"""Shared benchmark machinery: interleaved timing, medians, the dense-mask baseline, machine info."""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

import fxfault
from fxfault.faults.site import BitFlip

RESULTS = Path(__file__).resolve().parent / "results"


def setup(threads: int = 2) -> None:
    """The conditions of every benchmark: fixed threads, denormals flushed (for both sides)."""
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores_visible": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "fxfault": fxfault.__version__,
        "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def interleaved(
    fns: dict[str, Callable[[], Any]], *, repeats: int, warmup: int = 2, sync: bool = False
) -> dict[str, list[float]]:
    """Run every function once per round, in rotating order; return the times (s) of each."""
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n]()
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for n in order:
            gc.collect()
            if sync:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fns[n]()
            if sync:
                torch.cuda.synchronize()
            times[n].append(time.perf_counter() - t0)
    return times


def ratio_of_medians(times: dict[str, list[float]], num: str, den: str) -> float:
    return statistics.median(times[num]) / statistics.median(times[den])


def median_ms(ts: Sequence[float]) -> float:
    return statistics.median(ts) * 1e3


def write(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"machine": machine(), **payload}
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path


class DenseFlip(nn.Module):
    """The usual injector's sampler, for comparison: a uniform draw for every bit of every code
    on every forward pass (a dense ``[N, k]`` mask), XOR-ed into the offset-binary codes.

    It replaces a ``BitFlip`` site in the same graph, so both see the same codes and the rest
    of the chain is identical; only the sampling differs.
    """

    def __init__(self, site: BitFlip, seed: int = 0) -> None:
        super().__init__()
        self.name = site.name
        self.bits = site.bits
        self.ber = site.ber
        self.offset = 1 << (site.bits - 1) if site.qmin < 0 else 0
        self.seed = seed
        self.gen = torch.Generator().manual_seed(seed)

    def cached(self, pass_: object) -> bool:  # the graph's ops ask: never use buffers
        return False

    def observe_clean(self, x: torch.Tensor) -> None:
        pass

    def forward(self, codes: torch.Tensor, pass_: object = None, sources: object = None) -> torch.Tensor:
        if self.ber <= 0:
            return codes
        k = self.bits
        if self.gen.device != codes.device:  # the draws happen where the codes live
            self.gen = torch.Generator(device=codes.device).manual_seed(self.seed)
        mask = torch.rand(codes.numel(), k, generator=self.gen, device=codes.device) < self.ber
        weights = 1 << torch.arange(k, dtype=torch.int64, device=codes.device)
        flips = (mask.to(torch.int64) * weights).sum(1).reshape(codes.shape)
        words = codes.to(torch.int64) + self.offset
        return ((words ^ flips) - self.offset).to(codes.dtype)


def dense_variant(model: nn.Module, cfg: fxfault.FaultConfig) -> nn.Module:
    """``fxfault.transform(model, cfg)`` whose sites sample with dense masks instead."""
    gm = fxfault.transform(model, cfg)
    container = gm.get_submodule("fxfault_sites")
    for name, site in list(container.named_children()):
        setattr(container, name, DenseFlip(site))
    return gm
