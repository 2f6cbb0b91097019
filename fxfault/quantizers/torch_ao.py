"""Adapter for torch.ao quantization-aware training: ``weight_fake_quant`` of QAT modules.

Covers FX QAT models (``prepare_qat_fx``) and eager QAT modules (``torch.ao.nn.qat.Conv2d``,
``Linear``, ``torch.ao.nn.intrinsic.qat.ConvBnReLU2d``, ...). The QAT layers are traced through
(their parameter shapes are static, so ``_forward_approximate``'s BatchNorm folding traces), the
fake-quantize modules are kept whole, and each ``<layer>.weight_fake_quant`` call becomes a site
whose grid is read live from the fake-quantizer's ``scale`` and ``zero_point`` buffers, with
``quant_min`` / ``quant_max`` (so widths below 8 bits, set through the range, work too) and
``ch_axis`` for per-channel schemes.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import torch
from torch import fx, nn

from ..config import FaultConfig
from ..errors import UnsupportedQuantizerError
from .base import Grid, MatchContext, QuantizerAdapter, Read, SiteMatch, layout_along

__all__ = ["TorchAOQATAdapter", "bits_for_range"]

_PER_CHANNEL = {torch.per_channel_affine, torch.per_channel_symmetric}
_SUPPORTED = _PER_CHANNEL | {torch.per_tensor_affine, torch.per_tensor_symmetric}


def bits_for_range(qmin: int, qmax: int) -> int:
    """The fewest bits whose value space holds ``[qmin, qmax]``."""
    if qmin < 0:
        return max(int(qmax).bit_length(), int(-qmin - 1).bit_length()) + 1
    return max(int(qmax).bit_length(), 1)


def _fake_quant_types() -> tuple[type, ...]:
    from torch.ao.quantization.fake_quantize import FakeQuantizeBase
    from torch.ao.quantization.observer import ObserverBase

    return (FakeQuantizeBase, ObserverBase)


class TorchAOQATAdapter(QuantizerAdapter):
    """``weight_fake_quant`` modules of torch.ao QAT layers."""

    name = "torch.ao"

    def describe(self) -> str:
        return "torch.ao: the weight_fake_quant of a QAT module (prepare_qat_fx, torch.ao.nn.qat)"

    def leaf_modules(self, model: nn.Module) -> Iterable[nn.Module]:
        types = _fake_quant_types()
        return [m for m in model.modules() if isinstance(m, types)]

    def trace_through(self, model: nn.Module, cfg: FaultConfig) -> Iterable[nn.Module]:
        types = _fake_quant_types()
        return [
            m
            for m in model.modules()
            if isinstance(getattr(m, "weight_fake_quant", None), types) and not isinstance(m, types)
        ]

    def candidate_layers(self, shadow: nn.Module, cfg: FaultConfig) -> Iterable[str]:
        return [n for n, m in shadow.named_modules() if hasattr(m, "weight_fake_quant")]

    def match(self, node: fx.Node, ctx: MatchContext) -> SiteMatch | None:
        if node.op != "call_module" or not str(node.target).endswith("weight_fake_quant"):
            return None
        target = str(node.target)
        fq = ctx.module(target)
        if not isinstance(fq, _fake_quant_types()):
            return None
        layer = target.rpartition(".")[0]
        where = f"layer {layer!r} ({type(fq).__name__})"
        scheme = getattr(fq, "qscheme", None)
        if scheme not in _SUPPORTED or not hasattr(fq, "scale") or not hasattr(fq, "zero_point"):
            raise UnsupportedQuantizerError(
                f"{where}: fxfault reads torch.ao fake-quantizers with per-tensor or per-channel "
                f"affine/symmetric schemes and scale/zero_point buffers; this one has "
                f"qscheme={scheme}. Register an adapter for it with fxfault.register_quantizer(...)"
            )
        enabled = getattr(fq, "fake_quant_enabled", None)
        if isinstance(enabled, torch.Tensor) and int(enabled.reshape(-1)[0]) == 0:
            warnings.warn(
                f"{where}: fake quantization is disabled, so the weight is not quantized; "
                "no fault site is placed there",
                stacklevel=4,
            )
            return None
        observing = getattr(fq, "observer_enabled", None)
        if isinstance(observing, torch.Tensor) and int(observing.reshape(-1)[0]) == 1:
            warnings.warn(
                f"{where}: its observer is enabled, so every forward pass (of your model or of "
                "the faulty one, which shares its buffers) updates the scale. Freeze it first: "
                "model.apply(torch.ao.quantization.disable_observer)",
                stacklevel=4,
            )
        qmin, qmax = int(fq.quant_min), int(fq.quant_max)  # type: ignore[arg-type]
        bits = bits_for_range(qmin, qmax)
        if bits > 16:
            raise UnsupportedQuantizerError(f"{where}: {bits}-bit codes; fxfault supports 1..16 bits")
        weight = ctx.attr(f"{layer}.weight") if layer else None
        if not isinstance(weight, torch.Tensor):
            raise UnsupportedQuantizerError(f"{where}: cannot find the layer's weight parameter")
        shape = tuple(weight.shape)
        per_channel = scheme in _PER_CHANNEL
        axis = int(getattr(fq, "ch_axis", 0)) if per_channel else None
        if axis is not None and axis < 0:
            axis += len(shape)
        grid = Grid(
            Read(attr=f"{target}.scale"),
            Read(attr=f"{target}.zero_point"),
            layout_along(axis, len(shape)) if axis is not None else None,
        )
        return SiteMatch(
            quantizer=self.name,
            layer=layer,
            node=node,
            bits=bits,
            qmin=qmin,
            qmax=qmax,
            shape=shape,
            grid=grid,
            axis=axis,
            quantizer_module=target,
            stored=f"{layer}.weight",
        )
