"""Test helpers: the LSQ test double, small model builders (and graph assertions)."""

from .assertions import assert_fault_chain, assert_sites
from .lsq import LsqQuan, QuanConv2d, QuanLinear, lsq_thresholds
from .models import (
    ResNetCIFAR,
    SmallCNN,
    calibrate,
    lsq_resnet18,
    lsq_small_cnn,
    quantize_lsq,
    resnet18_cifar,
    small_cnn,
)

__all__ = [
    "LsqQuan",
    "QuanConv2d",
    "QuanLinear",
    "ResNetCIFAR",
    "SmallCNN",
    "assert_fault_chain",
    "assert_sites",
    "calibrate",
    "lsq_resnet18",
    "lsq_small_cnn",
    "lsq_thresholds",
    "quantize_lsq",
    "resnet18_cifar",
    "small_cnn",
]
