"""Shared helpers for the test-suite."""

from __future__ import annotations

import torch
from torch import fx, nn


class Capture(fx.Interpreter):
    """Run a GraphModule and keep the outputs of the nodes whose names end with ``suffixes``."""

    def __init__(self, gm: fx.GraphModule, suffixes=("_quantize", "_flip", "_dequantize")):
        super().__init__(gm)
        self.suffixes = tuple(suffixes)
        self.values: dict[str, torch.Tensor] = {}

    def run_node(self, n):
        out = super().run_node(n)
        if n.name.endswith(self.suffixes) or (n.op == "call_module" and n.target.endswith("quan_w_fn")):
            self.values[n.name] = out
        return out


def capture(gm, *args, suffixes=("_quantize", "_flip", "_dequantize")):
    c = Capture(gm, suffixes)
    with torch.no_grad():
        out = c.run(*args)
    return out, c.values


def bits_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit-for-bit equality (distinguishes -0.0 from 0.0, unlike torch.equal)."""
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(
        a.contiguous().view(torch.int32 if a.element_size() == 4 else torch.int16),
        b.contiguous().view(torch.int32 if b.element_size() == 4 else torch.int16),
    )


def single_layer(bits: int, *, all_positive=False, symmetric=False, per_channel=False, shape=(32, 64)):
    """A model holding one LSQ linear layer at ``bits`` (fixed), calibrated."""
    from fxfault.testing import LsqQuan, QuanLinear

    g = torch.Generator().manual_seed(bits * 7 + int(all_positive) * 3 + int(symmetric))
    lin = nn.Linear(shape[1], shape[0])
    with torch.no_grad():
        lin.weight.copy_(torch.randn(shape, generator=g) * 0.1)
        if all_positive:
            lin.weight.abs_()
    wq = LsqQuan(all_positive=all_positive, symmetric=symmetric, per_channel=per_channel)
    layer = QuanLinear(lin, wq, LsqQuan(all_positive=False), bits_list=[bits], fixed_bits=(bits, 32))
    from collections import OrderedDict

    model = nn.Sequential(OrderedDict(fc=layer)).eval()
    return model
