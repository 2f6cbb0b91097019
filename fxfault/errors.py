"""Error classes raised by fxfault.

Every error that user input can cause derives from :class:`FxFaultError` and from the builtin
class that describes it best (``ValueError`` for bad values, ``TypeError`` for bad types), so
``except ValueError`` keeps working for code that does not know about fxfault.
"""

from __future__ import annotations

__all__ = [
    "AdapterError",
    "ConfigError",
    "CoverageError",
    "CoverageWarning",
    "FxFaultError",
    "GraphvizError",
    "NoSitesError",
    "QuantizerMismatchError",
    "ResultsMismatchError",
    "TraceError",
    "UnsupportedQuantizerError",
    "UsageError",
]


class FxFaultError(Exception):
    """Base class of every error fxfault raises on purpose."""


class ConfigError(FxFaultError, ValueError):
    """A :class:`~fxfault.FaultConfig` value, or a config file, is invalid."""


class TraceError(FxFaultError, RuntimeError):
    """torch.fx could not trace the model; the message names the module that failed."""


class NoSitesError(FxFaultError, ValueError):
    """The model has no weight quantizer that fxfault could turn into a fault site."""


class UnsupportedQuantizerError(FxFaultError, TypeError):
    """A quantizer was recognised but fxfault cannot read its grid (scale, range, bits)."""


class QuantizerMismatchError(FxFaultError, ValueError):
    """A quantizer's output does not lie on the grid its adapter reported."""


class ResultsMismatchError(FxFaultError, ValueError):
    """A campaign result file belongs to a different model or config."""


class AdapterError(FxFaultError, RuntimeError):
    """A quantizer adapter broke its contract (a bug in the adapter, not in the model)."""


class GraphvizError(FxFaultError, RuntimeError):
    """The Graphviz ``dot`` program is missing or failed to render a graph."""


class CoverageError(FxFaultError, ValueError):
    """``transform(..., strict=True)``: a weight that a layer reads got no fault site."""


class CoverageWarning(UserWarning):
    """A weight that a layer reads got no fault site (``fxfault.coverage`` lists them)."""


class UsageError(FxFaultError, ValueError):
    """A mistake on the command line: printed as one line on stderr, exit status 2.

    ``prog`` names the command (``fxfault sweep``) when the parser raised it.
    """

    def __init__(self, message: str, *, prog: str | None = None) -> None:
        super().__init__(message)
        self.prog = prog
