"""fxfault: bit-error fault injection for quantized PyTorch models, as a torch.fx graph pass.

``faulty = fxfault.transform(model, cfg, ber=1e-6)`` returns a standalone ``GraphModule`` with
explicit quantize -> flip-bits -> dequantize -> straight-through nodes after every weight
quantizer.

``import fxfault`` stays light: the campaign stack (``sweep``, ``SweepResult``, ...) loads on
first use, networkx when a graph is exported.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import ops as ops
from ._version import __version__
from .config import FaultConfig
from .errors import (
    AdapterError,
    ConfigError,
    CoverageError,
    CoverageWarning,
    FxFaultError,
    GraphvizError,
    NoSitesError,
    QuantizerMismatchError,
    ResultsMismatchError,
    TraceError,
    UnsupportedQuantizerError,
)

# ``fxfault.transform`` and ``fxfault.export`` are both functions and (compatibility) modules:
# the modules are imported first, so that the functions stay bound when user code imports the
# modules later (``import fxfault.export`` would otherwise replace the function).
from .export import export, to_networkx
from .graph_diff import GraphDiff, diff
from .inspection.sites import SiteInfo, Summary, SummaryRow, sites, summary
from .quantizers import register_quantizer
from .runtime.control import (
    FaultStats,
    SiteCounters,
    clear_cache,
    disabled,
    fault_list,
    resample,
    reset_stats,
    set_ber,
    set_enabled,
    stats,
)
from .runtime.saving import load, save
from .transform import transform

#: public names that load their module on first use (PEP 562)
_LAZY = {
    "BerSummary": "fxfault.campaign",
    "SweepResult": "fxfault.campaign",
    "TrialRecord": "fxfault.campaign",
    "sweep": "fxfault.campaign",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fxfault' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AdapterError",
    "BerSummary",
    "ConfigError",
    "CoverageError",
    "CoverageWarning",
    "FaultConfig",
    "FaultStats",
    "FxFaultError",
    "GraphDiff",
    "GraphvizError",
    "NoSitesError",
    "QuantizerMismatchError",
    "ResultsMismatchError",
    "SiteCounters",
    "SiteInfo",
    "Summary",
    "SummaryRow",
    "SweepResult",
    "TraceError",
    "TrialRecord",
    "UnsupportedQuantizerError",
    "__version__",
    "clear_cache",
    "diff",
    "disabled",
    "export",
    "fault_list",
    "load",
    "register_quantizer",
    "resample",
    "reset_stats",
    "save",
    "set_ber",
    "set_enabled",
    "sites",
    "stats",
    "summary",
    "sweep",
    "to_networkx",
    "transform",
]
