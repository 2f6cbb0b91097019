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

from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from .control import fault_sites
from .faults.rates import is_absolute
from .faults.site import BitFlip

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
    kind: str
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

    @property
    def exposed_bits(self) -> int:
        """Bits of this site at risk in one forward pass."""
        return self.numel * self.bits


def rate_text(site: BitFlip) -> str:
    """A compact description of a site's fault rates, for tables and graph labels.

    ``"1e-06"`` for a uniform bit-error rate, ``"msb_only@1e-06"`` for a preset,
    ``"dual:0.0001,1e-06"`` for absolute presets, per-bit lists LSB first, ``"count share 0.3"``
    for a share of ``FaultConfig(count=n)`` and ``"list of 5"`` for an explicit fault list.

    Example::

        >>> rate_text(fxfault.control.fault_sites(faulty)[0])
        '1e-06'
    """
    if site.fixed_faults is not None:
        return f"list of {len(site.fixed_faults)}"
    if site.count_member and site.plan.count is not None:
        return f"count share {site.expected_events():.3g}"
    spec = site.bit_rates
    if spec is None:
        return f"{site.ber:.3g}"
    if isinstance(spec, str):
        return spec if is_absolute(spec) else f"{spec}@{site.ber:.3g}"
    return "[" + ",".join(f"{r:.2g}" for r in site.rates) + "] LSB first"


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
                kind=s.kind,
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
        return _format_table(rows, numeric={3, 6, 7, 8})

    def __str__(self) -> str:
        return self.table()


def _switched_on(site: BitFlip) -> bool:
    """Whether the site injects in the model's current mode (its rates aside)."""
    return bool(site.enabled and (site.in_training if site.training else site.in_inference))


def _format_table(rows: list[tuple[str, ...]], numeric: set[int]) -> str:
    """Aligned text: numbers right, text left; rules under the head and above the last row."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]

    def fmt(r: tuple[str, ...]) -> str:
        cells = (c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    body = [fmt(r) for r in rows[1:]]
    return "\n".join([fmt(rows[0]), rule, *body[:-1], rule, *body[-1:]])


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
                quantizer=s.kind,
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
        bits=0,
        encoding="",
        rates="",
        weights=sum(r.weights for r in rows),
        exposed_bits=sum(r.exposed_bits for r in rows),
        expected_faults=sum(r.expected_faults for r in rows),
        active=any(r.active for r in rows),
    )
    return Summary(tuple(rows), total)
