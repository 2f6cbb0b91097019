"""The result of a sweep: one record per (BER, trial), a clean baseline, and summaries per BER.

Example::

    >>> result = fxfault.sweep(model, cfg, batches, bers=[1e-4, 1e-3], trials=3, progress=False)
    >>> print(result.table())
    >>> result.to_csv("summary.csv"); result.to_json("result.json"); result.plot("plot.png")
    >>> SweepResult.load("result.json") == result
    True
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .intervals import mean_ci

__all__ = ["BerSummary", "SweepResult", "TrialRecord"]

RESULT_FORMAT = "fxfault.sweep-result"
RESULT_VERSION = 1


@dataclass(frozen=True)
class TrialRecord:
    """One (BER, trial) pair of a sweep.

    :ivar seed: the trial seed; ``fxfault.resample(faulty, seed=seed)`` at this BER reproduces
        the trial's faults exactly.
    :ivar value: the metric over the whole data set.
    :ivar events: fault events over all forward passes of the trial (``fxfault.stats``).
    :ivar changed_weights: weights with a changed value, summed over the passes.
    :ivar passes: forward passes with faults active (one per batch).
    :ivar observed_ber: events per exposed bit.
    :ivar seconds: wall time of the trial.
    """

    ber: float
    trial: int
    seed: int
    value: float
    events: int
    changed_weights: int
    passes: int
    observed_ber: float
    seconds: float

    @property
    def key(self) -> tuple[float, int]:
        return (self.ber, self.trial)

    @property
    def faults_per_pass(self) -> float:
        """Fault events per forward pass: the size of the fault map in persistent mode."""
        return self.events / self.passes if self.passes else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialRecord:
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in data]
        if missing:
            raise ValueError(f"a trial record lacks the fields {missing}: {dict(data)!r}")
        return cls(
            ber=_float(data["ber"]),
            trial=int(data["trial"]),
            seed=int(data["seed"]),
            value=_float(data["value"]),
            events=int(data["events"]),
            changed_weights=int(data["changed_weights"]),
            passes=int(data["passes"]),
            observed_ber=_float(data["observed_ber"]),
            seconds=_float(data["seconds"]),
        )

    def same_outcome(self, other: TrialRecord) -> bool:
        """Equal in everything but the wall time."""
        a, b = self.to_dict(), other.to_dict()
        a.pop("seconds")
        b.pop("seconds")
        return a == b


@dataclass(frozen=True)
class BerSummary:
    """The trials of one BER: mean, sample std, Student-t confidence interval, drop."""

    ber: float
    trials: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    drop: float
    faults_per_pass: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SweepResult:
    """Records of a BER sweep, its clean baseline and what it was run with.

    :ivar metric: the metric's name (``"top1"``, ``"loss"`` or ``module:qualname``).
    :ivar label: the metric's label (plot axis, table heading).
    :ivar baseline: the metric with faults disabled.
    :ivar records: one :class:`TrialRecord` per (BER, trial), sorted by BER then trial.
    :ivar mode: ``"persistent"`` (one fault map per trial) or ``"transient"``.
    :ivar seed: the base seed from which each trial seed is derived.
    :ivar config: the :class:`~fxfault.FaultConfig` of the sweep, as a dict.
    :ivar meta: the model and data fingerprints, the fxfault version, and so on.
    """

    metric: str
    label: str
    baseline: float
    records: tuple[TrialRecord, ...]
    mode: str
    seed: int
    config: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ views
    @property
    def bers(self) -> list[float]:
        """The BERs of the records, ascending."""
        return sorted({r.ber for r in self.records})

    def values(self, ber: float) -> list[float]:
        """The metric of every trial at ``ber``, by trial index."""
        return [r.value for r in self.records if r.ber == ber]

    def summary(self, confidence: float = 0.95) -> list[BerSummary]:
        """One :class:`BerSummary` per BER; the interval is Student-t over the trial values."""
        out = []
        for ber in self.bers:
            recs = [r for r in self.records if r.ber == ber]
            ci = mean_ci([r.value for r in recs], confidence)
            out.append(
                BerSummary(
                    ber=ber,
                    trials=ci.n,
                    mean=ci.mean,
                    std=ci.std,
                    ci_low=ci.low,
                    ci_high=ci.high,
                    drop=self.baseline - ci.mean,
                    faults_per_pass=math.fsum(r.faults_per_pass for r in recs) / len(recs),
                )
            )
        return out

    def table(self, confidence: float = 0.95) -> str:
        """A printable table: one row per BER, with the baseline on top."""
        pct = f"{confidence * 100:g}% CI"
        rows = [("BER", "trials", "mean", "std", pct, "drop", "faults/pass")]
        rows.append(("clean", "", _num(self.baseline), "", "", "", "0"))
        for s in self.summary(confidence):
            ci = "" if math.isnan(s.ci_low) else f"[{_num(s.ci_low)}, {_num(s.ci_high)}]"
            rows.append(
                (f"{s.ber:.0e}" if s.ber else "0", str(s.trials), _num(s.mean), _num(s.std), ci,
                 _num(s.drop), f"{s.faults_per_pass:.3g}")
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [f"{self.label}, {self.mode} faults, base seed {self.seed}"]
        for j, r in enumerate(rows):
            lines.append("  ".join(c.rjust(w) for c, w in zip(r, widths)))
            if j == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    # ------------------------------------------------------------------ files
    def to_csv(self, path: str | os.PathLike[str], *, trials: bool = False,
               confidence: float = 0.95) -> Path:
        """Write the per-BER summary (or, with ``trials=True``, every trial) as CSV.

        Summary columns: ``ber, trials, mean, std, ci_low, ci_high, baseline, drop,
        faults_per_pass`` (NaN where one trial gives no spread).
        """
        p = Path(path)
        if trials:
            head = [f.name for f in fields(TrialRecord)]
            body: Iterable[Sequence[Any]] = [[getattr(r, n) for n in head] for r in self.records]
        else:
            head = ["ber", "trials", "mean", "std", "ci_low", "ci_high", "baseline", "drop",
                    "faults_per_pass"]
            body = [
                [getattr(s, n) if n != "baseline" else self.baseline for n in head]
                for s in self.summary(confidence)
            ]
        with p.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(head)
            w.writerows(body)
        return p

    def to_dict(self, confidence: float = 0.95) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes ``None``); :meth:`from_dict` reads it back."""
        return _nan_to_none(
            {
                "format": RESULT_FORMAT,
                "version": RESULT_VERSION,
                "metric": self.metric,
                "label": self.label,
                "baseline": self.baseline,
                "mode": self.mode,
                "seed": self.seed,
                "confidence": confidence,
                "config": self.config,
                "meta": self.meta,
                "summary": [s.to_dict() for s in self.summary(confidence)],
                "trials": [r.to_dict() for r in self.records],
            }
        )

    def to_json(self, path: str | os.PathLike[str], *, confidence: float = 0.95) -> Path:
        """Write everything (records, summary, config, fingerprints) as one JSON file."""
        p = Path(path)
        p.write_text(json.dumps(self.to_dict(confidence), indent=1) + "\n", encoding="utf-8")
        return p

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SweepResult:
        if data.get("format") != RESULT_FORMAT:
            raise ValueError(
                f"not an fxfault sweep result (format {data.get('format')!r}, expected "
                f"{RESULT_FORMAT!r}); results.jsonl files are read with SweepResult.load"
            )
        records = tuple(sorted((TrialRecord.from_dict(r) for r in data["trials"]), key=_order))
        return cls(
            metric=str(data["metric"]),
            label=str(data["label"]),
            baseline=_float(data["baseline"]),
            records=records,
            mode=str(data["mode"]),
            seed=int(data["seed"]),
            config=dict(data.get("config") or {}),
            meta=dict(data.get("meta") or {}),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SweepResult:
        """Read a result: a JSON file from :meth:`to_json`, or a sweep's ``results.jsonl``
        (or the folder holding it) with every pair it holds."""
        p = Path(path)
        if p.is_dir():
            p = p / "results.jsonl"
        if p.suffix == ".jsonl":
            from .store import read_results

            return read_results(p)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{str(p)!r} is not valid JSON: {e}") from e
        return cls.from_dict(data)

    def plot(self, path: str | os.PathLike[str], *, title: str | None = None,
             confidence: float = 0.95) -> Path:
        """Plot the metric against the BER (log axis): trials, mean, CI band, baseline.

        The format follows the suffix (``.png``, ``.svg``, ``.pdf``). Needs matplotlib
        (``pip install fxfault[plot]``).
        """
        from .plot import plot_sweep

        return plot_sweep(self, path, title=title, confidence=confidence)


def _order(r: TrialRecord) -> tuple[float, int]:
    return (r.ber, r.trial)


def _float(x: Any) -> float:
    return math.nan if x is None else float(x)


def _num(x: float) -> str:
    if math.isnan(x):
        return "-"
    return f"{x:.2f}" if abs(x) >= 0.01 or x == 0 else f"{x:.2e}"


def _nan_to_none(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, Mapping):
        return {k: _nan_to_none(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_nan_to_none(x) for x in v]
    return v
