"""The files of a finished sweep: ``summary.csv``, ``plot.png`` and a markdown ``report.md``.

Example::

    >>> files = write_outputs(result, "sweep-out", setup={"model": "`demo-cnn`"})
    >>> sorted(p.name for p in files.written)
    ['plot.png', 'report.md', 'summary.csv']
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import FaultConfig
from .results import SweepResult

__all__ = ["CI_METHOD", "OutputFiles", "markdown_table", "write_outputs", "write_report"]

log = logging.getLogger(__name__)

CI_METHOD = (
    "Each trial draws an independent fault map from its own seed, so the per-trial values at "
    "one BER are independent draws. The table gives their mean, their sample standard deviation "
    "`s` (`n - 1` in the denominator) and the two-sided Student-t confidence interval of the "
    "mean, `mean ± t(1 - α/2, n - 1) · s / √n`. The interval assumes roughly normal trial "
    "values; when a few trials collapse and the others do not, the values are skewed and the "
    "interval can reach past the metric's range (above 100 %): run more trials there. `drop` is "
    "the baseline minus the mean (negative when the metric rises, as a loss does)."
)


@dataclass(frozen=True)
class OutputFiles:
    """Paths written by :func:`write_outputs`; ``plot`` is ``None`` without matplotlib."""

    summary: Path
    report: Path
    plot: Path | None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def written(self) -> list[Path]:
        return [p for p in (self.summary, self.plot, self.report) if p is not None]


def write_outputs(
    result: SweepResult,
    folder: str | os.PathLike[str],
    *,
    setup: Mapping[str, str] | None = None,
    title: str | None = None,
    plot_name: str = "plot.png",
) -> OutputFiles:
    """Write ``summary.csv``, the plot and ``report.md`` of ``result`` into ``folder``.

    A missing matplotlib skips the plot (the report says so) instead of failing the sweep.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    summary = result.to_csv(out / "summary.csv")
    plot: Path | None = None
    notes: list[str] = []
    try:
        plot = result.plot(out / plot_name, title=title)
    except ImportError as e:
        notes.append(f"No plot: {e}")
        log.warning("no plot: %s", e)
    report = write_report(result, out / "report.md", setup=setup, plot=plot, notes=notes,
                          title=title)
    return OutputFiles(summary, report, plot, tuple(notes))


def markdown_table(result: SweepResult, confidence: float = 0.95) -> str:
    """The summary of ``result`` as a markdown table."""
    pct = f"{confidence * 100:g}% CI"
    lines = [f"| BER | trials | mean | std | {pct} | drop | faults / pass |",
             "| ---: | ---: | ---: | ---: | :---: | ---: | ---: |",
             f"| no faults | | {result.baseline:.2f} | | | | 0 |"]
    for s in result.summary(confidence):
        ci = "–" if math.isnan(s.ci_low) else f"[{s.ci_low:.2f}, {s.ci_high:.2f}]"
        std = "–" if math.isnan(s.std) else f"{s.std:.2f}"
        lines.append(f"| {s.ber:.0e} | {s.trials} | {s.mean:.2f} | {std} | {ci} | {s.drop:.2f} | "
                     f"{s.faults_per_pass:.3g} |")
    return "\n".join(lines)


def _config_text(config: Mapping[str, Any]) -> str:
    default = FaultConfig().to_dict()
    changed = {k: v for k, v in config.items() if k not in ("ber", "version") and default.get(k) != v}
    return ", ".join(f"`{k}={v!r}`" for k, v in changed.items()) or "defaults"


def _sites_text(meta: Mapping[str, Any]) -> str:
    sites = (meta.get("model") or {}).get("sites") or []
    parts = [f"`{s[0]}` {s[1]}-bit ({s[4]} weights)" for s in sites]
    return f"{len(sites)}: " + ", ".join(parts) if parts else "?"


def write_report(
    result: SweepResult,
    path: str | os.PathLike[str],
    *,
    setup: Mapping[str, str] | None = None,
    plot: Path | None = None,
    notes: list[str] | tuple[str, ...] = (),
    title: str | None = None,
) -> Path:
    """Write a short markdown report: setup, table, plot, the CI method, the files."""
    p = Path(path)
    meta = result.meta
    model = meta.get("model") or {}
    data = meta.get("data") or {}
    trials = sorted({s.trials for s in result.summary()})
    rows: dict[str, str] = {}
    rows.update(setup or {})
    rows.setdefault("model", f"`{model.get('class', '?')}`")
    rows["parameters"] = f"{model.get('parameters', '?')}"
    rows["fault sites"] = _sites_text(meta)
    rows.setdefault("data", "")
    rows["data"] = (rows["data"] + " " if rows["data"] else "") + (
        f"{data.get('examples', '?')} examples in {data.get('batches', '?')} batches")
    rows["metric"] = f"{result.label} (`{result.metric}`)"
    rows["faults"] = (f"{result.mode} bit errors in the stored weight codes"
                      + (" (one fault map per trial)" if result.mode == "persistent" else
                         " (new faults on every forward pass)"))
    rows["config"] = _config_text(result.config)
    rows["BERs"] = ", ".join(f"{b:.0e}" for b in result.bers)
    rows["trials per BER"] = ", ".join(str(t) for t in trials)
    rows["base seed"] = (f"{result.seed} (trial seed = `derive_seed(base seed, 'sweep', "
                         "repr(BER), trial)`)")
    rows["fxfault"] = str(meta.get("fxfault", ""))
    lines = [f"# {title or 'Bit-error sweep'}", "", "## Setup", "", "| | |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in rows.items()]
    lines += ["", "## Results", "", markdown_table(result), ""]
    if plot is not None:
        lines += [f"![{result.label} against the bit-error rate]({plot.name})", ""]
    lines += [f"> {n}" for n in notes]
    lines += ["## Method", "", CI_METHOD, "", "## Files", "",
              "- `results.jsonl` — one line per finished trial, after a header (config, model "
              "fingerprint, metric) and the baseline; re-running on the same folder resumes.",
              "- `summary.csv` — the table above.",
              ]
    if plot is not None:
        lines.append(f"- `{plot.name}` — the plot.")
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p
