"""Fault models: samplers, encodings, rate specs and the ``BitFlip`` site module."""

from .encoding import Encoding, make_encoding
from .plan import FaultPlan
from .rates import PRESETS, plane_rates
from .sampling import bernoulli_positions, derive_seed, distinct_uniform
from .site import BitFlip, SiteStats, lookup_site

__all__ = [
    "PRESETS",
    "BitFlip",
    "Encoding",
    "FaultPlan",
    "SiteStats",
    "bernoulli_positions",
    "derive_seed",
    "distinct_uniform",
    "lookup_site",
    "make_encoding",
    "plane_rates",
]
