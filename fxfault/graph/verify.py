"""Grid verification: check, when transforming, that each quantizer's output lies on the grid
its adapter reads (scale, zero point, code range), so that a wrong adapter fails loudly instead
of injecting faults into codes that do not exist.

The check evaluates the quantizer and grid nodes on *copies* of the modules involved (a
torch.ao observer, for instance, updates its own buffers when it runs), in float64, a slab of
output channels at a time (bounded temporary memory).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import fx, nn

from ..errors import QuantizerMismatchError
from .chains import PLAN_MODULE

__all__ = ["verify_grid"]


def verify_grid(gm: fx.GraphModule, name: str, quantizer: str, qmin: int, qmax: int, bits: int,
                q: fx.Node, scale: fx.Node, zero_point: fx.Node | None) -> None:
    """Raise :class:`QuantizerMismatchError` unless ``q``'s value is ``(code - zero_point) *
    scale`` with integer codes in ``[qmin, qmax]`` (no check when the nodes need inputs)."""
    want = [q, scale] + ([zero_point] if zero_point is not None else [])
    values = _evaluate(gm, want)
    if values is None:
        return
    wq, s = values[0], values[1]
    zp = values[2] if len(values) > 2 else None
    if not isinstance(wq, torch.Tensor) or not isinstance(s, torch.Tensor):
        return
    s64 = s.detach().to(torch.float64)
    if (s64 <= 0).any() or not torch.isfinite(s64).all():
        raise QuantizerMismatchError(
            f"site {name!r}: the scale read by the {quantizer} adapter is not a positive "
            f"finite number (min {s64.min().item():.3g})"
        )
    w = wq.detach()
    shape = tuple(w.shape)
    sb = torch.broadcast_to(s64, shape) if s64.dim() else s64
    zb = None
    if zp is not None:
        z64 = zp.detach().to(torch.float64)
        zb = torch.broadcast_to(z64, shape) if z64.dim() else z64
    per = max(1, (1 << 20) // max(1, w[0].numel() if w.dim() else 1))
    off, lo, hi, peak = 0.0, float("inf"), float("-inf"), 0.0
    rows = shape[0] if w.dim() else 1
    for r0 in range(0, rows, per):
        sl = slice(r0, r0 + per)
        part = w[sl].to(torch.float64) if w.dim() else w.to(torch.float64)
        if not torch.isfinite(part).all():
            raise QuantizerMismatchError(f"site {name!r}: the quantized weight holds NaN or Inf")
        ratio = part / (sb[sl] if sb.dim() else sb)
        codes = torch.round(ratio)
        off = max(off, (ratio - codes).abs().max().item())
        peak = max(peak, ratio.abs().max().item())
        if zb is not None:
            codes = codes + (zb[sl] if zb.dim() else zb)
        lo, hi = min(lo, codes.min().item()), max(hi, codes.max().item())
    # a weight stored in a narrow float (bfloat16, float16) holds code * scale rounded to its
    # precision: up to |code| * unit roundoff steps off the grid
    unit = torch.finfo(w.dtype).eps / 2 if w.dtype.is_floating_point else 0.0
    tol = 1e-3 + 1.01 * peak * unit
    if tol >= 0.5:
        raise QuantizerMismatchError(
            f"site {name!r}: {w.dtype} weights cannot hold the {bits}-bit codes of this layer "
            f"exactly (codes up to {peak:.0f} steps, rounded to {unit:.2g} relative precision, "
            "can land nearer another code); run fault injection on the model in float32 "
            "(model.float()), or give this layer fewer bits"
        )
    if off > tol or lo < qmin or hi > qmax:
        raise QuantizerMismatchError(
            f"site {name!r}: the output of the {quantizer} quantizer is not on the grid "
            f"its adapter reads (scale from {scale.format_node()}, codes "
            f"[{qmin}, {qmax}]): off-grid by up to {off:.3g} steps, codes span "
            f"[{lo:g}, {hi:g}]. The adapter reads the wrong scale or range for this "
            "quantizer; register a dedicated one with fxfault.register_quantizer(...)"
        )


def _evaluate(gm: fx.GraphModule, want: list[fx.Node]) -> list[Any] | None:
    """Evaluate ``want`` with copies of the modules involved; None if inputs are needed."""
    needed: set[fx.Node] = set()
    stack = list(want)
    while stack:
        n = stack.pop()
        if n in needed:
            continue
        if n.op == "placeholder":
            return None
        needed.add(n)
        stack.extend(n.all_input_nodes)
    copies: dict[str, Any] = {}

    def module_copy(target: str) -> Any:
        if target not in copies:
            copies[target] = copy.deepcopy(gm.get_submodule(target))
        return copies[target]

    env: dict[fx.Node, Any] = {}
    with torch.no_grad():
        for n in gm.graph.nodes:
            if n not in needed:
                continue
            args = fx.node.map_arg(n.args, lambda a: env[a])
            kwargs = fx.node.map_arg(n.kwargs, lambda a: env[a])
            if n.op == "get_attr":
                target = str(n.target)
                # read through a module copy when one exists (the copy may have updated its
                # own buffers while it ran, like a torch.ao observer does)
                owner, _, field = target.rpartition(".")
                if owner in copies:
                    env[n] = getattr(copies[owner], field)
                    continue
                obj: Any = gm
                for part in target.split("."):
                    obj = getattr(obj, part)
                env[n] = module_copy(target) if isinstance(obj, nn.Module) else obj
            elif n.op == "call_module" and str(n.target) == PLAN_MODULE:
                env[n] = None  # no pass: the ops compute without buffers
            elif n.op == "call_module":
                env[n] = module_copy(str(n.target))(*args, **kwargs)
            elif n.op == "call_function":
                env[n] = n.target(*args, **kwargs)  # type: ignore[operator]
            elif n.op == "call_method":
                self_obj, *rest = args
                env[n] = getattr(self_obj, str(n.target))(*rest, **kwargs)
    return [env[n] for n in want]
