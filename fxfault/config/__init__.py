"""The config layer: :class:`FaultConfig`, its field validators, and the search-JSON reader."""

from .fields import as_rate, check_patterns, resolve_per_layer
from .model import SCHEMA_VERSION, FaultConfig, load_config
from .search_json import read_search_json, searchable_lsq_layers

__all__ = [
    "SCHEMA_VERSION",
    "FaultConfig",
    "as_rate",
    "check_patterns",
    "load_config",
    "read_search_json",
    "resolve_per_layer",
    "searchable_lsq_layers",
]
