from __future__ import annotations

import copy

import pytest
import torch

from fxfault.testing import lsq_resnet18, lsq_small_cnn

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def _resnet18_master():
    return lsq_resnet18(weight_bits=4, act_bits=4, width=16)


@pytest.fixture
def resnet18(_resnet18_master):
    """A narrow (width 16) test-double LSQ CIFAR ResNet-18: 21 quantized layers."""
    return copy.deepcopy(_resnet18_master)


@pytest.fixture
def cnn():
    return lsq_small_cnn()


@pytest.fixture
def cifar_x():
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def digits_x():
    return torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))


requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
