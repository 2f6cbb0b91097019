"""Compatibility: this module moved to :mod:`fxfault.inspection.export` in fxfault 0.2; both paths work."""

from .inspection.export import (
    GRAPH_SUFFIXES as GRAPH_SUFFIXES,
)
from .inspection.export import (
    RENDERED_SUFFIXES as RENDERED_SUFFIXES,
)
from .inspection.export import (
    ROLES as ROLES,
)
from .inspection.export import (
    SCHEMA as SCHEMA,
)
from .inspection.export import (
    SUFFIXES as SUFFIXES,
)
from .inspection.export import (
    GraphvizError as GraphvizError,
)
from .inspection.export import (
    export as export,
)
from .inspection.export import (
    fault_records as fault_records,
)
from .inspection.export import (
    keep_neighbourhood as keep_neighbourhood,
)
from .inspection.export import (
    read_json as read_json,
)
from .inspection.export import (
    to_dot as to_dot,
)
from .inspection.export import (
    to_networkx as to_networkx,
)

__all__ = ['GRAPH_SUFFIXES', 'RENDERED_SUFFIXES', 'ROLES', 'SCHEMA', 'SUFFIXES', 'GraphvizError', 'export', 'fault_records', 'keep_neighbourhood', 'read_json', 'to_dot', 'to_networkx']
