"""Read what the pass did: site records.

Example::

    >>> faulty = fxfault.transform(model, ber=1e-6)
    >>> fxfault.sites(faulty)[0].nodes["flip"]
    'conv1_weight_flip'
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from .control import fault_sites

__all__ = ["SiteInfo", "sites"]


@dataclass(frozen=True)
class SiteInfo:
    """One fault site of a transformed model."""

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

    @property
    def exposed_bits(self) -> int:
        """Bits of this site at risk in one forward pass."""
        return self.numel * self.bits


def sites(gm: nn.Module) -> list[SiteInfo]:
    """Records of the fault sites of ``gm``, in graph order."""
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
            )
        )
    return out
