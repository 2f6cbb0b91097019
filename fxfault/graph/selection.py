"""Which matches become fault sites, and under which names.

A *stored tensor* has exactly one site, however often the graph reads it (a layer called twice,
tied weights): matches are grouped by the tensor object they read, and the first read names the
site. The config's ``include`` / ``exclude`` / ``only`` / ``skip_first_last`` then choose among
the sites by name, and per-site fields are checked to name existing sites.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from ..config import FaultConfig, check_patterns
from ..errors import ConfigError, UnsupportedQuantizerError
from ..quantizers.base import MatchContext, SiteMatch

__all__ = ["Planned", "fixed_faults", "group_by_tensor", "select"]

#: per-site fields whose mappings must name existing sites
PER_SITE_FIELDS = ("ber", "bit_rates", "fault", "encoding", "gradient")


@dataclass
class Planned:
    """One site to insert: its first read (which gets the chain) and later reads of the same
    stored tensor (which read the chain's output)."""

    name: str
    first: SiteMatch
    others: list[SiteMatch] = field(default_factory=list)


def _stored_object(m: SiteMatch, ctx: MatchContext) -> Any:
    if m.stored is None:
        return m.node
    try:
        return ctx.attr(m.stored)
    except AttributeError:
        return m.stored


def group_by_tensor(matches: list[SiteMatch], ctx: MatchContext) -> list[Planned]:
    """One :class:`Planned` site per stored tensor, in graph order, named after its layer."""
    out: list[Planned] = []
    by_id: dict[int, Planned] = {}
    for m in matches:
        if m.tensor == "activation":  # a new tensor on every call: a site per quantizer call
            out.append(Planned(f"{m.layer}:act", m))
            continue
        obj = _stored_object(m, ctx)
        planned = by_id.get(id(obj))
        if planned is None:
            planned = Planned(m.layer, m)
            by_id[id(obj)] = planned
            out.append(planned)
            continue
        a, b = planned.first, m
        if (a.quantizer, a.bits, a.qmin, a.qmax, a.domain) != (b.quantizer, b.bits, b.qmin, b.qmax, b.domain):
            raise UnsupportedQuantizerError(
                f"the stored tensor {a.stored or a.layer!r} is read through two different "
                f"quantizers ({a.quantizer} {a.bits}-bit [{a.qmin}, {a.qmax}] for layer "
                f"{a.layer!r}, {b.quantizer} {b.bits}-bit [{b.qmin}, {b.qmax}] for layer "
                f"{b.layer!r}); a stored tensor has one format in memory, so fxfault needs one "
                "quantizer per weight. Give both layers the same width."
            )
        planned.others.append(m)
    # names stay unique when two stored tensors belong to one layer
    seen: dict[str, int] = {}
    for p in out:
        n = seen.get(p.name, 0)
        seen[p.name] = n + 1
        if n:
            p.name = f"{p.name}#{n}"
    return out


def select(cfg: FaultConfig, planned: list[Planned]) -> list[Planned]:
    """The sites that ``include`` / ``exclude`` / ``skip_first_last`` / ``only`` keep."""
    names = [p.name for p in planned]
    kind = "fault site"
    if cfg.include is not None:
        check_patterns("include", cfg.include, names, kind=kind)
    check_patterns("exclude", cfg.exclude, names, kind=kind)
    for field_name in PER_SITE_FIELDS:
        value = getattr(cfg, field_name)
        if isinstance(value, Mapping) and not (field_name == "encoding" and all(isinstance(k, int) for k in value)):
            check_patterns(field_name, value, names, kind=kind)
    keep = list(planned)
    if cfg.include is not None:
        keep = [p for p in keep if any(fnmatchcase(p.name, pat) for pat in cfg.include)]
    keep = [p for p in keep if not any(fnmatchcase(p.name, pat) for pat in cfg.exclude)]
    if cfg.skip_first_last and keep:
        ends = (planned[0].name, planned[-1].name)
        keep = [p for p in keep if p.name not in ends]
    if cfg.only is not None:
        check_patterns("only", [cfg.only], names, kind=kind)
        hits = [p for p in keep if p.name == cfg.only or fnmatchcase(p.name, cfg.only)]
        if len(hits) != 1:
            raise ConfigError(
                f"only={cfg.only!r} must select exactly one site after include/exclude/"
                f"skip_first_last, but it selects {[p.name for p in hits]}"
            )
        keep = hits
    if not keep:
        raise ConfigError(
            f"the layer selection (include={cfg.include}, exclude={list(cfg.exclude)}, "
            f"only={cfg.only}, skip_first_last={cfg.skip_first_last}) leaves no fault site; "
            f"the sites are {names}"
        )
    return keep


def fixed_faults(cfg: FaultConfig, names: list[str]) -> dict[str, list[tuple[int, int]]]:
    """``cfg.faults`` grouped by site, checking that each names a selected site."""
    if cfg.faults is None:
        return {}
    out: dict[str, list[tuple[int, int]]] = {name: [] for name in names}
    for i, (site, idx, bit) in enumerate(cfg.faults):
        if site not in out:
            check_patterns(f"faults[{i}]", [site], names, kind="selected fault site")
            raise ConfigError(f"faults[{i}] names {site!r}, which is not a selected site (sites: {names})")
        out[site].append((idx, bit))
    return out
