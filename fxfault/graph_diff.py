"""Compatibility: this module moved to :mod:`fxfault.inspection.diff` in fxfault 0.2; both paths work."""

from .inspection.diff import (
    GraphDiff as GraphDiff,
)
from .inspection.diff import (
    InsertedNode as InsertedNode,
)
from .inspection.diff import (
    Rewire as Rewire,
)
from .inspection.diff import (
    SiteDiff as SiteDiff,
)
from .inspection.diff import (
    diff as diff,
)

__all__ = ['GraphDiff', 'InsertedNode', 'Rewire', 'SiteDiff', 'diff']
