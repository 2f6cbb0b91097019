"""Find the fault sites and the plan of a transformed model."""

from __future__ import annotations

from torch import fx, nn

from ..faults.plan import FaultPlan
from ..faults.site import BitFlip
from .chains import PLAN_MODULE, SITES_MODULE

__all__ = ["fault_sites", "plan_of"]


def fault_sites(gm: nn.Module) -> list[BitFlip]:
    """The :class:`~fxfault.faults.BitFlip` site modules of ``gm``, in graph order."""
    container = getattr(gm, SITES_MODULE, None)
    if not isinstance(gm, fx.GraphModule) or not isinstance(container, nn.Module):
        raise TypeError(
            f"expected a model returned by fxfault.transform, got {type(gm).__name__}; "
            "call fxfault.transform(model, cfg) first"
        )
    by_target = {f"{SITES_MODULE}.{n}": m for n, m in container.named_children()}
    out: list[BitFlip] = []
    for node in gm.graph.nodes:
        if node.op == "call_module" and node.target in by_target:
            site = by_target.pop(node.target)
            if isinstance(site, BitFlip):
                out.append(site)
    out.extend(m for m in by_target.values() if isinstance(m, BitFlip))
    return out


def plan_of(gm: nn.Module) -> FaultPlan:
    """The :class:`~fxfault.faults.plan.FaultPlan` (pass clock and seeds) of ``gm``."""
    fault_sites(gm)  # raises TypeError for a model fxfault did not transform
    plan = getattr(gm, PLAN_MODULE, None)
    if not isinstance(plan, FaultPlan):
        raise TypeError("this model has no fxfault plan; call fxfault.transform(model, cfg) again")
    return plan
