"""How the command line blames the user: a mistake becomes one line on stderr and exit status 2.

A :class:`UsageError` is what every subcommand raises for a mistake in what it was asked to do;
:func:`fxfault.cli.main.main` prints it as ``fxfault <command>: error: <message>`` and returns 2.
:func:`user_input` turns the errors raised while one option is being read (a config file, a
model spec, a data factory) into a :class:`UsageError` that names the option.

Example::

    >>> try:
    ...     with user_input("--trials", "ten"):
    ...         raise ValueError("expected a number")
    ... except UsageError as e:
    ...     print(e)
    --trials ten: expected a number
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import AdapterError, FxFaultError, GraphvizError, UsageError

__all__ = ["MAX_MESSAGE", "UsageError", "is_user_error", "one_line", "user_input"]

#: longest message printed (a longer one is cut, ending with "...")
MAX_MESSAGE = 800

#: what reading one piece of user input raises when that input is wrong
_INPUT_ERRORS = (FxFaultError, ValueError, TypeError, OSError)

#: fxfault errors that are not the user's mistake: a broken adapter, a missing Graphviz
_NOT_USER_ERRORS = (AdapterError, GraphvizError)

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def is_user_error(error: BaseException) -> bool:
    """Whether ``error``, raised by fxfault for a value the user gave, is the user's mistake."""
    return isinstance(error, _INPUT_ERRORS) and not isinstance(error, _NOT_USER_ERRORS)


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` on one line: whitespace runs (newlines, tabs) collapsed, colour codes removed,
    cut at ``limit`` characters."""
    flat = " ".join(_ANSI.sub("", text).split())
    return flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."


def _prefix(option: str | None, value: object | None, message: str) -> str:
    if option is None:
        return ""
    if value is None or str(value) in message:
        return f"{option}: "
    return f"{option} {value}: "


@contextmanager
def user_input(
    option: str | None = None, value: object | None = None, *, os_errors: bool = True
) -> Iterator[None]:
    """Blame ``option`` (given as ``value``) for the user errors raised inside the block.

    ``ValueError``, ``TypeError``, ``OSError`` (unless ``os_errors`` is false: a block that
    writes files, where a full disk is no usage mistake) and fxfault's own errors (except a
    broken adapter or a missing Graphviz) become a :class:`UsageError` whose message starts
    with the option (if one is given), and with the value when the message does not already
    show it. Anything else passes through unchanged.
    """
    try:
        yield
    except UsageError:
        raise
    except _INPUT_ERRORS as e:
        if not is_user_error(e) or (isinstance(e, OSError) and not os_errors):
            raise
        raise UsageError(f"{_prefix(option, value, str(e))}{one_line(str(e))}") from e
