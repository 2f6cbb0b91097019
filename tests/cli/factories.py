"""Model, data and metric specs for command-line tests (``tests.cli.factories:<name>``)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

#: an importable object that is not callable (a bad --data or --metric spec)
NOT_CALLABLE = 3


def _batches(channels: int = 1, classes: int = 10, n: int = 32, batch_size: int = 16):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, channels, 8, 8, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    return list(zip(x.split(batch_size), y.split(batch_size)))


def tiny_data(batch_size: int = 16):
    """32 random 1x8x8 images with labels 0..9: fits ``demo-cnn``."""
    return _batches(batch_size=batch_size)


def no_batch_size():
    return _batches()


def wrong_shape_data():
    """3-channel images: ``demo-cnn`` takes 1 channel."""
    return _batches(channels=3)


def bad_targets_data():
    """Labels up to 49 for a 10-class model (cross-entropy cannot score them)."""
    return [(x, y + 40) for x, y in _batches()]


def one_shot_data() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    yield from _batches()


def not_pairs_data():
    return [x for x, _ in _batches()]


def empty_data():
    return []


def not_a_model():
    return "a string"


def plain_model() -> nn.Module:
    """A float model with no quantizer: no fault site without float_bits."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))


def not_iterable_data():
    return 5


def one_argument_metric(outputs):
    """A metric with the wrong signature (it takes no targets)."""
    return outputs.sum()
