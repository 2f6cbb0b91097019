"""A small mixed-precision LSQ CNN on scikit-learn's digits (8x8 images, offline).

Used by the demo, the campaign tests and the docs. It needs scikit-learn (in the ``dev``
extra), which ships the 1797 digits with the package, so nothing is downloaded.

* :func:`load_digits_split` — a fixed train/test split (the same on every machine);
* :func:`digits_batches` — the held-out split as a list of ``(inputs, targets)`` batches;
* :class:`DigitsCNN` / :func:`lsq_digits_cnn` — four conv layers and a linear head,
  quantized with :func:`~fxfault.testing.quantize_lsq`: 8-bit first and last layers, the
  middle layers at the widths of a search-style bit config (by default the bundled
  ``fxfault/data/demo_digits_bits.json``);
* :func:`train_digits` / :func:`trained_digits_cnn` — seeded quantization-aware training,
  a few seconds on two cores.

Nothing here touches the global torch RNG. Example::

    >>> model = trained_digits_cnn(epochs=6)
    >>> accuracy(model, *digits_tensors("test")) > 99.0
    True
"""

from __future__ import annotations

import importlib.resources
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .models import quantize_lsq

__all__ = [
    "DIGITS_SPLIT_SEED",
    "DigitsCNN",
    "DigitsSplit",
    "accuracy",
    "demo_bits_path",
    "digits_batches",
    "digits_cnn",
    "digits_tensors",
    "load_digits_split",
    "lsq_digits_cnn",
    "train_digits",
    "trained_digits_cnn",
]

#: the seed of the fixed train/test permutation (independent of any model or sweep seed)
DIGITS_SPLIT_SEED = 20240611
TEST_FRACTION = 0.3


def demo_bits_path() -> Path:
    """Path of the bundled bit-width config ``fxfault/data/demo_digits_bits.json``."""
    return Path(str(importlib.resources.files("fxfault") / "data" / "demo_digits_bits.json"))


@dataclass(frozen=True)
class DigitsSplit:
    """Digits images in ``[0, 1]`` (``[N, 1, 8, 8]``, float32) and labels (int64)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_digits_split() -> DigitsSplit:
    """scikit-learn's 1797 digits, split 70/30 by a fixed permutation (539 test images)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ImportError(
            "the digits data set comes with scikit-learn: pip install scikit-learn "
            "(or pip install 'fxfault[dev]')"
        ) from e
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(d.target, dtype=torch.int64)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(DIGITS_SPLIT_SEED))
    n_test = round(len(y) * TEST_FRACTION)
    test, train = perm[:n_test].sort().values, perm[n_test:].sort().values
    return DigitsSplit(x[train], y[train], x[test], y[test])


def digits_tensors(split: str = "test") -> tuple[torch.Tensor, torch.Tensor]:
    """``(images, labels)`` of the ``"train"`` or ``"test"`` split."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    s = load_digits_split()
    return (s.x_train, s.y_train) if split == "train" else (s.x_test, s.y_test)


def digits_batches(
    split: str = "test", batch_size: int = 256, *, limit: int | None = None
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The ``split`` as a list of ``(inputs, targets)`` batches, in a fixed order.

    :param limit: keep only the first ``limit`` examples (for quick tests).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    x, y = digits_tensors(split)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return list(zip(x.split(batch_size), y.split(batch_size)))


class DigitsCNN(nn.Module):
    """Four 3x3 conv layers (two 2x2 max-pools) and a linear head, for 1x8x8 inputs."""

    def __init__(self, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        w = width
        self.conv1 = nn.Conv2d(1, w, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.conv2 = nn.Conv2d(w, 2 * w, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(2 * w)
        self.conv3 = nn.Conv2d(2 * w, 2 * w, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(2 * w)
        self.conv4 = nn.Conv2d(2 * w, 4 * w, 3, padding=1, bias=False)
        self.bn4 = nn.BatchNorm2d(4 * w)
        self.fc = nn.Linear(4 * w * 2 * 2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = F.relu(self.bn3(self.conv3(x)))
        x = F.max_pool2d(F.relu(self.bn4(self.conv4(x))), 2)
        return self.fc(x.flatten(1))


def digits_cnn(num_classes: int = 10, *, width: int = 16, seed: int = 0) -> DigitsCNN:
    """A float :class:`DigitsCNN` with deterministic initial weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DigitsCNN(num_classes, width)


def lsq_digits_cnn(
    bits: str | Path | dict[str, Any] | None = None,
    *,
    index: int = 0,
    width: int = 16,
    seed: int = 0,
) -> nn.Module:
    """The LSQ-quantized :class:`DigitsCNN`, untrained, calibrated on training images, in eval.

    Calibration runs one training-mode forward pass on 256 training images, so that the lazily
    initialised activation step sizes are set (and match what training sees).

    ``conv1`` gets ``fixed_bits=(8, 32)`` and ``fc`` ``(8, 8)``; ``conv2``..``conv4`` get
    ``bits=(w, a)`` from configuration ``index`` of the search-style JSON ``bits`` (default:
    :func:`demo_bits_path`), read with :func:`fxfault.search_json.read_search_json` — the same
    mapping :meth:`fxfault.FaultConfig.from_search_json` makes.
    """
    from ..config.search_json import read_search_json

    # quantize_lsq builds its QuanConv2d/QuanLinear through nn.Conv2d/nn.Linear.__init__, whose
    # (discarded) default initialisation draws from the global RNG: keep that RNG as it was.
    with torch.random.fork_rng(devices=[]):
        model = quantize_lsq(digits_cnn(width=width, seed=seed), bits_list=(2, 3, 4, 5, 6, 8),
                             first_bits=(8, 32), last_bits=(8, 8))
    weight, act = read_search_json(demo_bits_path() if bits is None else bits, model, index)
    for name, w in weight.items():
        layer = model.get_submodule(name)
        layer.bits = (w, act.get(name, w))  # type: ignore[assignment]
    # Initialise the activation step sizes from training images as training would see them
    # (BatchNorm in training mode; this also moves its running statistics one step).
    x, _ = digits_tensors("train")
    model.train()
    model(x[:256])  # with autograd on: the LSQ layers retain_grad() in training mode
    return model.eval()


def train_digits(
    model: nn.Module,
    *,
    epochs: int = 8,
    batch_size: int = 64,
    lr: float = 0.01,
    seed: int = 0,
    limit: int | None = None,
) -> list[float]:
    """Quantization-aware training on the training split (Adam, one-cycle schedule).

    Shuffling uses a ``torch.Generator`` seeded with ``seed``; the global RNG is untouched.
    Trains ``model`` in place, leaves it in eval mode and returns the mean loss of each epoch.

    :param limit: train on the first ``limit`` training images only (for quick tests).
    """
    x, y = digits_tensors("train")
    if limit is not None:
        x, y = x[:limit], y[:limit]
    gen = torch.Generator().manual_seed(seed)
    steps = epochs * math.ceil(len(y) / batch_size)
    # LSQ step sizes are small (~1e-2): Adam moves a parameter by about lr per step whatever
    # its scale, so they get a hundredth of the rate (else they can overshoot through zero).
    steps_sizes = [p for n, p in model.named_parameters() if n.endswith((".quan_w_fn.s", ".quan_a_fn.s"))]
    chosen = {id(p) for p in steps_sizes}
    others = [p for p in model.parameters() if id(p) not in chosen]
    opt = torch.optim.Adam([{"params": others, "lr": lr}, {"params": steps_sizes, "lr": lr * 0.01}])
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[lr, lr * 0.01], total_steps=max(steps, 1)
    )
    losses: list[float] = []
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=gen)
        total = 0.0
        for idx in perm.split(batch_size):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        losses.append(total / len(y))
    model.eval()
    return losses


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)`` in percent (eval mode; restores the mode)."""
    was = model.training
    model.eval()
    acc = (model(x).argmax(1) == y).double().mean().item() * 100.0
    model.train(was)
    return acc


def trained_digits_cnn(
    *, epochs: int = 8, seed: int = 0, bits: str | Path | dict[str, Any] | None = None,
    index: int = 0,
) -> nn.Module:
    """:func:`lsq_digits_cnn` trained with :func:`train_digits` (about 99 % test accuracy).

    Usable as a command-line model spec: ``fxfault.testing.digits:trained_digits_cnn``.
    """
    model = lsq_digits_cnn(bits, index=index, seed=seed)
    train_digits(model, epochs=epochs, seed=seed)
    return model

