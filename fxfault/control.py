"""Compatibility: this module moved to :mod:`fxfault.runtime.control` in fxfault 0.2; both paths work."""

from .runtime.control import (
    FaultStats as FaultStats,
)
from .runtime.control import (
    SiteCounters as SiteCounters,
)
from .runtime.control import (
    clear_cache as clear_cache,
)
from .runtime.control import (
    disabled as disabled,
)
from .runtime.control import (
    fault_list as fault_list,
)
from .runtime.control import (
    fault_sites as fault_sites,
)
from .runtime.control import (
    plan_of as plan_of,
)
from .runtime.control import (
    resample as resample,
)
from .runtime.control import (
    reset_stats as reset_stats,
)
from .runtime.control import (
    select_sites as select_sites,
)
from .runtime.control import (
    set_ber as set_ber,
)
from .runtime.control import (
    set_enabled as set_enabled,
)
from .runtime.control import (
    stats as stats,
)

__all__ = ['FaultStats', 'SiteCounters', 'clear_cache', 'disabled', 'fault_list', 'fault_sites', 'plan_of', 'resample', 'reset_stats', 'select_sites', 'set_ber', 'set_enabled', 'stats']
