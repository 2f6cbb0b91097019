"""fxfault: bit-error fault injection for quantized PyTorch models, as a torch.fx graph pass.

``faulty = fxfault.transform(model, cfg, ber=1e-6)`` returns a standalone ``GraphModule`` with
explicit quantize -> flip-bits -> dequantize -> straight-through nodes after every weight
quantizer.
"""

from __future__ import annotations

from . import ops as ops
from ._version import __version__
from .config import FaultConfig
from .control import (
    FaultStats,
    SiteCounters,
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
from .inspect import SiteInfo, sites
from .quantizers import register_quantizer
from .transform import transform

__all__ = [
    "ConfigError",
    "FaultConfig",
    "FaultStats",
    "FxFaultError",
    "NoSitesError",
    "QuantizerMismatchError",
    "ResultsMismatchError",
    "SiteCounters",
    "SiteInfo",
    "TraceError",
    "UnsupportedQuantizerError",
    "__version__",
    "disabled",
    "fault_list",
    "resample",
    "register_quantizer",
    "reset_stats",
    "set_ber",
    "set_enabled",
    "sites",
    "stats",
    "transform",
]
