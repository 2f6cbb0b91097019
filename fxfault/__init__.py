"""fxfault: bit-error fault injection for quantized PyTorch models, as a torch.fx graph pass.

``faulty = fxfault.transform(model, cfg, ber=1e-6)`` returns a standalone ``GraphModule`` with
explicit quantize -> flip-bits -> dequantize -> straight-through nodes after every weight
quantizer.
"""

from __future__ import annotations

from . import ops as ops
from ._version import __version__
from .campaign import BerSummary, SweepResult, TrialRecord, sweep
from .config import FaultConfig
from .control import (
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
from .errors import (
    ConfigError,
    FxFaultError,
    NoSitesError,
    QuantizerMismatchError,
    ResultsMismatchError,
    TraceError,
    UnsupportedQuantizerError,
)
from .export import GraphvizError, export, to_networkx
from .graph_diff import GraphDiff, diff
from .inspect import SiteInfo, Summary, SummaryRow, sites, summary
from .quantizers import register_quantizer
from .transform import transform

__all__ = [
    "BerSummary",
    "ConfigError",
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
    "register_quantizer",
    "resample",
    "reset_stats",
    "set_ber",
    "set_enabled",
    "sites",
    "stats",
    "summary",
    "sweep",
    "to_networkx",
    "transform",
]
