"""Fault campaigns: BER sweeps over trials, with statistics, resumable result files and plots.

Example::

    >>> result = fxfault.sweep(model, cfg, test_loader, bers=[1e-6, 1e-5, 1e-4], trials=10,
    ...                        out="sweep-out")
    >>> print(result.table())
    >>> result.plot("sweep-out/plot.png")

See ``docs/campaigns.md``.
"""

from __future__ import annotations

from .intervals import Interval, mean_ci, t_quantile
from .metrics import Metric
from .results import BerSummary, SweepResult, TrialRecord
from .runner import sweep, trial_seed

__all__ = [
    "BerSummary",
    "Interval",
    "Metric",
    "SweepResult",
    "TrialRecord",
    "mean_ci",
    "sweep",
    "t_quantile",
    "trial_seed",
]
