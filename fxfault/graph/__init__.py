"""The graph layer: tracing, matching quantizers, inserting and verifying fault chains."""

from .chains import PASS_NODE, PLAN_MODULE, SITES_MODULE, Chain, annotate, find_chains
from .transform import FaultPass, transform

__all__ = ["PASS_NODE", "PLAN_MODULE", "SITES_MODULE", "Chain", "FaultPass", "annotate", "find_chains", "transform"]
