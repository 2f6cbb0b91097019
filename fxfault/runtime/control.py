"""Run-time control of a transformed model, without re-tracing.

Example::

    >>> faulty = fxfault.transform(model, ber=1e-3, seed=0)
    >>> with fxfault.disabled(faulty):       # a clean forward of the same graph
    ...     clean_out = faulty(x)
    >>> fxfault.set_ber(faulty, 1e-2)        # all sites
    >>> fxfault.resample(faulty, seed=3)     # a new trial / fault map
    >>> print(fxfault.stats(faulty).total.passes)
    1
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from fnmatch import fnmatchcase
from typing import Any

from torch import nn

from ..config import as_rate, check_patterns
from ..config.fields import as_int
from ..errors import ConfigError
from ..faults.site import BitFlip
from ..faults.stats import SiteStats
from ..graph.access import fault_sites, plan_of
from ..text import format_table

__all__ = [
    "FaultStats",
    "SiteCounters",
    "clear_cache",
    "disabled",
    "fault_list",
    "fault_sites",
    "plan_of",
    "resample",
    "reset_stats",
    "select_sites",
    "set_ber",
    "set_enabled",
    "stats",
]

Layers = str | Iterable[str] | None


def select_sites(gm: nn.Module, layers: Layers, what: str, tensor: str | None = None) -> list[BitFlip]:
    """The sites of ``gm`` named by ``layers`` (globs; ``None``: all), of one ``tensor`` kind."""
    sites = fault_sites(gm)
    if tensor is not None:
        sites = [s for s in sites if s.tensor == tensor]
    if layers is None:
        return sites
    pats = [layers] if isinstance(layers, str) else list(layers)
    for p in pats:
        if not isinstance(p, str):
            raise TypeError(f"{what}: layers must be site names or globs (strings), got {p!r}")
    names = [s.name for s in sites]
    check_patterns(what, pats, names, kind="fault site")
    return [s for s in sites if any(s.name == p or fnmatchcase(s.name, p) for p in pats)]


@contextlib.contextmanager
def disabled(gm: nn.Module, layers: Layers = None) -> Iterator[nn.Module]:
    """Turn the faults of ``gm`` (or of the ``layers`` given) off inside the block.

    The graph is unchanged; forward passes inside are bit-identical to the original model's.
    """
    sites = select_sites(gm, layers, "disabled(layers=...)")
    before = [s.enabled for s in sites]
    for s in sites:
        s.enabled = False
    try:
        yield gm
    finally:
        for s, flag in zip(sites, before):
            s.enabled = flag


def set_enabled(gm: nn.Module, enabled: bool, layers: Layers = None) -> None:
    """Switch the faults of all sites (or of ``layers``) on or off until switched again."""
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be True or False, got {enabled!r}")
    for s in select_sites(gm, layers, "set_enabled(layers=...)"):
        s.enabled = enabled


def set_ber(gm: nn.Module, ber: Any, layers: Layers = None, *, kind: str | None = None) -> None:
    """Set the bit-error rate of all sites (or of ``layers``; with ``kind="weight"`` or
    ``"activation"``, of the sites of that kind only) without re-tracing.

    Persistent fault maps are redrawn at the new rate with the same trial seed; the clean
    eval-mode buffers stay valid.
    """
    value = as_rate(ber, "ber")
    if kind is not None and kind not in ("weight", "activation"):
        raise ConfigError(f"kind must be 'weight', 'activation' or None (all sites), got {kind!r}")
    for s in select_sites(gm, layers, "set_ber(layers=...)", tensor=kind):
        s.set_ber(value)


def _seed(seed: Any) -> int | None:
    return None if seed is None else as_int(seed, "seed", minimum=0)


def resample(gm: nn.Module, seed: int | None = None) -> None:
    """Start a new trial: new persistent fault maps, restarted transient streams.

    With ``seed`` the trial is reproducible from that seed alone; without it the next trial of
    the current seed is drawn.
    """
    plan = plan_of(gm)
    plan.resample(_seed(seed))
    for s in fault_sites(gm):
        s.changed()


def fault_list(gm: nn.Module, pass_index: int | None = None) -> list[tuple[str, int, int]]:
    """The faults of a forward pass as ``(site, flat_index, bit)`` triples (bit 0 = LSB).

    By default the faults of the *next* pass (for persistent maps: the current trial).
    ``FaultConfig(faults=fxfault.fault_list(gm))`` replays them exactly.
    """
    out: list[tuple[str, int, int]] = []
    for s in fault_sites(gm):
        if s.unit != "bit" or s.tensor != "weight":
            continue
        index, masks, _ = s.fault_map(pass_index)
        for w, m in zip(index.tolist(), masks.tolist()):
            out.extend((s.name, w, b) for b in range(s.bits) if (m >> b) & 1)
    return out


@dataclass
class SiteCounters:
    """Statistics of one site (or the total), as plain numbers."""

    name: str
    bits: int
    weights: int
    passes: int
    events: int
    changed_bits: int
    changed_weights: int
    exposed_bits: int
    configured_rate: float
    observed_rate: float


@dataclass
class FaultStats:
    """Per-site and total fault statistics; ``print(stats)`` shows a table."""

    sites: list[SiteCounters]
    total: SiteCounters

    def to_dict(self) -> dict[str, Any]:
        return {"sites": [asdict(s) for s in self.sites], "total": asdict(self.total)}

    def table(self) -> str:
        head = ("site", "bits", "weights", "passes", "events", "chg bits", "chg wts", "exposed",
                "observed", "configured")
        rows = [head]
        for c in [*self.sites, self.total]:
            rows.append(
                (c.name, str(c.bits) if c.bits else "", str(c.weights), str(c.passes),
                 str(c.events), str(c.changed_bits), str(c.changed_weights), str(c.exposed_bits),
                 f"{c.observed_rate:.3e}", f"{c.configured_rate:.3e}")
            )
        return format_table(rows, total=True)

    def __str__(self) -> str:
        return self.table()


def stats(gm: nn.Module) -> FaultStats:
    """Fault statistics per site and in total since the last :func:`reset_stats`."""
    rows: list[SiteCounters] = []
    for s in fault_sites(gm):
        st = s.stats
        st.settle()
        rows.append(
            SiteCounters(
                name=s.name,
                bits=s.bits,
                weights=s.numel,
                passes=st.passes,
                events=st.events,
                changed_bits=st.changed_bits,
                changed_weights=st.changed_weights,
                exposed_bits=st.exposed_bits,
                configured_rate=s.configured_rate(),
                observed_rate=st.events / st.exposed_bits if st.exposed_bits else 0.0,
            )
        )
    exposed = sum(r.exposed_bits for r in rows)
    events = sum(r.events for r in rows)
    if exposed:
        configured = sum(r.configured_rate * r.exposed_bits for r in rows) / exposed
    else:
        bits = sum(r.weights * r.bits for r in rows)
        configured = sum(r.configured_rate * r.weights * r.bits for r in rows) / bits if bits else 0.0
    total = SiteCounters(
        name="total",
        bits=0,
        weights=sum(r.weights for r in rows),
        passes=max((r.passes for r in rows), default=0),
        events=events,
        changed_bits=sum(r.changed_bits for r in rows),
        changed_weights=sum(r.changed_weights for r in rows),
        exposed_bits=exposed,
        configured_rate=configured,
        observed_rate=events / exposed if exposed else 0.0,
    )
    return FaultStats(rows, total)


def clear_cache(gm: nn.Module) -> None:
    """Forget every site's eval-mode buffers (clean codes, faulted buffers, drawn maps).

    Buffers are keyed by the tensors they were computed from and their version counters, which
    every in-place write through the tensor bumps (optimizer steps, ``load_state_dict``,
    ``w.add_()``). Writes through ``.data`` (``p.data.add_(...)``, ``p.data = ...``) bypass
    the counter: after such a write, in eval mode, call this. Fault maps are unchanged (they
    are redrawn identically).
    """
    for s in fault_sites(gm):
        s.clear_cache()


def reset_stats(gm: nn.Module) -> None:
    """Zero the statistics of every site."""
    for s in fault_sites(gm):
        s.stats = SiteStats()
