"""Resumable result files: ``results.jsonl``, one JSON object per line.

* line 1, the **header**: what the sweep *is* — the config (with its base seed and mode), a
  fingerprint of the model (parameter and buffer names, shapes, dtypes; a BLAKE2b hash of their
  values; the fault sites with their widths and code ranges) and the metric's name;
* a **baseline** line: the clean metric and the data's size (batches, examples);
* one **trial** line per finished (BER, trial) pair (:class:`~.results.TrialRecord`).

Every line is appended with a single ``os.write`` on an ``O_APPEND`` descriptor followed by
``os.fsync``, so a process killed at any moment (``kill -9`` included) leaves every finished
trial on disk and at most one torn last line, which the reader ignores and the next run cuts
off before it appends. A file whose header does not match the sweep is refused with
:class:`~fxfault.errors.ResultsMismatchError`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._version import __version__
from ..errors import ResultsMismatchError
from ..inspection.sites import sites
from .results import SweepResult, TrialRecord

__all__ = [
    "RESULTS_NAME",
    "ResultsFile",
    "StoredSweep",
    "SweepIdentity",
    "model_fingerprint",
    "normalised",
    "read_results",
    "write_results",
]

log = logging.getLogger(__name__)

RESULTS_NAME = "results.jsonl"
FILE_FORMAT = "fxfault.sweep-results"
FILE_VERSION = 1


def normalised(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples become lists, keys strings)."""
    return json.loads(json.dumps(obj))


def _tensor_bytes(t: torch.Tensor) -> Any:
    t = t.detach()
    if t.is_quantized:
        t = t.int_repr()
    t = t.to("cpu").contiguous().reshape(-1)
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    return t.view(torch.uint8).numpy()


def model_fingerprint(model: nn.Module, faulty: nn.Module) -> dict[str, Any]:
    """What identifies a model in a result file: its architecture, its values, its sites.

    :param model: the user's model (its ``state_dict``: parameters and buffers).
    :param faulty: its transform (the fault sites: names, widths, code ranges, encodings).
    """
    structure = hashlib.blake2b(digest_size=16)
    values = hashlib.blake2b(digest_size=16)
    state = model.state_dict()
    for name, t in state.items():
        if isinstance(t, torch.Tensor):
            structure.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
            values.update(name.encode())
            try:
                values.update(_tensor_bytes(t))
            except (RuntimeError, TypeError):  # exotic layouts: their text form
                values.update(repr(t).encode())
        else:
            structure.update(f"{name}:{type(t).__name__};".encode())
            values.update(repr(t).encode())
    return {
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "tensors": len(state),
        "parameters": sum(p.numel() for p in model.parameters()),
        "structure": structure.hexdigest(),
        "values": values.hexdigest(),
        "sites": [
            [s.name, s.bits, s.qmin, s.qmax, s.numel, s.encoding, s.fault] for s in sites(faulty)
        ],
    }


@dataclass(frozen=True)
class SweepIdentity:
    """What must match for a result file to be resumed."""

    config: dict[str, Any]
    model: dict[str, Any]
    metric: str
    label: str
    mode: str
    seed: int

    def header(self) -> dict[str, Any]:
        return {
            "kind": "header",
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "fxfault": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "metric": self.metric,
            "label": self.label,
            "mode": self.mode,
            "seed": self.seed,
            "config": normalised(self.config),
            "model": normalised(self.model),
        }

    def differences(self, header: Mapping[str, Any]) -> list[str]:
        """Human-readable differences between a stored header and this sweep."""
        out: list[str] = []
        if header.get("metric") != self.metric:
            out.append(f"the metric (stored {header.get('metric')!r}, now {self.metric!r})")
        old_cfg, new_cfg = header.get("config") or {}, normalised(self.config)
        for key in sorted(set(old_cfg) | set(new_cfg)):
            if old_cfg.get(key) != new_cfg.get(key):
                out.append(f"config field {key!r} (stored {old_cfg.get(key)!r}, now {new_cfg.get(key)!r})")
        old_m, new_m = header.get("model") or {}, normalised(self.model)
        if (old_m.get("class"), old_m.get("structure")) != (new_m["class"], new_m["structure"]):
            out.append(
                f"the model's architecture (stored {old_m.get('class')!r} with "
                f"{old_m.get('parameters')} parameters, now {new_m['class']!r} with "
                f"{new_m['parameters']}; or parameter names, shapes or dtypes)"
            )
        elif old_m.get("values") != new_m["values"]:
            out.append("the model's parameter or buffer values (another checkpoint or training run)")
        if old_m.get("sites") != new_m["sites"]:
            out.append("the fault sites (names, bit widths or code ranges)")
        return out


@dataclass
class StoredSweep:
    """What a result file holds: its header, baseline line and finished trials."""

    header: dict[str, Any]
    baseline: dict[str, Any] | None = None
    records: dict[tuple[float, int], TrialRecord] = field(default_factory=dict)


def _read(path: Path) -> tuple[StoredSweep | None, int]:
    """Parse ``path``; returns ``(content, length of its complete lines)``."""
    raw = path.read_bytes()
    end = raw.rfind(b"\n") + 1
    if end < len(raw):
        log.warning("%s ends with a torn line (%d bytes, a run was killed while writing); "
                    "ignoring it", path, len(raw) - end)
    stored: StoredSweep | None = None
    for i, line in enumerate(raw[:end].split(b"\n")[:-1], 1):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise ResultsMismatchError(
                f"line {i} of {str(path)!r} is not valid JSON ({e}); the file is damaged. "
                "Delete that line (or the file, to start over)."
            ) from e
        kind = obj.get("kind") if isinstance(obj, dict) else None
        if stored is None:
            if kind != "header" or obj.get("format") != FILE_FORMAT:
                raise ResultsMismatchError(
                    f"{str(path)!r} is not an fxfault sweep results file (its first line is no "
                    "header); use another output folder or delete the file"
                )
            if obj.get("version") != FILE_VERSION:
                raise ResultsMismatchError(
                    f"{str(path)!r} has results-file version {obj.get('version')!r}; this "
                    f"fxfault reads version {FILE_VERSION}. Use another output folder."
                )
            stored = StoredSweep(header=obj)
        elif kind == "baseline":
            if stored.baseline is None:
                stored.baseline = obj
        elif kind == "trial":
            rec = TrialRecord.from_dict(obj)
            stored.records.setdefault(rec.key, rec)
        else:
            log.debug("%s line %d: skipping a line of kind %r", path, i, kind)
    return stored, end


def _append(path: Path, lines: Sequence[Mapping[str, Any]]) -> None:
    """Append ``lines`` as JSON with one ``os.write`` and ``fsync`` (see the module docstring)."""
    data = "".join(json.dumps(obj) + "\n" for obj in lines).encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:  # a regular file takes it in one write; a short write only if the disk is full
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)


class ResultsFile:
    """The ``results.jsonl`` of one output folder (used by rank 0 only)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / RESULTS_NAME

    def open(self, identity: SweepIdentity) -> StoredSweep | None:
        """Read and check the stored results; ``None`` for a new (or empty) file.

        A torn last line is cut off here, so that the next append starts on a fresh line.
        :raises ResultsMismatchError: the file belongs to another sweep.
        """
        if self.folder.exists() and not self.folder.is_dir():
            raise ValueError(f"the output folder {str(self.folder)!r} is a file; give a folder")
        self.folder.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            return None
        stored, end = _read(self.path)
        if end < self.path.stat().st_size:
            os.truncate(self.path, end)
        if stored is None:
            return None
        diffs = identity.differences(stored.header)
        if diffs:
            raise ResultsMismatchError(
                f"{str(self.path)!r} holds the results of a different sweep; it differs in "
                + "; ".join(diffs)
                + ". A sweep resumes only with the same model, config, seed, mode and metric: "
                "use another output folder (--out / out=) or delete the file to start over."
            )
        log.info("resuming %s: %d trials done", self.path, len(stored.records))
        return stored

    def start(self, identity: SweepIdentity, baseline: Mapping[str, Any] | None) -> None:
        """Write the header (and the baseline) of a new file."""
        lines: list[Mapping[str, Any]] = [identity.header()]
        if baseline is not None:
            lines.append({"kind": "baseline", **baseline})
        _append(self.path, lines)
        _fsync_dir(self.folder)

    def add_baseline(self, baseline: Mapping[str, Any]) -> None:
        _append(self.path, [{"kind": "baseline", **baseline}])

    def add(self, records: Sequence[TrialRecord]) -> None:
        if records:
            _append(self.path, [{"kind": "trial", **r.to_dict()} for r in records])


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_results(result: SweepResult, path: str | os.PathLike[str]) -> Path:
    """Write ``result`` as a complete ``results.jsonl`` (temp file, then an atomic rename)."""
    p = Path(path)
    meta = result.meta
    identity = SweepIdentity(
        config=result.config, model=meta.get("model", {}), metric=result.metric,
        label=result.label, mode=result.mode, seed=result.seed,
    )
    lines: list[Mapping[str, Any]] = [identity.header()]
    lines.append({"kind": "baseline", "value": result.baseline, **meta.get("data", {})})
    lines += [{"kind": "trial", **r.to_dict()} for r in result.records]
    fd, tmp = tempfile.mkstemp(prefix=p.name, suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("".join(json.dumps(obj) + "\n" for obj in lines))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def read_results(path: str | os.PathLike[str]) -> SweepResult:
    """Every finished pair of a ``results.jsonl``, as a :class:`SweepResult`."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no results file at {str(p)!r}")
    stored, _ = _read(p)
    if stored is None:
        raise ValueError(f"{str(p)!r} holds no header yet (the sweep was stopped before its baseline)")
    if stored.baseline is None:
        raise ValueError(f"{str(p)!r} holds no baseline yet (the sweep was stopped before it)")
    h, b = stored.header, stored.baseline
    return SweepResult(
        metric=h["metric"],
        label=h.get("label", h["metric"]),
        baseline=float(b["value"]),
        records=tuple(sorted(stored.records.values(), key=lambda r: (r.ber, r.trial))),
        mode=h["mode"],
        seed=int(h["seed"]),
        config=dict(h.get("config") or {}),
        meta=stored_meta(stored),
    )


def stored_meta(stored: StoredSweep) -> dict[str, Any]:
    """The ``SweepResult.meta`` of a stored sweep."""
    b = stored.baseline or {}
    return {
        "fxfault": stored.header.get("fxfault"),
        "model": stored.header.get("model", {}),
        "data": {k: b[k] for k in ("batches", "examples") if k in b},
    }
