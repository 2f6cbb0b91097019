"""Fault models: samplers and maps (where), injectors and encodings (what), the ``BitFlip`` site
module, its eval-mode cache and statistics, and the plan shared by a model's sites."""

from .cache import SiteCache
from .encoding import Encoding, make_encoding
from .maps import FaultMap
from .plan import FaultPlan, Pass
from .rates import PRESETS, plane_rates
from .sampling import bernoulli_positions, derive_seed, distinct_uniform
from .site import BitFlip, SiteStats

__all__ = [
    "PRESETS",
    "BitFlip",
    "Encoding",
    "FaultMap",
    "FaultPlan",
    "Pass",
    "SiteCache",
    "SiteStats",
    "bernoulli_positions",
    "derive_seed",
    "distinct_uniform",
    "make_encoding",
    "plane_rates",
]
