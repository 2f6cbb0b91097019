"""The validators of the command line's arguments, shared by every subcommand.

Each one is an ``argparse`` ``type=``: it takes the text of one argument and returns its value,
or raises :class:`argparse.ArgumentTypeError` with a message that says what is wrong and how to
fix it (argparse prefixes it with the option: ``argument --bers: ...``).

Example::

    >>> rate_list("1e-7, 1e-6,,1e-5")
    [1e-07, 1e-06, 1e-05]
    >>> shape("1x3x32x32")
    (1, 3, 32, 32)
"""

from __future__ import annotations

import os
from argparse import ArgumentTypeError
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = [
    "device",
    "input_file",
    "metric",
    "non_negative_int",
    "output_file",
    "output_folder",
    "positive_int",
    "rate",
    "rate_list",
    "shape",
]


# ---------------------------------------------------------------------------------------------
# numbers
# ---------------------------------------------------------------------------------------------
def _rate(text: str, hint: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ArgumentTypeError(f"{text.strip()!r} is not a number; {hint}") from None
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise ArgumentTypeError(f"the ber must be a number in [0, 1] (a bit-error rate), got {text.strip()}")
    return value


def rate(text: str) -> float:
    """One bit-error rate: a number in [0, 1]."""
    return _rate(text, "give a bit-error rate such as 1e-6")


def rate_list(text: str) -> list[float]:
    """Bit-error rates separated by commas: ``"1e-7,1e-6"`` -> ``[1e-07, 1e-06]``."""
    hint = "give bit-error rates separated by commas, e.g. 1e-6,1e-5"
    values = [_rate(part, hint) for part in text.split(",") if part.strip()]
    if not values:
        raise ArgumentTypeError(f"no bit-error rate given; {hint}")
    return values


def _integer(text: str, minimum: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < minimum:
        raise ArgumentTypeError(f"expected {what}, got {value}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (trials, batch sizes)."""
    return _integer(text, 1, "a positive integer (1 or more)")


def non_negative_int(text: str) -> int:
    """An integer >= 0 (seeds, hops)."""
    return _integer(text, 0, "a whole number >= 0")


def shape(text: str) -> tuple[int, ...]:
    """Tensor sizes: ``"1,3,32,32"`` or ``"1x3x32x32"`` -> ``(1, 3, 32, 32)``."""
    try:
        dims = tuple(int(p) for p in text.replace("x", ",").split(",") if p.strip())
    except ValueError:
        raise ArgumentTypeError(f"expected sizes such as 1,3,32,32, got {text!r}") from None
    if not dims or any(d <= 0 for d in dims):
        raise ArgumentTypeError(f"expected positive sizes such as 1,3,32,32, got {text!r}")
    return dims


# ---------------------------------------------------------------------------------------------
# paths
# ---------------------------------------------------------------------------------------------
def _check_folder_can_hold(folder: Path, target: str) -> None:
    """Raise unless ``folder`` is, or can be created as, a folder this process can write into."""
    probe = folder
    while not probe.exists():
        if probe.is_symlink():
            raise ArgumentTypeError(
                f"{str(probe)!r} is a broken symbolic link, so {target!r} cannot be created; "
                "remove the link or choose another path"
            )
        if probe.parent == probe:
            return
        probe = probe.parent
    if not probe.is_dir():
        raise ArgumentTypeError(
            f"{str(probe)!r} is a file, not a folder, so {target!r} cannot be created there; "
            "choose another path"
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ArgumentTypeError(
            f"cannot write into the folder {str(probe)!r} (permission denied), so {target!r} "
            "cannot be created; choose another path"
        )


def output_folder(text: str) -> str:
    """A folder to write results into: created if missing, so no part of it may be a file."""
    if not text.strip():
        raise ArgumentTypeError("the output folder is empty; give a folder name such as --out results")
    folder = Path(text)
    if folder.exists() and not folder.is_dir():
        raise ArgumentTypeError(f"{text!r} is a file, not a folder; give a folder for the output files")
    _check_folder_can_hold(folder, text)
    return text


def output_file(suffixes: Sequence[str]) -> Callable[[str], str]:
    """A validator of one output file whose suffix is one of ``suffixes``."""

    def check(text: str) -> str:
        if not text.strip():
            raise ArgumentTypeError(f"the output path is empty; give a file name such as graph{suffixes[0]}")
        path = Path(text)
        if path.is_dir():
            raise ArgumentTypeError(
                f"{text!r} is a folder; give a file name such as {path / ('graph' + suffixes[0])}"
            )
        if path.suffix.lower() not in suffixes:
            raise ArgumentTypeError(
                f"{text!r}: unknown suffix {path.suffix!r}; use one of {', '.join(suffixes)}"
            )
        _check_folder_can_hold(path.parent, text)
        return text

    check.__name__ = "output_file"
    return check


def input_file(text: str) -> str:
    """An existing, readable file."""
    path = Path(text)
    if not text.strip():
        raise ArgumentTypeError("the file name is empty; give the path of an existing file")
    if path.is_dir():
        raise ArgumentTypeError(f"{text!r} is a folder; give the path of a file")
    if not path.exists():
        raise ArgumentTypeError(f"no file {text!r}; check the path")
    if not os.access(path, os.R_OK):
        raise ArgumentTypeError(f"cannot read {text!r} (permission denied)")
    return text


# ---------------------------------------------------------------------------------------------
# devices and metrics
# ---------------------------------------------------------------------------------------------
def _available(kind: str) -> tuple[bool, int]:
    """Whether devices of ``kind`` are usable here, and how many there are."""
    import torch

    if kind == "cuda":
        return torch.cuda.is_available(), torch.cuda.device_count()
    if kind == "xpu" and hasattr(torch, "xpu"):
        return torch.xpu.is_available(), torch.xpu.device_count()
    if kind == "mps":
        return torch.backends.mps.is_available(), 1
    return False, 0


def device(text: str) -> str:
    """A torch device that exists here: ``cpu``, ``cuda``, ``cuda:1``, ``mps``, ``xpu``."""
    import torch

    hint = "use --device cpu, or leave --device out to run where the model is"
    try:
        dev = torch.device(text)
    except (RuntimeError, TypeError, ValueError):
        raise ArgumentTypeError(f"{text!r} is not a device such as cpu, cuda or cuda:1; {hint}") from None
    if dev.type == "cpu":
        return text
    if dev.type not in ("cuda", "xpu", "mps"):
        raise ArgumentTypeError(f"{text!r}: fxfault cannot run on {dev.type!r} devices; {hint}")
    usable, count = _available(dev.type)
    if not usable:
        raise ArgumentTypeError(f"{text!r}: no {dev.type} device is available on this machine; {hint}")
    if dev.index is not None and dev.index >= count:
        raise ArgumentTypeError(
            f"{text!r}: this machine has {count} {dev.type} device(s), numbered 0..{count - 1}"
        )
    return text


def metric(text: str) -> str:
    """A built-in metric name, or ``package.module:callable`` (imported when the sweep runs)."""
    from ..campaign.metrics import BUILTIN

    if text in BUILTIN or (":" in text and all(text.partition(":")[::2])):
        return text
    raise ArgumentTypeError(
        f"unknown metric {text!r}; use {', '.join(sorted(BUILTIN))} or package.module:callable "
        "returning (sum, count)"
    )
