"""``fxfault inspect MODEL``: transform a model, print its fault sites, export its graph.

Example::

    $ fxfault inspect demo-cnn --ber 1e-3 --out cnn.svg
    $ fxfault inspect lsq-resnet18 --out near.svg --neighbourhood 2
    $ python -m fxfault.inspect_cli mypkg.models:build --config cfg.json --out graph.json

Wire it into a parent parser with :func:`add_parser`; :func:`main` runs it on its own.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "build_parser", "main", "run"]

#: input shapes of the bundled models (for shapes and dtypes in the export)
_INPUT_SHAPES = {"demo-cnn": (1, 1, 8, 8), "lsq-resnet18": (1, 3, 32, 32)}

_DESCRIPTION = (
    "Transform MODEL with fxfault, print one row per fault site (bits, rates, weights, bits "
    "exposed, expected faults per forward pass) and, with --out, export the faulty graph. "
    "The format follows the suffix: .svg .png .pdf (need Graphviz 'dot'), .dot, .json, "
    ".graphml or .py."
)


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(p) for p in text.replace("x", ",").split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes such as 1,3,32,32, got {text!r}") from None
    if not dims or any(d <= 0 for d in dims):
        raise argparse.ArgumentTypeError(f"expected positive sizes such as 1,3,32,32, got {text!r}")
    return dims


def _hops(text: str) -> int:
    try:
        k = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of hops, got {text!r}") from None
    if k < 0:
        raise argparse.ArgumentTypeError(f"the number of hops must be >= 0, got {k}")
    return k


def configure(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``inspect`` arguments to ``p``."""
    p.add_argument(
        "model",
        metavar="MODEL",
        help="a bundled model (lsq-resnet18, demo-cnn) or package.module:factory",
    )
    p.add_argument("--config", metavar="CFG.json", help="a FaultConfig JSON file")
    p.add_argument("--ber", metavar="RATE", help="bit-error rate (overrides the config's)")
    p.add_argument("--seed", type=int, help="base seed (overrides the config's)")
    p.add_argument(
        "--out",
        metavar="PATH",
        help="export the faulty graph here (.svg .png .pdf .dot .json .graphml .py); "
        "default: print only",
    )
    p.add_argument(
        "--neighbourhood",
        "--neighborhood",
        dest="neighbourhood",
        type=_hops,
        metavar="K",
        help="export only the nodes within K hops of a fault node (for big models)",
    )
    p.add_argument(
        "--input-shape",
        type=_shape,
        metavar="N,C,H,W",
        help="run one clean forward on zeros of this shape to put shapes and dtypes in the "
        "export (known for the bundled models)",
    )
    p.add_argument("--diff", action="store_true", help="also print the nodes inserted per site")
    p.add_argument("--code", action="store_true", help="also print the generated forward code")
    p.set_defaults(func=run)
    return p


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``inspect`` on ``subparsers`` (from ``parser.add_subparsers()``); the parsed
    namespace's ``func`` is :func:`run`."""
    p = subparsers.add_parser(
        "inspect",
        help="print the fault sites of a model and export its faulty graph",
        description=_DESCRIPTION,
    )
    return configure(p)


def build_parser() -> argparse.ArgumentParser:
    """A standalone parser for ``fxfault inspect``."""
    return configure(argparse.ArgumentParser(prog="fxfault inspect", description=_DESCRIPTION))


def run(args: argparse.Namespace) -> int:
    """Run ``inspect`` with parsed arguments; returns the exit status."""
    import torch

    from ..config import load_config
    from ..errors import FxFaultError
    from ..graph.transform import transform
    from ..inspection.diff import diff
    from ..inspection.export import SUFFIXES, export
    from ..inspection.sites import summary
    from .specs import load_model

    out_suffix = Path(args.out).suffix.lower() if args.out else ""
    if args.out and out_suffix not in SUFFIXES:
        return _fail(f"--out {args.out}: unknown suffix; use one of {', '.join(SUFFIXES)}")
    if args.neighbourhood is not None and out_suffix in ("", ".py"):
        return _fail("--neighbourhood applies to the exported graph; give --out with a graph format")
    try:
        model = load_model(args.model)
        cfg = load_config(args.config, ber=args.ber, seed=args.seed)
        faulty = transform(model, cfg)
    except (FxFaultError, ValueError, TypeError, OSError) as e:
        return _fail(str(e))
    table = summary(faulty)
    stdout = sys.stdout
    stdout.write(f"{args.model}: {type(model).__name__}, {len(table.rows)} fault sites\n\n")
    stdout.write(table.table() + "\n")
    if args.diff:
        stdout.write("\n" + diff(model, faulty).text() + "\n")
    if args.code:
        stdout.write("\n" + faulty.code.strip("\n") + "\n")
    if not args.out:
        return 0
    shape = args.input_shape or _INPUT_SHAPES.get(args.model)
    inputs = torch.zeros(shape) if shape is not None and out_suffix != ".py" else None
    try:
        path = export(faulty, args.out, example_inputs=inputs, neighbourhood=args.neighbourhood)
    except (FxFaultError, ValueError, TypeError, OSError) as e:
        return _fail(str(e), status=1)
    stdout.write(f"\nwrote {path}\n")
    return 0


def _fail(message: str, status: int = 2) -> int:
    sys.stderr.write(f"fxfault inspect: error: {message}\n")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fxfault.inspect_cli MODEL ...``; returns the exit status."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
