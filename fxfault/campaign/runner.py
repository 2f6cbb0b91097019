"""``fxfault.sweep``: a metric at each bit-error rate, over independent fault trials.

The model is transformed **once**; each (BER, trial) pair then only sets the BER
(:func:`fxfault.set_ber`) and reseeds the faults (:func:`fxfault.resample`) with a trial seed
derived from ``(base seed, BER, trial index)`` by a stable hash, so every pair is
reproducible on its own — in any order, in any process, after any interruption.

Example::

    >>> from fxfault.testing.digits import digits_batches, lsq_digits_cnn
    >>> result = fxfault.sweep(lsq_digits_cnn(), None, digits_batches(), bers=[1e-3, 1e-2],
    ...                        trials=2, progress=False)
    >>> [r.key for r in result.records]
    [(0.001, 0), (0.001, 1), (0.01, 0), (0.01, 1)]
"""

from __future__ import annotations

import copy
import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn

from .._version import __version__
from ..config import FaultConfig, as_rate, load_config
from ..errors import ResultsMismatchError
from ..faults.sampling import derive_seed
from ..graph.transform import SITES_MODULE, transform
from ..runtime.control import disabled, resample, reset_stats, set_ber, stats
from .distributed import Workers, local_device
from .metrics import Accumulator, Metric, MetricFn, resolve_metric
from .results import SweepResult, TrialRecord
from .store import RESULTS_NAME, ResultsFile, StoredSweep, SweepIdentity, model_fingerprint, normalised

__all__ = ["sweep", "trial_seed"]

log = logging.getLogger(__name__)


def trial_seed(base_seed: int, ber: float, trial: int) -> int:
    """The seed of trial ``trial`` at ``ber``: ``derive_seed(base_seed, "sweep", repr(ber), trial)``.

    It depends on the BER's value, not on its place in the list, so adding BERs or trials to
    a sweep leaves the existing pairs as they were.
    """
    return derive_seed(int(base_seed), "sweep", repr(float(ber)), int(trial))


def sweep(
    model: nn.Module,
    cfg: FaultConfig | Mapping[str, Any] | str | os.PathLike[str] | None,
    data: Iterable[Any],
    bers: Iterable[float | str],
    trials: int,
    metric: str | Metric | MetricFn = "top1",
    device: str | torch.device | None = None,
    out: str | os.PathLike[str] | None = None,
    *,
    mode: str | None = None,
    progress: bool = True,
    seed: int | None = None,
) -> SweepResult:
    """Measure ``metric`` at each BER in ``bers`` over ``trials`` independent fault trials.

    The clean baseline is measured first (faults disabled, bit-identical to ``model``). Then,
    for each (BER, trial), the metric over the whole of ``data`` with that trial's faults. It
    runs under ``torch.no_grad()`` with the transformed model in eval mode; ``model`` itself is
    never written to, moved or switched to eval.

    :param model: the quantized model (as given to :func:`fxfault.transform`).
    :param cfg: a :class:`~fxfault.FaultConfig`, a mapping, a JSON path or ``None``. Its
        ``ber`` is replaced by each swept value (it must not be a per-layer mapping; choose
        layers with ``include``/``exclude``/``only``), ``count``/``faults`` are refused.
    :param data: a re-iterable of ``(inputs, targets)`` batches — a list or a ``DataLoader``,
        not a generator — iterated once per trial, in the same order each time.
    :param bers: the bit-error rates (numbers or numeric strings), swept in ascending order.
    :param trials: trials per BER (>= 1; the confidence interval needs >= 2).
    :param metric: ``"top1"`` (percent correct), ``"loss"`` (mean cross-entropy), a
        :class:`~fxfault.campaign.Metric`, or a callable ``metric(outputs, targets)``
        returning ``(sum, count)`` or the batch's per-example mean (see
        :mod:`fxfault.campaign.metrics`). Batches are aggregated exactly: ``sum / count``.
    :param device: where to run (``"cuda"``, ...). Default: the device of ``model``. When
        ``model`` lives elsewhere, it is copied there once.
    :param out: a folder: each finished trial is appended to ``out/results.jsonl`` at once,
        and a later call with the same ``out`` skips the pairs already done and reuses the
        stored baseline. A file from another model, config, seed, mode or metric is refused
        with :class:`~fxfault.errors.ResultsMismatchError`.
    :param mode: ``"persistent"`` (default: one fault map per trial for the whole data set,
        like a faulty memory) or ``"transient"`` (new faults on every forward pass).
    :param progress: show a tqdm progress bar with an ETA (on stderr; rank 0 only).
    :param seed: the base seed of the trial seeds (default ``cfg.seed``).
    :returns: a :class:`~fxfault.campaign.SweepResult` with one record per requested pair.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) the pairs are shared among the ranks; rank 0
    writes ``out`` and every rank returns the whole result (see
    :mod:`fxfault.campaign.distributed`).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"sweep needs a torch.nn.Module, got {type(model).__name__}")
    if isinstance(model, fx.GraphModule) and hasattr(model, SITES_MODULE):
        raise TypeError(
            "sweep transforms the model itself (once) and reseeds it for every trial; pass the "
            "original model, not the output of fxfault.transform"
        )
    ber_list = _check_bers(bers)
    n_trials = _check_trials(trials)
    _check_data(data)
    met = resolve_metric(metric)
    run_cfg = _run_config(cfg, mode, seed)
    dev = local_device(_resolve_device(device, model))
    with Workers.start(dev) as workers:
        run = _Run(model, run_cfg, data, met, dev, workers)
        return run.execute(ber_list, n_trials, out, progress)


# ---------------------------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------------------------
def _check_bers(bers: Iterable[float | str]) -> list[float]:
    if isinstance(bers, (str, bytes, int, float)) or not isinstance(bers, Iterable):
        raise TypeError(f"bers must be a list of bit-error rates such as [1e-6, 1e-5], got {bers!r}")
    values = sorted({as_rate(b, "each BER of bers") for b in bers})
    if not values:
        raise ValueError("bers is empty; give at least one bit-error rate, e.g. bers=[1e-5]")
    return values


def _check_trials(trials: int) -> int:
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be an integer >= 1 (>= 2 for a confidence interval), got {trials!r}")
    return trials


def _check_data(data: Any) -> None:
    if isinstance(data, torch.Tensor) or not isinstance(data, Iterable):
        raise TypeError(
            f"data must be an iterable of (inputs, targets) batches, got {type(data).__name__}; "
            "e.g. a DataLoader(TensorDataset(x, y), batch_size=256) or "
            "list(zip(x.split(256), y.split(256)))"
        )
    if isinstance(data, Iterator):
        raise TypeError(
            f"data is a one-shot iterator ({type(data).__name__}), but sweep iterates it once per "
            "trial, so every trial after the first would see no data. Pass something that can "
            "be iterated again: a list of batches (list(data)) or a DataLoader."
        )


def _run_config(
    cfg: FaultConfig | Mapping[str, Any] | str | os.PathLike[str] | None,
    mode: str | None,
    seed: int | None,
) -> FaultConfig:
    base = load_config(cfg)
    if isinstance(base.ber, Mapping):
        raise ValueError(
            "cfg.ber is a per-layer mapping, but a sweep sets one BER for all fault sites; "
            "choose the layers with include=, exclude= or only= and give ber as one number"
        )
    if base.count is not None or base.faults is not None:
        raise ValueError(
            "cfg sets count= or faults=, which fix the faults regardless of the BER; a BER sweep "
            "needs random bit errors (leave count and faults unset)"
        )
    if mode is not None and mode not in ("persistent", "transient"):
        raise ValueError(f"mode must be 'persistent' or 'transient', got {mode!r}")
    return base.replace(
        ber=0.0,
        mode=mode or "persistent",
        seed=base.seed if seed is None else seed,
    )


def _resolve_device(device: str | torch.device | None, model: nn.Module) -> torch.device:
    if device is not None:
        try:
            return torch.device(device)
        except (RuntimeError, TypeError) as e:
            raise ValueError(f"device {device!r} is not a torch device (such as 'cpu' or 'cuda:0')") from e
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")


# ---------------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Outcome:
    """A finished trial, or a failure, as gathered from a rank."""

    record: TrialRecord | None
    batches: int = 0
    examples: int = 0
    error: str = ""


def _to_device(x: Any, device: torch.device) -> Any:
    if isinstance(x, torch.Tensor):
        return x.to(device, non_blocking=True)
    if isinstance(x, (tuple, list)):
        return type(x)(_to_device(v, device) for v in x)
    return x


class _Run:
    def __init__(
        self,
        model: nn.Module,
        cfg: FaultConfig,
        data: Iterable[Any],
        metric: Metric,
        device: torch.device,
        workers: Workers,
    ) -> None:
        self.model = model
        self.cfg = cfg
        self.data = data
        self.metric = metric
        self.device = device
        self.workers = workers
        self.out_path = Path(RESULTS_NAME)
        net = model
        if any(t.device != device for t in (*model.parameters(), *model.buffers())):
            log.info("copying the model to %s once (the original stays where it is)", device)
            net = copy.deepcopy(model).to(device)
        self.gm = transform(net, cfg)
        self.gm.eval()
        set_ber(self.gm, 0.0)  # fails early (and clearly) on absolute bit_rates
        self.identity = SweepIdentity(
            config=cfg.to_dict(),
            model=model_fingerprint(model, self.gm),
            metric=metric.name,
            label=metric.label,
            mode=cfg.mode,
            seed=cfg.seed,
        )

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self) -> Accumulator:
        acc = Accumulator(self.metric)
        for i, batch in enumerate(self.data):
            if not isinstance(batch, (tuple, list)) or len(batch) != 2:
                raise TypeError(
                    f"batch {i} of data is a {type(batch).__name__}"
                    f"{f' of length {len(batch)}' if isinstance(batch, (tuple, list)) else ''}; "
                    "each batch must be a pair (inputs, targets)"
                )
            inputs, targets = batch
            if not isinstance(targets, torch.Tensor):
                raise TypeError(f"batch {i}: targets must be a tensor, got {type(targets).__name__}")
            inputs = _to_device(inputs, self.device)
            targets = targets.to(self.device, non_blocking=True)
            outputs = self.gm(*inputs) if isinstance(inputs, (tuple, list)) else self.gm(inputs)
            acc.add(outputs, targets)
        return acc

    def trial(self, ber: float, index: int) -> _Outcome:
        seed = trial_seed(self.cfg.seed, ber, index)
        set_ber(self.gm, ber)
        resample(self.gm, seed=seed)
        reset_stats(self.gm)
        t0 = time.perf_counter()
        acc = self.evaluate()
        value = acc.value()
        seconds = time.perf_counter() - t0
        total = stats(self.gm).total
        record = TrialRecord(
            ber=ber,
            trial=index,
            seed=seed,
            value=value,
            events=total.events,
            changed_weights=total.changed_weights,
            passes=total.passes,
            observed_ber=total.observed_rate,
            seconds=seconds,
        )
        return _Outcome(record, acc.batches, acc.examples)

    def baseline(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        with disabled(self.gm):
            acc = self.evaluate()
        value = acc.value()
        return {
            "value": value,
            "batches": acc.batches,
            "examples": acc.examples,
            "seconds": time.perf_counter() - t0,
        }

    def _baseline_everywhere(self) -> dict[str, Any]:
        """The baseline, computed on every rank; rank 0's value is used. An error on any rank
        is raised on all of them (instead of leaving the others waiting)."""
        w = self.workers
        if w.world == 1:
            return self.baseline()
        try:
            mine: dict[str, Any] | str = self.baseline()
        except Exception as e:
            mine = f"{type(e).__name__}: {e}"
        gathered = w.all_gather(mine)
        for r, got in enumerate(gathered):
            if isinstance(got, str):
                raise RuntimeError(f"rank {r} failed on the baseline: {got}")
        first = gathered[0]
        if not isinstance(first, dict):  # for mypy; a str was raised above
            raise RuntimeError("rank 0 sent no baseline")
        return first

    # ------------------------------------------------------------------ the sweep
    def execute(
        self, bers: list[float], trials: int, out: str | os.PathLike[str] | None, progress: bool
    ) -> SweepResult:
        w = self.workers
        if out is not None:
            self.out_path = Path(out) / RESULTS_NAME
        files = ResultsFile(out) if out is not None and w.main else None
        stored: StoredSweep | None = None
        if out is not None:
            opened: StoredSweep | BaseException | None = None
            if files is not None:
                try:
                    opened = files.open(self.identity)
                except Exception as e:  # raised on every rank below
                    opened = e
            opened = w.broadcast(opened)
            if isinstance(opened, BaseException):
                raise opened
            stored = opened
        from_file = stored is not None and stored.baseline is not None
        if stored is not None and stored.baseline is not None:
            base = dict(stored.baseline)
            log.info("reusing the stored baseline %s = %.4g", self.metric.name, base["value"])
        else:
            base = self._baseline_everywhere()
            if files is not None:
                if stored is None:
                    files.start(self.identity, base)
                else:
                    files.add_baseline(base)
        done = dict(stored.records) if stored is not None else {}
        pairs = [(b, t) for b in bers for t in range(trials)]
        pending = [p for p in pairs if p not in done]
        if done:
            log.info("%d of %d pairs already done; running %d", len(pairs) - len(pending),
                     len(pairs), len(pending))
        new = self._run_pending(pending, base, from_file, files, progress)
        records = {**done, **new}
        return SweepResult(
            metric=self.metric.name,
            label=self.metric.label,
            baseline=float(base["value"]),
            records=tuple(records[p] for p in pairs),
            mode=self.cfg.mode,
            seed=self.cfg.seed,
            config=normalised(self.cfg.to_dict()),
            meta={
                "fxfault": __version__,
                "model": normalised(self.identity.model),
                "data": {"batches": base["batches"], "examples": base["examples"]},
            },
        )

    def _run_pending(
        self,
        pending: Sequence[tuple[float, int]],
        base: Mapping[str, Any],
        from_file: bool,
        files: ResultsFile | None,
        show: bool,
    ) -> dict[tuple[float, int], TrialRecord]:
        from tqdm.auto import tqdm

        w = self.workers
        out: dict[tuple[float, int], TrialRecord] = {}
        bar = tqdm(total=len(pending), desc="sweep", unit="trial", dynamic_ncols=True,
                   disable=not (show and w.main))
        try:
            for start in range(0, len(pending), w.world):
                mine = start + w.rank
                outcome = _Outcome(None)
                if mine < len(pending):
                    try:
                        outcome = self.trial(*pending[mine])
                    except Exception as e:
                        if w.world == 1:
                            raise
                        outcome = _Outcome(None, error=f"{type(e).__name__}: {e}")
                gathered = w.all_gather(outcome)
                failed = [(r, o) for r, o in enumerate(gathered) if o.error]
                if failed:
                    r, o = failed[0]
                    raise RuntimeError(f"rank {r} failed on (BER, trial) {pending[start + r]}: {o.error}")
                finished = [o for o in gathered if o.record is not None]
                for o in finished:
                    self._check_data_size(o, base, from_file)
                records = [o.record for o in finished if o.record is not None]
                if files is not None:
                    files.add(records)
                out.update((r.key, r) for r in records)
                if records:
                    last = records[-1]
                    bar.set_postfix_str(f"BER {last.ber:.0e}: {self.metric.name} {last.value:.4g}")
                bar.update(len(finished))
        finally:
            bar.close()
        return out

    def _check_data_size(self, o: _Outcome, base: Mapping[str, Any], from_file: bool) -> None:
        if (o.batches, o.examples) == (base.get("batches"), base.get("examples")):
            return
        now = f"{o.batches} batches / {o.examples} examples"
        then = f"{base.get('batches')} batches / {base.get('examples')} examples"
        if from_file:
            raise ResultsMismatchError(
                f"the data differ from those of the stored results in {str(self.out_path)!r}: "
                f"{now} now, "
                f"{then} stored. Resume with the same data, or use another output folder "
                "(--out / out=) or delete the file to start over."
            )
        raise ValueError(
            f"data gave {now} in a trial but {then} for the baseline; data must yield the "
            "same batches every time it is iterated (no one-shot streams, no drop_last with "
            "a changing sampler)"
        )
