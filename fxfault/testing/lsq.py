"""A test double of our users' LSQ layers (``QuanConv2d``, ``QuanLinear``, ``LsqQuan``).

It follows ``shared/reference/lsq-layers.md`` (the interface fxfault must handle), including
the parts that make life hard for a tracer:

* ``QuanConv2d.forward`` stores ``self.output_size = out.shape[-1] ** 2`` (a ``Proxy`` under a
  naive ``symbolic_trace``);
* in training mode the layers store ``self.quantized_weight = qw`` with ``retain_grad()`` and
  add ``self.epsilon`` (SAM) when it is set; in eval mode they set both to ``None``;
* ``LsqQuan`` initialises a width's step size from the data on its first call when its
  ``init_state`` entry is 0 (data-dependent control flow), and records the last width used;
* the step size of a width is ``s[bit_mapping[bits]]``, returned by ``get_scale``; with
  ``scale_grad`` the forward pass uses a gradient-scaled copy of it, whose value can differ
  from ``s`` in the last bit.

fxfault must not depend on any of this beyond the documented interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LsqQuan", "QuanConv2d", "QuanLinear", "lsq_thresholds"]


def lsq_thresholds(bits: int, all_positive: bool, symmetric: bool) -> tuple[int, int]:
    """Integer code range ``(lo, hi)`` of an LSQ quantizer."""
    if all_positive:
        if symmetric:
            raise ValueError("an all-positive quantizer cannot be symmetric")
        return 0, 2**bits - 1
    if symmetric:
        return -(2 ** (bits - 1)) + 1, 2 ** (bits - 1) - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def _grad_scale(x: torch.Tensor, scale: float) -> torch.Tensor:
    y_grad = x * scale
    return (x - y_grad).detach() + y_grad


def _round_pass(x: torch.Tensor) -> torch.Tensor:
    return (x.round() - x).detach() + x


class LsqQuan(nn.Module):
    """LSQ quantizer with one step size per candidate width (or per channel and width)."""

    def __init__(
        self,
        bit: int = 8,
        all_positive: bool = False,
        symmetric: bool = False,
        per_channel: bool = False,
        scale_grad: bool = True,
    ) -> None:
        super().__init__()
        if all_positive and symmetric:
            raise ValueError("an all-positive quantizer cannot be symmetric")
        self.all_positive = all_positive
        self.symmetric = symmetric
        self.per_channel = per_channel
        self.scale_gradient = scale_grad
        self.bit_list: tuple[int, ...] = (bit,)
        self.bit_mapping: dict[int, int] = {bit: 0}
        self.bits: int | None = None
        self.s = nn.Parameter(torch.ones(1))
        self.init_state: torch.Tensor
        self.register_buffer("init_state", torch.zeros(1))

    def init_from(self, x: torch.Tensor | None, bit_list: Sequence[int], *args: Any, **kwargs: Any) -> None:
        """Set the candidate widths; with a weight ``x``, initialise every width's step size."""
        self.bit_list = tuple(int(b) for b in bit_list)
        self.bit_mapping = {b: i for i, b in enumerate(self.bit_list)}
        n = len(self.bit_list)
        self.register_buffer("init_state", torch.zeros(n))
        if self.per_channel and x is not None:
            self.s = nn.Parameter(torch.ones(n, x.shape[0]))
        else:
            self.s = nn.Parameter(torch.ones(n))
        if x is None:
            return
        with torch.no_grad():
            for i, b in enumerate(self.bit_list):
                _, hi = lsq_thresholds(b, self.all_positive, self.symmetric)
                if self.per_channel:
                    mean_abs = x.detach().abs().reshape(x.shape[0], -1).mean(dim=1)
                else:
                    mean_abs = x.detach().abs().mean()
                self.s[i].copy_(mean_abs * 2 / (max(hi, 1) ** 0.5))
                self.init_state[i] = 1

    def get_scale(self, bits: int, detach: bool = True) -> torch.Tensor:
        """The step size for ``bits`` (shape ``[]`` per tensor, ``[C]`` per channel)."""
        s = self.s[self.bit_mapping[int(bits)]]
        return s.detach() if detach else s

    def forward(
        self,
        x: torch.Tensor,
        bits: int | None,
        is_activation: bool = False,
        skip_init: bool = False,
        scale: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        if bits is None or bits >= 32:
            return x
        idx = self.bit_mapping[int(bits)]
        lo, hi = lsq_thresholds(int(bits), self.all_positive, self.symmetric)
        self.bits = int(bits)
        if self.init_state[idx] == 0 and not skip_init:
            with torch.no_grad():
                if self.per_channel and self.s.dim() == 2:
                    init = x.detach().abs().reshape(x.shape[0], -1).mean(dim=1) * 2 / (hi**0.5)
                else:
                    init = x.detach().abs().mean() * 2 / (hi**0.5)
                self.s[idx].copy_(init)
                self.init_state[idx] = 1
        s = self.s[idx] if scale is None else scale
        if s.dim() == 1 and s.numel() > 1:
            s = s.reshape((-1,) + (1,) * (x.dim() - 1))
        if self.scale_gradient:
            s = _grad_scale(s, 1.0 / ((hi * x.numel()) ** 0.5))
        x = x / s
        x = x.clamp(min=lo, max=hi)
        x = _round_pass(x)
        return x * s

    def extra_repr(self) -> str:
        return (
            f"widths={list(self.bit_list)}, all_positive={self.all_positive}, "
            f"symmetric={self.symmetric}, per_channel={self.per_channel}"
        )


class _QuanMixin:
    quan_w_fn: nn.Module
    quan_a_fn: nn.Module
    bits: tuple[int, int] | None
    fixed_bits: tuple[int, int] | None
    quantized_weight: torch.Tensor | None
    epsilon: torch.Tensor | None
    training: bool

    def _widths(self) -> tuple[int, int] | None:
        if self.fixed_bits is not None:
            return self.fixed_bits
        return self.bits

    def _quantized_weight(self, weight: torch.Tensor) -> torch.Tensor:
        wbits = self._widths()[0]  # type: ignore[index]
        qw = self.quan_w_fn(weight, wbits, is_activation=False)
        if self.training:
            self.quantized_weight = qw
            qw.retain_grad()
            if self.epsilon is not None:
                qw = qw + self.epsilon
        else:
            self.quantized_weight = None
            self.epsilon = None
        return qw


class QuanConv2d(_QuanMixin, nn.Conv2d):
    """An LSQ-quantized ``Conv2d``, built from a float ``Conv2d``."""

    def __init__(
        self,
        m: nn.Conv2d,
        quan_w_fn: nn.Module,
        quan_a_fn: nn.Module,
        bits_list: Sequence[int] = (8,),
        fixed_bits: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(
            m.in_channels,
            m.out_channels,
            m.kernel_size,  # type: ignore[arg-type]
            stride=m.stride,  # type: ignore[arg-type]
            padding=m.padding,  # type: ignore[arg-type]
            dilation=m.dilation,  # type: ignore[arg-type]
            groups=m.groups,
            bias=m.bias is not None,
            padding_mode=m.padding_mode,
        )
        self.quan_w_fn = quan_w_fn
        self.quan_a_fn = quan_a_fn
        self.bits = None
        self.fixed_bits = fixed_bits
        self.bits_list = list(bits_list)
        self.output_size: Any = None
        self.quantized_weight = None
        self.epsilon = None
        self.weight = nn.Parameter(m.weight.detach().clone())
        if m.bias is not None:
            self.bias = nn.Parameter(m.bias.detach().clone())
        w_widths = self.bits_list if fixed_bits is None else [fixed_bits[0]]
        a_widths = self.bits_list if fixed_bits is None else [fixed_bits[1]]
        self.quan_w_fn.init_from(m.weight, w_widths)  # type: ignore[operator]
        self.quan_a_fn.init_from(None, a_widths)  # type: ignore[operator]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        widths = self._widths()
        if widths is None:
            out = self._conv_forward(x, self.weight, self.bias)
        else:
            qw = self._quantized_weight(self.weight)
            x = self.quan_a_fn(x, widths[1], is_activation=True)
            out = F.conv2d(x, qw, stride=self.stride, padding=self.padding, groups=self.groups)
        self.output_size = out.shape[-1] ** 2
        return out


class QuanLinear(_QuanMixin, nn.Linear):
    """An LSQ-quantized ``Linear``, built from a float ``Linear``."""

    def __init__(
        self,
        m: nn.Linear,
        quan_w_fn: nn.Module,
        quan_a_fn: nn.Module,
        bits_list: Sequence[int] = (8,),
        fixed_bits: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(m.in_features, m.out_features, bias=m.bias is not None)
        self.quan_w_fn = quan_w_fn
        self.quan_a_fn = quan_a_fn
        self.bits = None
        self.fixed_bits = fixed_bits
        self.bits_list = list(bits_list)
        self.quantized_weight = None
        self.epsilon = None
        self.weight = nn.Parameter(m.weight.detach().clone())
        if m.bias is not None:
            self.bias = nn.Parameter(m.bias.detach().clone())
        w_widths = self.bits_list if fixed_bits is None else [fixed_bits[0]]
        a_widths = self.bits_list if fixed_bits is None else [fixed_bits[1]]
        self.quan_w_fn.init_from(m.weight, w_widths)  # type: ignore[operator]
        self.quan_a_fn.init_from(None, a_widths)  # type: ignore[operator]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        widths = self._widths()
        if widths is None:
            return F.linear(x, self.weight, self.bias)
        qw = self._quantized_weight(self.weight)
        x = self.quan_a_fn(x, widths[1], floor_tensor=False, is_activation=True)
        return F.linear(x, qw, self.bias)
