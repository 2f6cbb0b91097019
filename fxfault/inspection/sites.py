"""Read what the pass did: site records and a summary table.

Example::

    >>> faulty = fxfault.transform(model, ber=1e-6)
    >>> fxfault.sites(faulty)[0].nodes["flip"]
    'conv1_weight_flip'
    >>> print(fxfault.summary(faulty))          # one row per site, and a total
    site   layer  quantizer  bits  encoding  rates  weights  bits exposed  expected faults
    ...
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from ..faults.rates import describe
from ..faults.site import BitFlip
from ..graph.access import fault_sites
from ..text import format_table

__all__ = ["SiteInfo", "Summary", "SummaryRow", "rate_text", "sites", "summary"]


@dataclass(frozen=True)
class SiteInfo:
    """One fault site of a transformed model.

    ``expected_faults`` is the expected number of fault events per forward pass at the site's
    configured rates (whether or not the site is switched on); ``active`` says whether the site
    is switched on in the model's current mode (see :func:`fxfault.disabled`, ``in_training``).
    """

    name: str
    layer: str
    quantizer: str
    bits: int
    qmin: int
    qmax: int
    shape: tuple[int, ...]
    numel: int
    ber: float
    rates: tuple[float, ...]
    encoding: str
    fault: str
    mode: str
    gradient: str
    enabled: bool
    expected_faults: float
    nodes: dict[str, str] = field(default_factory=dict)
    rates_text: str = ""
    active: bool = True
    tensor: str = "weight"

    @property
    def kind(self) -> str:
        """Deprecated alias of :attr:`quantizer` (the quantizer family)."""
        warnings.warn("SiteInfo.kind is deprecated; use SiteInfo.quantizer", DeprecationWarning, stacklevel=2)
        return self.quantizer

    @property
    def exposed_bits(self) -> int:
        """Bits of this site at risk in one forward pass."""
        return self.numel * self.bits


def rate_text(site: BitFlip) -> str:
    """A compact description of a site's fault rates (see :func:`fxfault.faults.rates.describe`).

    Example::

        >>> rate_text(fxfault.control.fault_sites(faulty)[0])
        '1e-06'
    """
    return describe(site)


def sites(gm: nn.Module) -> list[SiteInfo]:
    """Records of the fault sites of ``gm``, in graph order.

    Example::

        >>> [s.name for s in fxfault.sites(faulty)]
        ['conv1', 'conv2', 'fc']
    """
    out = []
    for s in fault_sites(gm):
        out.append(
            SiteInfo(
                name=s.name,
                layer=s.layer,
                quantizer=s.quantizer,
                tensor=s.tensor,
                bits=s.bits,
                qmin=s.qmin,
                qmax=s.qmax,
                shape=s.shape,
                numel=s.numel,
                ber=s.ber,
                rates=tuple(s.rates),
                encoding=s.encoding.name,
                fault=s.fault,
                mode=s.plan.mode,
                gradient=s.gradient,
                enabled=s.enabled,
                expected_faults=s.expected_events(),
                nodes=dict(s.nodes),
                rates_text=rate_text(s),
                active=_switched_on(s),
            )
        )
    return out


@dataclass(frozen=True)
class SummaryRow:
    """One row of a :class:`Summary`: a site, or the total (``site == "total"``, ``bits == 0``).

    ``expected_faults`` counts fault events per forward pass *at the current settings*: it is 0
    for a site that is switched off (``active`` false: :func:`fxfault.disabled`,
    ``set_enabled``, or ``in_training``/``in_inference`` in the model's current mode).
    """

    site: str
    layer: str
    quantizer: str
    bits: int
    encoding: str
    rates: str
    weights: int
    exposed_bits: int
    expected_faults: float
    active: bool
    tensor: str = "weight"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Summary:
    """Per-site rows and a total row; ``print(summary)`` shows a table.

    Example::

        >>> s = fxfault.summary(faulty)
        >>> s.total.weights == sum(r.weights for r in s.rows)
        True
    """

    rows: tuple[SummaryRow, ...]
    total: SummaryRow

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-serialisable): ``{"rows": [...], "total": {...}}``."""
        return {"rows": [r.to_dict() for r in self.rows], "total": self.total.to_dict()}

    def table(self) -> str:
        """The summary as aligned text, with the total on the last line."""
        head = ("site", "layer", "quantizer", "bits", "encoding", "rates", "weights",
                "bits exposed", "expected faults")
        rows: list[tuple[str, ...]] = [head]
        for r in [*self.rows, self.total]:
            expected = f"{r.expected_faults:.3g}" + ("" if r.active else " (off)")
            rows.append(
                (r.site, r.layer, r.quantizer, str(r.bits) if r.bits else "", r.encoding, r.rates,
                 str(r.weights), str(r.exposed_bits), expected)
            )
        return format_table(rows, right={3, 6, 7, 8}, total=True)

    def __str__(self) -> str:
        return self.table()


def _switched_on(site: BitFlip) -> bool:
    """Whether the site injects in the model's current mode (its rates aside)."""
    return bool(site.enabled and (site.in_training if site.training else site.in_inference))


def summary(gm: nn.Module) -> Summary:
    """One row per fault site of ``gm`` and a total: layer, quantizer kind, bits, encoding,
    rates, weights, bits exposed per forward pass and expected faults per forward pass.

    With the default uniform rate, a site's expected faults are ``weights * bits * ber``.

    Example::

        >>> faulty = fxfault.transform(lsq_small_cnn(), ber=1e-3)
        >>> s = fxfault.summary(faulty)
        >>> s.rows[0].site, s.rows[0].bits, s.rows[0].weights
        ('conv1', 8, 144)
        >>> round(s.rows[0].expected_faults, 3)
        1.152
    """
    rows: list[SummaryRow] = []
    for s in fault_sites(gm):
        active = _switched_on(s)
        rows.append(
            SummaryRow(
                site=s.name,
                layer=s.layer,
                quantizer=s.quantizer,
                tensor=s.tensor,
                bits=s.bits,
                encoding=s.encoding.name,
                rates=rate_text(s),
                weights=s.numel,
                exposed_bits=s.numel * s.bits,
                expected_faults=s.expected_events() if active else 0.0,
                active=active,
            )
        )
    total = SummaryRow(
        site="total",
        layer="",
        quantizer="",
        tensor="",
        bits=0,
        encoding="",
        rates="",
        weights=sum(r.weights for r in rows),
        exposed_bits=sum(r.exposed_bits for r in rows),
        expected_faults=sum(r.expected_faults for r in rows),
        active=any(r.active for r in rows),
    )
    return Summary(tuple(rows), total)
