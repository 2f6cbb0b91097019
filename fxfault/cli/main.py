"""Command line: ``fxfault demo | inspect | sweep``, its one entry point.

Each subcommand module registers its arguments (``add_parser(subparsers)``) and runs
(``run(args) -> int``); :func:`main` parses, runs, and turns every mistake of the user into one
line on stderr with exit status 2:

* 0 — done;
* 1 — a failure that is not a usage mistake (Graphviz missing, a file that cannot be written),
  as one line; an unexpected error keeps Python's traceback (and exit status 1);
* 2 — a usage mistake: ``fxfault <command>: error: <what is wrong and how to fix it>``;
* 130 — interrupted (Ctrl-C).

``--traceback`` (on every subcommand) shows the traceback of any error, for a bug report.

Example::

    >>> main(["inspect", "demo-cnn", "--ber", "2"])
    2
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from .._version import __version__
from ..errors import FxFaultError, GraphvizError
from .usage import UsageError, is_user_error, one_line

__all__ = ["build_parser", "main"]

_DESCRIPTION = (
    "Bit-error fault injection for quantized PyTorch models. 'fxfault demo' runs the bundled "
    "demo; 'fxfault inspect' prints a model's fault sites and exports its faulty graph; "
    "'fxfault sweep' measures a metric against the bit-error rate (resumable, torchrun-aware)."
)


class _Parser(argparse.ArgumentParser):
    """An argument parser that raises a :class:`UsageError` instead of printing and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')", prog=self.prog)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``fxfault`` with every subcommand registered."""
    from . import demo, inspect, sweep

    p = _Parser(prog="fxfault", description=_DESCRIPTION)
    p.add_argument("--version", action="version", version=f"fxfault {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (demo, inspect, sweep):
        module.add_parser(sub)
    for command in sub.choices.values():
        command.add_argument("--traceback", action="store_true",
                             help="on an error, show Python's traceback (for a bug report)")
    return p


def _parse(words: list[str]) -> argparse.Namespace:
    """The parsed ``words``; words that no option takes are blamed on the subcommand."""
    args, extra = build_parser().parse_known_args(words)
    if extra:
        prog = f"fxfault {args.command}"
        raise UsageError(f"unrecognized arguments: {' '.join(extra)} (see '{prog} --help')", prog=prog)
    return args


def _rank_note() -> str:
    """`` (rank N)`` under torchrun with more than one process, else empty."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return ""
    return f" (rank {os.environ.get('RANK', '?')})" if world > 1 else ""


def _status(error: Exception) -> int | None:
    """The exit status of an error reported in one line; ``None`` keeps the traceback."""
    if isinstance(error, UsageError) or (isinstance(error, FxFaultError) and is_user_error(error)):
        return 2
    if isinstance(error, (GraphvizError, OSError)):
        return 1
    return None


def _report(prog: str, message: str, status: int) -> int:
    sys.stdout.flush()
    sys.stderr.write(f"{prog}: error: {one_line(message)}\n")
    sys.stderr.flush()
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``fxfault`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parse(words)
    except UsageError as e:
        return _report(f"{e.prog or 'fxfault'}{_rank_note()}", str(e), 2)
    except SystemExit as e:  # --help and --version print and exit 0
        return e.code if isinstance(e.code, int) else 0
    args.argv = words
    prog = f"fxfault {args.command}{_rank_note()}"
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return _report(prog, "interrupted", 130)
    except Exception as e:
        status = _status(e)
        if status is None or args.traceback:
            raise
        return _report(prog, str(e), status)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
