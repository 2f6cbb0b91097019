"""Fault-aware training helpers: TRADES-style losses, BER schedules, SAM steps.

The transformed model trains as it is: an optimizer over ``faulty.parameters()`` updates your
model's weights and LSQ step sizes (they are shared), the forward pass sees faulted weights, and
the backward pass gives the gradient of the clean quantized weights (straight-through). These
helpers cover the recipes around that.

Example::

    >>> faulty = fxfault.transform(model, FaultConfig(ber=1e-3))
    >>> schedule = BerSchedule(1e-3, kind="exp", start=1e-6, warmup=5)
    >>> for epoch in range(10):
    ...     schedule.apply(faulty, epoch)
    ...     for x, y in loader:
    ...         loss, clean, noisy = trades_loss(faulty, x, y, F.cross_entropy, alpha=1.0, beta=0.5)
    ...         opt.zero_grad(); loss.backward(); opt.step()
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..config import as_rate
from ..errors import ConfigError
from .control import disabled, fault_sites, plan_of, set_ber

__all__ = [
    "BerSchedule",
    "clean_quantized_weights",
    "recalibrate_batchnorm",
    "sam_step",
    "same_faults",
    "trades_loss",
]


def trades_loss(
    faulty: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    alpha: float = 1.0,
    beta: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``alpha * criterion(clean forward) + beta * criterion(faulted forward)`` in one step.

    The clean forward runs the same graph with faults off (``fxfault.disabled``), so its
    gradient is the clean model's; the faulted forward's gradient is the straight-through one.
    Returns ``(loss, clean_loss, faulty_loss)``; only ``loss`` needs ``backward()``.
    """
    for name, v in (("alpha", alpha), ("beta", beta)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigError(f"{name} must be a finite number, got {v!r}")
    with disabled(faulty):
        clean = criterion(faulty(inputs), targets)
    noisy = criterion(faulty(inputs), targets)
    return alpha * clean + beta * noisy, clean, noisy


@dataclass
class BerSchedule:
    """A BER per epoch (or per step): ``constant``, ``linear`` or ``exp`` warm-up, or ``step``.

    * ``constant``: ``target`` throughout.
    * ``linear``: from ``start`` to ``target`` linearly over ``warmup`` epochs, then ``target``.
    * ``exp``: from ``start`` to ``target`` geometrically (linear in log BER) over ``warmup``.
    * ``step``: ``milestones=[(epoch, ber), ...]``: the BER of the last milestone reached
      (``start`` before the first).

    Example::

        >>> s = BerSchedule(1e-3, kind="exp", start=1e-6, warmup=3)
        >>> [f"{s(t):.0e}" for t in range(5)]
        ['1e-06', '1e-05', '1e-04', '1e-03', '1e-03']
    """

    target: float
    kind: str = "constant"
    start: float = 0.0
    warmup: int = 0
    milestones: Sequence[tuple[int, float]] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        self.target = as_rate(self.target, "BerSchedule target")
        self.start = as_rate(self.start, "BerSchedule start")
        kinds = ("constant", "linear", "exp", "step")
        if self.kind not in kinds:
            raise ConfigError(f"BerSchedule kind must be one of {kinds}, got {self.kind!r}")
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or self.warmup < 0:
            raise ConfigError(f"BerSchedule warmup must be a non-negative integer, got {self.warmup!r}")
        if self.kind in ("linear", "exp") and self.warmup == 0:
            raise ConfigError(f"a {self.kind!r} warm-up needs warmup >= 1 (epochs or steps)")
        if self.kind == "exp" and self.start <= 0:
            raise ConfigError("an 'exp' warm-up needs start > 0 (it is linear in log BER)")
        if self.kind == "step":
            ms = [(int(t), as_rate(b, "BerSchedule milestone")) for t, b in self.milestones]
            if not ms or [t for t, _ in ms] != sorted(t for t, _ in ms):
                raise ConfigError("a 'step' schedule needs milestones=[(epoch, ber), ...] in order")
            self.milestones = tuple(ms)

    def __call__(self, t: int) -> float:
        """The BER at epoch (or step) ``t``."""
        if self.kind == "constant":
            return self.target
        if self.kind == "step":
            ber = self.start
            for when, b in self.milestones:
                if t >= when:
                    ber = b
            return ber
        frac = min(max(t, 0) / self.warmup, 1.0)
        if self.kind == "linear":
            return self.start + (self.target - self.start) * frac
        return math.exp(math.log(self.start) + (math.log(self.target) - math.log(self.start)) * frac)

    def apply(self, faulty: nn.Module, t: int, layers: str | Sequence[str] | None = None) -> float:
        """Set the BER of ``faulty`` (or of ``layers``) for epoch/step ``t``; returns it."""
        ber = self(t)
        set_ber(faulty, ber, layers=layers)
        return ber


@contextlib.contextmanager
def same_faults(faulty: nn.Module) -> Iterator[nn.Module]:
    """Every forward pass inside the block sees the faults of the first one.

    Transient faults are drawn per pass from ``(seed, trial, pass)``; inside the block every
    pass gets the index of the pass that was next on entry. After the block the streams go on
    as if the block had been one pass. (Persistent maps are the same on every pass anyway.)
    """
    plan = plan_of(faulty)
    plan.hold()
    try:
        yield faulty
    finally:
        plan.release()


@contextlib.contextmanager
def clean_quantized_weights(faulty: nn.Module) -> Iterator[dict[str, torch.Tensor]]:
    """Collect, per site, the *clean* quantized weight of each forward pass inside the block,
    with ``retain_grad()`` — what SAM-style recipes and our users' ``quantized_weight`` need.

    After ``backward()``, ``weights[site].grad`` is the gradient with respect to the clean
    quantized weight (the straight-through gradient the faulted forward produced).
    """
    sites = fault_sites(faulty)
    weights: dict[str, torch.Tensor] = {}
    for s in sites:
        s.collect_clean(weights)
    try:
        yield weights
    finally:
        for s in sites:
            s.collect_clean(None)


def sam_step(
    faulty: nn.Module,
    closure: Callable[[], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    *,
    rho: float = 0.05,
    share_faults: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One sharpness-aware minimisation step (Foret et al.) on the faulty model.

    ``closure()`` runs a forward pass and returns the loss (it must not call ``backward``).
    The ascent forward computes the gradient, the weights move by ``rho * g / ||g||``, the
    descent forward computes the gradient there, the weights move back, and ``optimizer``
    steps with the descent gradient.

    ``share_faults=True`` makes both forwards see the same faults (the ascent direction is then
    computed for the fault map the descent is evaluated on); ``False`` draws new faults for the
    second forward, as an injector hooked into the quantizer would. Persistent maps are shared
    either way. Returns ``(ascent_loss, descent_loss)``.
    """
    if not isinstance(rho, (int, float)) or isinstance(rho, bool) or rho <= 0:
        raise ConfigError(f"rho must be a positive number, got {rho!r}")
    params = [p for g in optimizer.param_groups for p in g["params"] if p.requires_grad]
    ctx = same_faults(faulty) if share_faults else contextlib.nullcontext(faulty)
    saved: list[tuple[torch.Tensor, torch.Tensor]] = []
    try:
        with ctx:
            optimizer.zero_grad()
            first = closure()
            first.backward()
            grads = [p.grad for p in params]
            norms = [g.norm() for g in grads if g is not None]
            if not norms:
                raise ValueError(
                    "sam_step: no parameter of the optimizer got a gradient from the closure's "
                    "loss; the closure must return a loss computed by the faulty model"
                )
            scale = rho / (torch.norm(torch.stack(norms)) + 1e-12)
            with torch.no_grad():
                for p, g in zip(params, grads):
                    if g is not None:
                        saved.append((p, p.detach().clone()))
                        p.add_(g * scale)
            optimizer.zero_grad()
            second = closure()
            second.backward()
    finally:
        # the weights come back exactly (saved copies, not the perturbation subtracted), also
        # when the closure raised half-way
        with torch.no_grad():
            for p, value in saved:
                p.copy_(value)
    optimizer.step()
    return first.detach(), second.detach()


@torch.no_grad()
def recalibrate_batchnorm(faulty: nn.Module, data: Iterable[Any], *, faults: bool = False) -> int:
    """Re-estimate the BatchNorm running statistics over ``data`` (batches of ``(inputs, ...)``
    or of inputs), with faults off unless ``faults=True``.

    Fault-aware training updates the running statistics under faults; evaluated with few or no
    faults, the model then normalises with the wrong statistics. Recomputing them clean (a
    cumulative average over ``data``, in training mode, without gradients) recovers the clean
    accuracy. The statistics live in the buffers shared with your model. Returns the number of
    BatchNorm modules updated; modes and momenta are restored.
    """
    bns = [m for m in faulty.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return 0
    modes = {id(m): m.training for m in faulty.modules()}
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    ctx = contextlib.nullcontext() if faults else disabled(faulty)
    try:
        faulty.train()
        with ctx:
            for batch in data:
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                faulty(x)
    finally:
        for m, mom in zip(bns, momenta):
            m.momentum = mom
        for mod in faulty.modules():
            mod.training = modes[id(mod)]
    return len(bns)
