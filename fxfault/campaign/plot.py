"""Plot a sweep: the metric against the bit-error rate, on a log x-axis.

Each trial is a faint dot, the mean per BER a line, the Student-t confidence interval a band,
and the clean baseline a dashed horizontal line. matplotlib is optional
(``pip install fxfault[plot]``) and imported only here, without pyplot (no global figure
state, no display needed).

Example::

    >>> result.plot("sweep.png")          # or .svg / .pdf
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .results import BerSummary, SweepResult

__all__ = ["plot_sweep"]

log = logging.getLogger(__name__)

FORMATS = (".png", ".svg", ".pdf")


def plot_sweep(
    result: SweepResult,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    confidence: float = 0.95,
) -> Path:
    """Write the plot of ``result`` to ``path`` (the format follows the suffix)."""
    p = Path(path)
    if p.suffix.lower() not in FORMATS:
        raise ValueError(f"cannot tell the plot format from {str(p)!r}; use one of {', '.join(FORMATS)}")
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import LogLocator
    except ImportError as e:
        raise ImportError(
            "plotting a sweep needs matplotlib: pip install fxfault[plot] (or pip install matplotlib)"
        ) from e

    rows = [s for s in result.summary(confidence) if s.ber > 0]
    if len(rows) < len(result.summary(confidence)):
        log.info("BER 0 has no place on a log axis; it is left out of the plot")
    fig = Figure(figsize=(7.0, 4.4), dpi=150, layout="constrained")
    ax = fig.subplots()
    xs = [s.ber for s in rows]
    trials = [(r.ber, r.value) for r in result.records if r.ber > 0]
    if trials:
        ax.scatter([b for b, _ in trials], [v for _, v in trials], s=16, color="tab:blue",
                   alpha=0.45, linewidths=0, label="trials", zorder=2)
    band = [(s.ber, s.ci_low, s.ci_high) for s in rows if not math.isnan(s.ci_low)]
    if band:
        ax.fill_between([b for b, _, _ in band], [lo for _, lo, _ in band], [hi for _, _, hi in band],
                        color="tab:blue", alpha=0.18, linewidth=0,
                        label=f"{confidence * 100:g}% CI of the mean (Student t)", zorder=1)
    ax.plot(xs, [s.mean for s in rows], marker="o", markersize=5, color="tab:blue", linewidth=2,
            label=f"mean of {_trials_text(rows)}", zorder=3)
    ax.axhline(result.baseline, color="tab:red", linestyle="--", linewidth=1.3,
               label=f"no faults: {result.baseline:.4g}", zorder=4)
    ax.set_xscale("log")
    if xs:
        ax.set_xlim(min(xs) / 1.6, max(xs) * 1.6)
    ax.xaxis.set_major_locator(LogLocator(base=10.0, numticks=12))
    if result.metric == "top1":
        ax.set_ylim(-2, 102)
    ax.set_xlabel("bit-error rate (per stored weight bit)")
    ax.set_ylabel(result.label)
    ax.set_title(title or f"{result.label} under weight bit errors ({result.mode} faults)", fontsize=11)
    ax.grid(True, which="major", alpha=0.35)
    ax.legend(loc="best", fontsize=9, framealpha=0.9)
    fig.savefig(p)
    return p


def _trials_text(rows: list[BerSummary]) -> str:
    counts = sorted({s.trials for s in rows})
    if len(counts) == 1:
        return f"{counts[0]} trial{'s' if counts[0] != 1 else ''}"
    return f"{counts[0]}-{counts[-1]} trials"
