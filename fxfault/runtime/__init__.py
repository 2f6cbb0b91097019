"""Run-time control of transformed models (no re-tracing) and fault-aware training helpers."""

from .control import (
    FaultStats,
    SiteCounters,
    clear_cache,
    disabled,
    fault_list,
    fault_sites,
    resample,
    reset_stats,
    set_ber,
    set_enabled,
    stats,
)

__all__ = [
    "FaultStats",
    "SiteCounters",
    "clear_cache",
    "disabled",
    "fault_list",
    "fault_sites",
    "resample",
    "reset_stats",
    "set_ber",
    "set_enabled",
    "stats",
]
