"""``fxfault sweep MODEL --data SPEC --bers ... --trials N --out DIR``: a campaign.

Example::

    $ fxfault sweep demo-cnn --data digits --bers 1e-4,1e-3 --trials 5 --out sweep-out
    $ torchrun --nproc_per_node=4 -m fxfault sweep ...          # pairs shared by 4 ranks

It writes ``results.jsonl`` (resumable), ``summary.csv``, ``plot.png`` and ``report.md``
into ``--out`` and prints the table. :func:`add_parser` registers it on ``fxfault``'s command
line (:mod:`fxfault.cli.main`), whose ``main`` calls :func:`run` with the parsed arguments.
"""

from __future__ import annotations

import argparse
import os
import shlex
import time
from pathlib import Path
from typing import Any

from . import args as checks
from .specs import bundled_names
from .usage import UsageError, user_input

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``sweep`` on ``subparsers``; the parsed namespace's ``func`` is :func:`run`."""
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
                   help=f"a bundled model ({bundled_names()}), package.module:factory, "
                        "or a torch.save'd model file (.pt/.pth, see --trust-pickle)")
    p.add_argument("--data", required=True, metavar="SPEC",
                   help="'digits' (scikit-learn's digits, held-out split) or package.module:factory "
                        "returning a list or DataLoader of (inputs, targets) batches")
    p.add_argument("--bers", required=True, type=checks.rate_list, metavar="LIST",
                   help="bit-error rates separated by commas, e.g. 1e-7,1e-6,1e-5")
    p.add_argument("--trials", type=checks.positive_int, default=10, help="trials per BER (default 10)")
    p.add_argument("--out", required=True, type=checks.output_folder, metavar="DIR",
                   help="folder for the result files")
    p.add_argument("--config", type=checks.input_file, metavar="JSON",
                   help="a FaultConfig JSON file (its ber is swept)")
    p.add_argument("--search-json", type=checks.input_file, metavar="JSON",
                   help="bit widths from a mixed-precision search output (FaultConfig.from_search_json)")
    p.add_argument("--search-index", type=int, default=None, metavar="N",
                   help="which configuration of --search-json (default 0)")
    p.add_argument("--weights", type=checks.input_file, metavar="FILE",
                   help="a state_dict to load into MODEL (read safely, with weights_only=True)")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow a MODEL file that holds a pickled nn.Module (runs code from the file)")
    p.add_argument("--metric", type=checks.metric, default="top1",
                   help="top1 (default), loss, or package.module:callable -> (sum, count)")
    p.add_argument("--mode", choices=("persistent", "transient"), default="persistent",
                   help="persistent (default): one fault map per trial; transient: new faults every pass")
    p.add_argument("--seed", type=checks.non_negative_int, default=None,
                   help="base seed (default: the config's seed)")
    p.add_argument("--device", type=checks.device, default=None,
                   help="cpu, cuda, cuda:1, ... (default: the model's)")
    p.add_argument("--batch-size", type=checks.positive_int, default=None,
                   help="batch size of 'digits' (default 256) or of a factory taking batch_size")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no table")
    p.set_defaults(func=run)
    return p


def _metric(text: str) -> Any:
    """The metric for :func:`fxfault.campaign.sweep`: a built-in name or an imported callable."""
    from ..campaign.metrics import BUILTIN
    from .specs import import_object

    if text in BUILTIN:
        return text
    with user_input("--metric", text):
        fn = import_object(text, "metric")
        if not callable(fn):
            raise TypeError(f"the metric {text!r} is an object of type {type(fn).__name__}, not a callable")
    return fn


def _config(args: argparse.Namespace, model: Any) -> Any:
    from ..config import FaultConfig, load_config

    with user_input("--config", args.config):
        cfg = load_config(args.config)
    if args.search_json is None:
        if args.search_index is not None:
            raise UsageError("--search-index chooses a configuration of --search-json; give --search-json too")
        return cfg
    if cfg.bits is not None or cfg.act_bits is not None:
        raise UsageError(f"--config {args.config} sets bits/act_bits and --search-json sets them too; "
                         "give one of them")
    fields = {k: v for k, v in cfg.to_dict().items() if k not in ("bits", "act_bits", "version")}
    with user_input("--search-json", args.search_json):
        return FaultConfig.from_search_json(args.search_json, model, args.search_index or 0, **fields)


def _check_data_fits(args: argparse.Namespace, model: Any, cfg: Any, example: tuple[Any, Any],
                     metric: Any) -> None:
    """Run the first example of --data through ``model`` (transformed, faults off) and, when it
    is the user's callable, ``metric``. A model that cannot take the inputs (a wrong shape or
    dtype), or a metric that cannot score the outputs, is a usage error naming the option,
    instead of a traceback from inside the sweep."""
    from ..graph.transform import transform
    from .specs import try_forward

    inputs, targets = example
    with user_input():  # the sweep transforms the model too, and would say the same
        faulty = transform(model, cfg)
    outputs, why = try_forward(faulty, inputs)
    if why is not None:
        shapes = ", ".join(str(tuple(x.shape)) for x in (inputs if isinstance(inputs, tuple) else (inputs,)))
        raise UsageError(f"--data {args.data}: the model {args.model!r} cannot take its inputs "
                         f"(first example: {shapes}): {why}")
    if isinstance(metric, str):
        return  # a built-in metric: the sweep checks the targets itself
    device = getattr(outputs, "device", None)
    try:
        metric(outputs, targets if device is None else targets.to(device))
    except (RuntimeError, ValueError, TypeError, IndexError) as e:
        raise UsageError(f"--metric {args.metric}: calling it as metric(outputs, targets) on the "
                         f"first example of --data failed: {type(e).__name__}: {e}") from e


def run(args: argparse.Namespace) -> int:
    """Run ``sweep`` with parsed arguments; returns the exit status."""
    import torch

    from ..campaign import sweep
    from ..campaign.distributed import env_world_size
    from .data import first_example, load_data
    from .specs import load_model_arg, load_weights

    t0 = time.perf_counter()
    with user_input("WORLD_SIZE"):
        world = env_world_size()
    if world > 1 and "OMP_NUM_THREADS" not in os.environ and args.device in (None, "cpu"):
        torch.set_num_threads(1)  # N processes on N cores; torchrun sets OMP_NUM_THREADS=1 too
    with user_input("MODEL", args.model):
        model = load_model_arg(args.model, trust_pickle=args.trust_pickle)
    if args.weights is not None:
        with user_input("--weights", args.weights):
            load_weights(model, args.weights)
    with user_input("--data", args.data):
        data = load_data(args.data, args.batch_size)
        example = first_example(data)
    cfg = _config(args, model)
    metric = _metric(args.metric)
    _check_data_fits(args, model, cfg, example, metric)
    with user_input(os_errors=False):  # the sweep's own checks: config, data, results folder
        result = sweep(model, cfg, data, args.bers, args.trials, metric=metric, device=args.device,
                       out=args.out, mode=args.mode, progress=not args.quiet, seed=args.seed)
    if os.environ.get("RANK", "0") != "0":
        return 0
    _write_outputs(args, result, world)
    if not args.quiet:
        print(f"sweep finished in {time.perf_counter() - t0:.1f} s")
    return 0


def _write_outputs(args: argparse.Namespace, result: Any, world: int) -> None:
    """Rank 0: write the summary, plot and report into --out (atomically) and print the table."""
    from ..campaign.report import write_outputs
    from .outputs import publish, staging

    words = getattr(args, "argv", None) or []
    setup = {
        "model": f"`{args.model}`" + (f" with weights `{args.weights}`" if args.weights else ""),
        "data": f"`{args.data}`",
        "command": "`fxfault " + " ".join(shlex.quote(a) for a in words) + "`",
        "processes": str(world),
    }
    with staging() as tmp:
        files = write_outputs(result, tmp, setup=setup)
        written = publish(files.written, args.out)
    if not args.quiet:
        print(result.table())
        print()
    for path in [Path(args.out) / "results.jsonl", *written]:
        print(f"wrote {path}")
    for note in files.notes:
        print(note)
