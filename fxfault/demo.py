"""The bundled demo: fault sites of an LSQ ResNet-18, its transformed code, and how its outputs
drift from the clean model's as the bit-error rate grows."""

from __future__ import annotations

import time

import torch

from . import control
from .config import FaultConfig
from .inspect import sites
from .transform import transform

__all__ = ["run_demo"]


def run_demo(out: str = "demo-out", *, quick: bool = False, seed: int = 0) -> int:
    from .testing import lsq_resnet18

    torch.set_flush_denormal(True)
    width = 16 if quick else 64
    model = lsq_resnet18(weight_bits=4, act_bits=4, width=width, seed=seed)
    t0 = time.perf_counter()
    faulty = transform(model, FaultConfig(ber=0.0, seed=seed, mode="persistent"))
    dt = time.perf_counter() - t0
    print(f"Transformed the test-double LSQ CIFAR ResNet-18 (width {width}) in {dt:.2f} s.\n")
    print(f"{'site':<22}{'bits':>5}{'codes':>14}{'weights':>10}")
    for s in sites(faulty):
        print(f"{s.name:<22}{s.bits:>5}{f'[{s.qmin}, {s.qmax}]':>14}{s.numel:>10}")
    first = sites(faulty)[1]
    stem = first.nodes["flip"][: -len("_flip")]
    print(f"\nThe fault chain of {first.name!r} in the generated code:\n")
    for line in faulty.code.splitlines():
        if stem in line and "=" in line:
            print("   ", line.strip().split(";")[0])
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(32 if not quick else 4, 3, 32, 32, generator=g)
    with torch.no_grad():
        clean = model(x)
        ref = clean.argmax(1)
        print(f"\n{'BER':>8}{'flipped bits':>14}{'mean |dlogit|':>15}{'top-1 agree':>13}")
        for ber in (1e-6, 1e-5, 1e-4, 1e-3, 1e-2):
            control.set_ber(faulty, ber)
            control.reset_stats(faulty)
            y = faulty(x)
            flips = control.stats(faulty).total.events
            agree = (y.argmax(1) == ref).float().mean().item()
            print(f"{ber:>8.0e}{flips:>14}{(y - clean).abs().mean().item():>15.4f}{agree:>13.2%}")
        with control.disabled(faulty):
            same = torch.equal(faulty(x), clean)
    print(f"\nWith faults disabled the same graph reproduces the clean outputs bit for bit: {same}")
    return 0
