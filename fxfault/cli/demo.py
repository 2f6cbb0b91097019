"""The bundled demo (``fxfault demo``, ``make demo``): train a small mixed-precision LSQ CNN on
scikit-learn's digits, then sweep the bit-error rate of its stored weights.

1. builds :class:`~fxfault.testing.digits.DigitsCNN`, quantized with LSQ: 8-bit first and last
   layers, the three middle layers at the widths of the bundled search-style bit config
   ``fxfault/data/demo_digits_bits.json``;
2. trains it (quantization-aware, seeded) for a few seconds;
3. transforms it with the config that :meth:`fxfault.FaultConfig.from_search_json` reads from
   the same file, lists the fault sites and checks that faults-off is bit-identical;
4. sweeps the BER from 1e-6 to 1e-1 (10 persistent-fault trials each) and prints the table;
5. writes ``results.jsonl``, ``summary.csv``, ``plot.png``, ``report.md``, the trained
   weights ``model.pt`` and the faulty graph (``faulty_graph.py``, ``.dot``, ``.svg``) to
   ``out``.

It runs on one CPU thread (restored afterwards), so its numbers do not depend on the number of
cores, and it is seeded: the same ``seed`` gives the same model and the same table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch

from . import args as checks
from .outputs import publish, staging
from .specs import BUNDLED_MODELS

__all__ = ["add_parser", "run", "run_demo"]

#: the bundled model that the demo trains (its input shape labels the exported graph)
MODEL = BUNDLED_MODELS["digits-cnn"]

BERS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
TRIALS = 10
EPOCHS = 8
QUICK_BERS = (1e-3, 1e-1)
QUICK_TRIALS = 2


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``demo`` on ``subparsers``; the parsed namespace's ``func`` is :func:`run`."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="train a mixed-precision LSQ CNN on digits, sweep the BER, write table, plot, report",
        description="Train a small mixed-precision LSQ CNN on scikit-learn's digits for a few "
        "seconds, sweep the bit-error rate of its stored weights, print the table and write the "
        "results, a plot, a report, the weights and the faulty graph to --out.",
    )
    p.add_argument("--out", type=checks.output_folder, default="demo-out", metavar="DIR",
                   help="folder for the demo's files (default demo-out)")
    p.add_argument("--quick", action="store_true", help="tiny settings (for smoke tests)")
    p.add_argument("--seed", type=checks.non_negative_int, default=0,
                   help="seeds the model, the training and the fault trials (default 0)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``demo`` with parsed arguments; returns the exit status."""
    return run_demo(out=args.out, quick=args.quick, seed=args.seed)


def run_demo(out: str = "demo-out", *, quick: bool = False, seed: int = 0) -> int:
    """Run the demo, writing its files to ``out``; returns 0.

    :param quick: tiny settings for smoke tests (one short epoch, two BERs, two trials).
    :param seed: seeds the model's initial weights, the training order and the fault trials.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(Path(out), quick=quick, seed=seed)
    finally:
        torch.set_num_threads(threads)


def _run(out: Path, *, quick: bool, seed: int) -> int:
    from ..campaign import sweep
    from ..config import FaultConfig
    from ..graph.transform import transform
    from ..inspection.sites import sites
    from ..runtime.control import disabled
    from ..testing.digits import (
        accuracy,
        demo_bits_path,
        digits_batches,
        digits_tensors,
        lsq_digits_cnn,
        train_digits,
    )

    t_start = time.perf_counter()
    bits_path = demo_bits_path()
    print("fxfault demo: a mixed-precision LSQ CNN on scikit-learn's digits, under bit errors "
          "in its stored weights\n")
    model = lsq_digits_cnn(bits_path, seed=seed)
    x_test, y_test = digits_tensors("test")
    t0 = time.perf_counter()
    epochs = 1 if quick else EPOCHS
    losses = train_digits(model, epochs=epochs, seed=seed, limit=256 if quick else None)
    clean_acc = accuracy(model, x_test, y_test)
    print(f"Trained for {epochs} epoch{'s' if epochs > 1 else ''} in "
          f"{time.perf_counter() - t0:.1f} s (loss {losses[0]:.3f} -> {losses[-1]:.3f}); "
          f"top-1 accuracy on the {len(y_test)} held-out digits: {clean_acc:.2f} %\n")

    cfg = FaultConfig.from_search_json(bits_path, model, seed=seed)
    faulty = transform(model, cfg)
    print(f"Fault sites (widths: 8-bit first/last layers, the rest from {bits_path.name}):")
    print(f"  {'site':<8}{'bits':>5}{'codes':>12}{'weights':>9}")
    for s in sites(faulty):
        print(f"  {s.name:<8}{s.bits:>5}{f'[{s.qmin}, {s.qmax}]':>12}{s.numel:>9}")
    with torch.no_grad(), disabled(faulty):
        same = torch.equal(faulty.eval()(x_test), model(x_test))
    print(f"With faults disabled the same graph reproduces the clean outputs bit for bit: {same}\n")

    bers = QUICK_BERS if quick else BERS
    trials = QUICK_TRIALS if quick else TRIALS
    print(f"Sweeping {len(bers)} bit-error rates x {trials} trials (persistent faults: one "
          "fault map per trial for the whole test set) ...")
    t0 = time.perf_counter()
    result = sweep(model, cfg, digits_batches("test", 256), bers, trials, progress=True)
    dt = time.perf_counter() - t0
    n = len(result.records)
    print(f"\n{n} trials in {dt:.1f} s, baseline and transform included: {n / dt:.1f} trials/s, "
          f"{n * len(y_test) / dt:,.0f} images/s\n")
    print(result.table())
    print()

    widths = "/".join(str(s.bits) for s in sites(faulty))
    title = f"Digits CNN ({widths}-bit weights): top-1 accuracy under weight bit errors"
    setup = {
        "model": f"`fxfault.testing.digits.lsq_digits_cnn` trained {epochs} epochs "
                 f"(seed {seed}); weights in `model.pt`",
        "bit widths": f"`{bits_path.name}`, configuration 0 (per site: {widths})",
        "data": "`digits` (held-out split)",
        "command": f"`fxfault demo --out {out}" + (" --quick" if quick else "")
                   + (f" --seed {seed}" if seed else "") + "`",
    }
    with staging() as tmp:
        staged, notes = _write_files(tmp, model, faulty, result, setup, title)
        written = publish(staged, out)
    for p in written:
        print(f"wrote {p}")
    for note in notes:
        print(note)
    print(f"\nDemo finished in {time.perf_counter() - t_start:.1f} s (wall time).")
    return 0


def _write_files(
    folder: Path, model: torch.nn.Module, faulty: Any, result: Any, setup: dict[str, str], title: str
) -> tuple[list[Path], list[str]]:
    """Write the demo's files into ``folder`` (a staging folder); returns them, in the order
    they are reported, and the notes about files left out."""
    from ..campaign.report import write_outputs
    from ..campaign.store import write_results
    from ..errors import GraphvizError
    from ..inspection.export import export

    files = write_outputs(result, folder, setup=setup, title=title)
    torch.save(model.state_dict(), folder / "model.pt")
    written = [write_results(result, folder / "results.jsonl"), *files.written, folder / "model.pt"]
    # the faulty graph itself: readable code, DOT, and a picture when Graphviz is installed
    shapes = torch.zeros(MODEL.input_shape)
    written += [export(faulty, folder / "faulty_graph.py"),
                export(faulty, folder / "faulty_graph.dot", example_inputs=shapes)]
    notes = list(files.notes)
    try:
        written.append(export(faulty, folder / "faulty_graph.svg", example_inputs=shapes))
    except GraphvizError as e:
        notes.append(f"faulty_graph.svg not written: {e}")
    return written, notes
