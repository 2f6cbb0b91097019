from __future__ import annotations

import pytest
import torch

from fxfault.testing import lsq_small_cnn
from fxfault.testing.digits import digits_batches


@pytest.fixture
def model():
    """The LSQ SmallCNN (3 sites: 8-, 4- and 8-bit), untrained but calibrated."""
    return lsq_small_cnn()


@pytest.fixture(scope="session")
def _batches():
    return digits_batches("test", 64, limit=192)


@pytest.fixture
def batches(_batches):
    """Three batches of 64 held-out digits."""
    return list(_batches)


@pytest.fixture(autouse=True)
def _one_thread():
    """These models are tiny: one intra-op thread is faster, and steadier on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
