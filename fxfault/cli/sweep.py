"""Command line of campaigns: ``sweep MODEL --data SPEC --bers ... --trials N --out DIR``.

Registered into ``fxfault``'s command line by :func:`add_parser`; also runs on its own::

    python -m fxfault.campaign_cli sweep demo-cnn --data digits --bers 1e-4,1e-3 --trials 5 --out sweep-out
    torchrun --nproc_per_node=4 -m fxfault sweep ...                  # pairs shared by 4 ranks

It writes ``results.jsonl`` (resumable), ``summary.csv``, ``plot.png`` and ``report.md``
into ``--out`` and prints the table.
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import FxFaultError

__all__ = ["add_parser", "build_parser", "load_model_arg", "main", "parse_bers", "run_sweep_command"]

log = logging.getLogger(__name__)

MODEL_SUFFIXES = (".pt", ".pth")


def parse_bers(text: str) -> list[float]:
    """``"1e-7,1e-6,1e-5"`` -> ``[1e-07, 1e-06, 1e-05]``."""
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{part!r} is not a number; give bit-error rates separated by commas, e.g. 1e-6,1e-5"
            ) from None
        if not 0.0 <= value <= 1.0:
            raise argparse.ArgumentTypeError(f"a bit-error rate must lie in [0, 1], got {part}")
        out.append(value)
    if not out:
        raise argparse.ArgumentTypeError("give at least one bit-error rate, e.g. --bers 1e-6,1e-5")
    return out


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``sweep`` subcommand on ``subparsers`` (from ``add_subparsers()``)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "sweep",
        help="a metric against the bit-error rate, over fault trials (resumable; torchrun-aware)",
        description=(
            "Measure a metric at each bit-error rate over independent fault trials. Finished "
            "trials are appended to OUT/results.jsonl as they complete; running the same command "
            "again resumes. Under torchrun the (BER, trial) pairs are shared among the ranks."
        ),
    )
    p.add_argument("model", metavar="MODEL",
                   help="a bundled model (demo-cnn, lsq-resnet18), package.module:factory, "
                        "or a torch.save'd model file (.pt/.pth, see --trust-pickle)")
    p.add_argument("--data", required=True, metavar="SPEC",
                   help="'digits' (scikit-learn's digits, held-out split) or package.module:factory "
                        "returning a list or DataLoader of (inputs, targets) batches")
    p.add_argument("--bers", required=True, type=parse_bers, metavar="LIST",
                   help="bit-error rates separated by commas, e.g. 1e-7,1e-6,1e-5")
    p.add_argument("--trials", type=_positive_int, default=10, help="trials per BER (default 10)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the result files")
    p.add_argument("--config", metavar="JSON", help="a FaultConfig JSON file (its ber is swept)")
    p.add_argument("--search-json", metavar="JSON",
                   help="bit widths from a mixed-precision search output (FaultConfig.from_search_json)")
    p.add_argument("--search-index", type=int, default=0, metavar="N",
                   help="which configuration of --search-json (default 0)")
    p.add_argument("--weights", metavar="FILE",
                   help="a state_dict to load into MODEL (read safely, with weights_only=True)")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow a MODEL file that holds a pickled nn.Module (runs code from the file)")
    p.add_argument("--metric", default="top1",
                   help="top1 (default), loss, or package.module:callable -> (sum, count)")
    p.add_argument("--mode", choices=("persistent", "transient"), default="persistent",
                   help="persistent (default): one fault map per trial; transient: new faults every pass")
    p.add_argument("--seed", type=int, default=None, help="base seed (default: the config's seed)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: the model's)")
    p.add_argument("--batch-size", type=_positive_int, default=None,
                   help="batch size of 'digits' (default 256) or of a factory taking batch_size")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no table")
    p.set_defaults(func=run_sweep_command)
    return p


def load_model_arg(spec: str, *, weights: str | None = None, trust_pickle: bool = False) -> nn.Module:
    """The model of the command line: a spec (:func:`fxfault.specs.load_model`) or a file.

    A file is read with ``torch.load(weights_only=True)``; one holding a whole pickled
    ``nn.Module`` (which runs code when loaded) needs ``trust_pickle``. ``weights`` is a
    state dict loaded (strictly) into the model.
    """
    from .specs import load_model

    path = Path(spec)
    if path.suffix in MODEL_SUFFIXES or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"no model file {spec!r}")
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            if not trust_pickle:
                raise ValueError(
                    f"{spec!r} holds a pickled Python object (a whole nn.Module), and loading it "
                    "runs code from the file. If you trust the file, add --trust-pickle. Safer: "
                    "save model.state_dict() and give the architecture as MODEL with --weights FILE."
                ) from e
            obj = torch.load(path, map_location="cpu", weights_only=False)
        if isinstance(obj, Mapping):
            raise ValueError(
                f"{spec!r} holds a state dict, not a model; give the architecture as MODEL "
                "(a bundled name or package.module:factory) and this file as --weights"
            )
        if not isinstance(obj, nn.Module):
            raise TypeError(f"{spec!r} holds a {type(obj).__name__}, not an nn.Module")
        model = obj
    else:
        model = load_model(spec)
    if weights is not None:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        if not isinstance(state, Mapping):
            raise TypeError(f"--weights {weights!r} holds a {type(state).__name__}, not a state dict")
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise ValueError(f"--weights {weights!r} does not fit the model {spec!r}: {e}") from e
    return model


def _metric_arg(text: str) -> Any:
    if text in ("top1", "loss"):
        return text
    from .data import import_object

    fn = import_object(text, "metric")
    if not callable(fn):
        raise TypeError(f"the metric {text!r} is a {type(fn).__name__}, not a callable")
    return fn


def _config_arg(args: argparse.Namespace, model: nn.Module) -> Any:
    from ..config import FaultConfig, load_config

    cfg = load_config(args.config)
    if args.search_json is None:
        return cfg
    fields = {k: v for k, v in cfg.to_dict().items() if k not in ("bits", "act_bits", "version")}
    if cfg.bits is not None or cfg.act_bits is not None:
        raise ValueError("--config sets bits/act_bits and --search-json sets them too; give one of them")
    return FaultConfig.from_search_json(args.search_json, model, args.search_index, **fields)


def _is_main_rank() -> bool:
    return os.environ.get("RANK", "0") == "0"


def run_sweep_command(args: argparse.Namespace) -> int:
    """Run ``sweep`` for parsed ``args``; returns the exit status (2 for a usage error)."""
    from ..campaign.distributed import env_world_size

    try:
        return _run_sweep(args)
    except (FxFaultError, ValueError, TypeError, FileNotFoundError, ImportError) as e:
        log.debug("sweep failed", exc_info=True)
        rank = f" (rank {os.environ.get('RANK')})" if env_world_size() > 1 else ""
        print(f"fxfault sweep{rank}: error: {e}", file=sys.stderr)
        return 2


def _run_sweep(args: argparse.Namespace) -> int:
    from ..campaign import sweep
    from ..campaign.distributed import env_world_size
    from ..campaign.report import write_outputs
    from .data import load_data

    t0 = time.perf_counter()
    if env_world_size() > 1 and "OMP_NUM_THREADS" not in os.environ and args.device in (None, "cpu"):
        torch.set_num_threads(1)  # N processes on N cores; torchrun sets OMP_NUM_THREADS=1 too
    model = load_model_arg(args.model, weights=args.weights, trust_pickle=args.trust_pickle)
    data = load_data(args.data, args.batch_size)
    cfg = _config_arg(args, model)
    result = sweep(model, cfg, data, args.bers, args.trials, metric=_metric_arg(args.metric),
                   device=args.device, out=args.out, mode=args.mode, progress=not args.quiet,
                   seed=args.seed)
    if not _is_main_rank():
        return 0
    argv = getattr(args, "argv", None)
    argv = sys.argv[1:] if argv is None else argv
    setup = {
        "model": f"`{args.model}`" + (f" with weights `{args.weights}`" if args.weights else ""),
        "data": f"`{args.data}`",
        "command": "`fxfault " + " ".join(shlex.quote(a) for a in argv) + "`",
        "processes": str(env_world_size()),
    }
    files = write_outputs(result, args.out, setup=setup)
    if not args.quiet:
        print(result.table())
        print()
    for path in [Path(args.out) / "results.jsonl", *files.written]:
        print(f"wrote {path}")
    for note in files.notes:
        print(note)
    if not args.quiet:
        print(f"sweep finished in {time.perf_counter() - t0:.1f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The standalone parser (``python -m fxfault.campaign_cli sweep ...``)."""
    p = argparse.ArgumentParser(prog="fxfault", description="fxfault campaigns")
    add_parser(p.add_subparsers(dest="command", required=True))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
