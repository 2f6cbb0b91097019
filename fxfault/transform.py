"""Compatibility: this module moved to :mod:`fxfault.graph.transform` in fxfault 0.2; both paths work."""

from .graph.transform import (
    SITES_MODULE as SITES_MODULE,
)
from .graph.transform import (
    FaultPass as FaultPass,
)
from .graph.transform import (
    transform as transform,
)

__all__ = ['SITES_MODULE', 'FaultPass', 'transform']
