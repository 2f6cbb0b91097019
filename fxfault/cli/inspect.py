"""``fxfault inspect MODEL``: transform a model, print its fault sites, export its graph.

Example::

    $ fxfault inspect demo-cnn --ber 1e-3 --out cnn.svg
    $ fxfault inspect lsq-resnet18 --out near.svg --neighbourhood 2
    $ fxfault inspect mypkg.models:build --config cfg.json --out graph.json

:func:`add_parser` registers it on ``fxfault``'s command line (:mod:`fxfault.cli.main`), whose
``main`` calls :func:`run` with the parsed arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from . import args as checks
from .specs import BUNDLED_MODELS, bundled_names
from .usage import UsageError, user_input

__all__ = ["add_parser", "run"]

_DESCRIPTION = (
    "Transform MODEL with fxfault, print one row per fault site (bits, rates, weights, bits "
    "exposed, expected faults per forward pass) and, with --out, export the faulty graph. "
    "The format follows the suffix: .svg .png .pdf (need Graphviz 'dot'), .dot, .json, "
    ".graphml or .py."
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``inspect`` on ``subparsers`` (from ``parser.add_subparsers()``); the parsed
    namespace's ``func`` is :func:`run`."""
    from ..inspection.export import SUFFIXES

    p: argparse.ArgumentParser = subparsers.add_parser(
        "inspect",
        help="print the fault sites of a model and export its faulty graph",
        description=_DESCRIPTION,
    )
    p.add_argument("model", metavar="MODEL",
                   help=f"a bundled model ({bundled_names()}) or package.module:factory")
    p.add_argument("--config", type=checks.input_file, metavar="CFG.json", help="a FaultConfig JSON file")
    p.add_argument("--ber", type=checks.rate, metavar="RATE", help="bit-error rate (overrides the config's)")
    p.add_argument("--seed", type=checks.non_negative_int, help="base seed (overrides the config's)")
    p.add_argument("--out", type=checks.output_file(SUFFIXES), metavar="PATH",
                   help="export the faulty graph here (.svg .png .pdf .dot .json .graphml .py); "
                        "default: print only")
    p.add_argument("--neighbourhood", "--neighborhood", dest="neighbourhood",
                   type=checks.non_negative_int, metavar="K",
                   help="export only the nodes within K hops of a fault node (for big models)")
    p.add_argument("--input-shape", type=checks.shape, metavar="N,C,H,W",
                   help="run one clean forward on zeros of this shape to put shapes and dtypes in "
                        "the export (known for the bundled models)")
    p.add_argument("--diff", action="store_true", help="also print the nodes inserted per site")
    p.add_argument("--code", action="store_true", help="also print the generated forward code")
    p.set_defaults(func=run)
    return p


def _check_graph_options(args: argparse.Namespace) -> str:
    """The export's suffix ('' without --out); refuses options that only a graph export takes."""
    suffix = Path(args.out).suffix.lower() if args.out else ""
    for option, value in (("--neighbourhood", args.neighbourhood), ("--input-shape", args.input_shape)):
        if value is not None and suffix in ("", ".py"):
            raise UsageError(
                f"{option} applies to the exported graph; give --out with a graph format "
                "(.svg .png .pdf .dot .json .graphml)"
            )
    return suffix


def run(args: argparse.Namespace) -> int:
    """Run ``inspect`` with parsed arguments; returns the exit status."""
    import torch

    from ..config import load_config
    from ..graph.transform import transform
    from ..inspection.diff import diff
    from ..inspection.sites import summary
    from .outputs import export_graph
    from .specs import load_model, try_forward

    suffix = _check_graph_options(args)
    with user_input("MODEL", args.model):
        model = load_model(args.model)
    with user_input("--config", args.config):
        cfg = load_config(args.config, ber=args.ber, seed=args.seed)
    with user_input("MODEL", args.model):
        faulty = transform(model, cfg)
    bundled = BUNDLED_MODELS.get(args.model)
    shape = args.input_shape or (bundled.input_shape if bundled else None)
    inputs = torch.zeros(shape) if shape is not None and suffix not in ("", ".py") else None
    if inputs is not None and args.input_shape is not None:
        _, why = try_forward(faulty, inputs)
        if why is not None:
            raise UsageError(f"--input-shape {','.join(map(str, args.input_shape))}: the model "
                             f"{args.model!r} cannot take zeros of this shape ({why})")

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
    path = export_graph(faulty, args.out, example_inputs=inputs, neighbourhood=args.neighbourhood)
    stdout.write(f"\nwrote {path}\n")
    return 0
