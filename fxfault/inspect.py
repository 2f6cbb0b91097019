"""Compatibility: this module moved to :mod:`fxfault.inspection.sites` in fxfault 0.2; both paths work."""

from .inspection.sites import (
    SiteInfo as SiteInfo,
)
from .inspection.sites import (
    Summary as Summary,
)
from .inspection.sites import (
    SummaryRow as SummaryRow,
)
from .inspection.sites import (
    rate_text as rate_text,
)
from .inspection.sites import (
    sites as sites,
)
from .inspection.sites import (
    summary as summary,
)

__all__ = ['SiteInfo', 'Summary', 'SummaryRow', 'rate_text', 'sites', 'summary']
