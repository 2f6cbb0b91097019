"""Does training with bit errors make a quantized model more robust to them? Measure it.

Trains the mixed-precision LSQ digits CNN twice from the same start — normally, and fault-aware
(the same loop on ``fxfault.transform(model, cfg)`` with an exponential BER ramp, then the
BatchNorm statistics re-estimated with faults off) — then sweeps both over BERs with persistent
faults and prints accuracy with 95% confidence intervals and the difference. The numbers are
whatever they turn out to be: a gain, or the lack of one.

    python examples/train_fault_aware.py            # under a minute on 2 cores
    python examples/train_fault_aware.py --quick    # a few seconds (CI)
"""

from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

import fxfault
from fxfault import FaultConfig
from fxfault.campaign import sweep
from fxfault.testing.digits import accuracy, digits_batches, digits_tensors, lsq_digits_cnn
from fxfault.training import BerSchedule, recalibrate_batchnorm


def train(model: nn.Module, *, epochs: int, seed: int, schedule: BerSchedule | None, limit: int | None) -> nn.Module:
    """Adam + one-cycle, as fxfault.testing.digits.train_digits; with ``schedule``, on the
    faulty graph with the BER of each epoch. Trains ``model``'s own parameters in place."""
    net: nn.Module = model
    if schedule is not None:
        net = fxfault.transform(model, FaultConfig(ber=schedule(0), seed=seed))
    x, y = digits_tensors("train")
    if limit is not None:
        x, y = x[:limit], y[:limit]
    gen = torch.Generator().manual_seed(seed)
    batch = 64
    steps = epochs * math.ceil(len(y) / batch)
    scales = [p for n, p in net.named_parameters() if n.endswith(".s")]
    ids = {id(p) for p in scales}
    others = [p for p in net.parameters() if id(p) not in ids]
    lr = 0.01
    opt = torch.optim.Adam([{"params": others, "lr": lr}, {"params": scales, "lr": lr * 0.01}])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[lr, lr * 0.01], total_steps=steps)
    net.train()
    for epoch in range(epochs):
        if schedule is not None:
            schedule.apply(net, epoch)
        for idx in torch.randperm(len(y), generator=gen).split(batch):
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    if schedule is not None:
        # the running statistics were gathered under faults; re-estimate them clean
        recalibrate_batchnorm(net, x.split(256))
    model.eval()
    return model


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny settings (CI smoke test)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--trials", type=_positive, default=None, help="fault trials per BER (default 5)")
    p.add_argument("--target-ber", type=float, default=1e-2, help="BER at the end of the ramp")
    args = p.parse_args(argv)
    torch.set_flush_denormal(True)
    t0 = time.perf_counter()
    epochs = 2 if args.quick else 8
    trials = args.trials or (2 if args.quick else 5)
    limit = 256 if args.quick else None
    bers = [1e-3, 1e-2] if args.quick else [1e-4, 1e-3, 5e-3, 1e-2, 2e-2, 5e-2]
    schedule = BerSchedule(args.target_ber, kind="exp", start=args.target_ber / 100, warmup=max(1, epochs // 2))

    normal = train(lsq_digits_cnn(seed=args.seed), epochs=epochs, seed=args.seed, schedule=None, limit=limit)
    aware = train(lsq_digits_cnn(seed=args.seed), epochs=epochs, seed=args.seed, schedule=schedule, limit=limit)

    x, y = digits_tensors("test")
    data = digits_batches("test", 128, limit=128 if args.quick else None)
    cfg = FaultConfig(seed=args.seed)
    results = {}
    for name, model in (("normal", normal), ("fault-aware", aware)):
        results[name] = sweep(model, cfg, data, bers=bers, trials=trials, progress=False)

    print(f"Digits LSQ CNN, {epochs} epochs each; fault-aware: exp BER ramp to {args.target_ber:g}")
    print(f"clean test accuracy: normal {accuracy(normal, x, y):.2f}%   fault-aware {accuracy(aware, x, y):.2f}%")
    print(f"persistent faults, {trials} trials per BER, mean top-1 % [95% CI]\n")
    head = f"{'BER':>8}  {'normal':>22}  {'fault-aware':>22}  {'gain':>7}"
    print(head)
    print("-" * len(head))
    rows = {name: {s.ber: s for s in r.summary()} for name, r in results.items()}
    for ber in bers:
        a, b = rows["normal"][ber], rows["fault-aware"][ber]

        def fmt(s):  # type: ignore[no-untyped-def]
            ci = "" if math.isnan(s.ci_low) else f" [{s.ci_low:5.1f},{s.ci_high:5.1f}]"
            return f"{s.mean:6.2f}{ci}"

        print(f"{ber:>8.0e}  {fmt(a):>22}  {fmt(b):>22}  {b.mean - a.mean:>+7.2f}")
    print(f"\ntotal time {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
