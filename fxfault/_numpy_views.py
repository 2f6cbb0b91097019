"""When the few-fault arithmetic may run on NumPy views of tensors (cheaper than torch ops
for a handful of elements)."""

from __future__ import annotations

import torch

_NUMPY_DTYPES = frozenset(
    {torch.float16, torch.float32, torch.float64, torch.int8, torch.int16, torch.int32, torch.int64,
     torch.uint8}
)


def numpy_ok(*tensors: torch.Tensor | None) -> bool:
    """Whether all ``tensors`` are CPU tensors of dtypes NumPy can view (not bfloat16, float8):
    then the few-fault arithmetic runs on NumPy views, otherwise as torch ops."""
    return all(t is None or (t.device.type == "cpu" and t.dtype in _NUMPY_DTYPES) for t in tensors)
