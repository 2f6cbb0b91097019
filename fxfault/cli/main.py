"""Command line: ``fxfault demo | inspect | sweep``. Thin: parses arguments, calls the library."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(out=args.out, quick=args.quick, seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fxfault", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser(
        "demo",
        help="train a mixed-precision LSQ CNN on digits, sweep the BER, write table, plot, report",
    )
    d.add_argument("--out", default="demo-out", help="folder for the demo's files")
    d.add_argument("--quick", action="store_true", help="tiny settings (for smoke tests)")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=_demo)
    from . import inspect, sweep

    inspect.add_parser(sub)
    sweep.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
