"""Small model builders used by tests, examples, benchmarks and the demo.

Every builder is deterministic for a given ``seed`` and leaves the global RNG as it found it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .lsq import LsqQuan, QuanConv2d, QuanLinear

__all__ = [
    "BasicBlock",
    "ResNetCIFAR",
    "SmallCNN",
    "calibrate",
    "lsq_resnet18",
    "lsq_small_cnn",
    "quantize_lsq",
    "resnet18_cifar",
    "small_cnn",
]


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNetCIFAR(nn.Module):
    """The CIFAR ResNet (3x3 stem, no max-pool): 21 conv/linear layers for ResNet-18."""

    def __init__(self, blocks: Sequence[int] = (2, 2, 2, 2), num_classes: int = 10, width: int = 64) -> None:
        super().__init__()
        self.in_planes = width
        self.conv1 = nn.Conv2d(3, width, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.layer1 = self._make(width, blocks[0], 1)
        self.layer2 = self._make(width * 2, blocks[1], 2)
        self.layer3 = self._make(width * 4, blocks[2], 2)
        self.layer4 = self._make(width * 8, blocks[3], 2)
        self.linear = nn.Linear(width * 8, num_classes)

    def _make(self, planes: int, n: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (n - 1):
            layers.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


class SmallCNN(nn.Module):
    """A small CNN for 8x8 single-channel images (scikit-learn's digits)."""

    def __init__(self, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(2 * width)
        self.fc = nn.Linear(2 * width * 4 * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        return self.fc(x.flatten(1))


def resnet18_cifar(num_classes: int = 10, *, width: int = 64, seed: int = 0) -> ResNetCIFAR:
    """A float CIFAR ResNet-18 with deterministic initial weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ResNetCIFAR((2, 2, 2, 2), num_classes, width)


def small_cnn(num_classes: int = 10, *, width: int = 16, seed: int = 0) -> SmallCNN:
    """A float :class:`SmallCNN` with deterministic initial weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SmallCNN(num_classes, width)


def quantize_lsq(
    model: nn.Module,
    *,
    bits_list: Sequence[int] = (2, 3, 4, 5, 6, 8),
    weight_bits: int | None = None,
    act_bits: int | None = None,
    first_bits: tuple[int, int] = (8, 32),
    last_bits: tuple[int, int] = (8, 8),
    symmetric: bool = False,
    per_channel: bool = False,
) -> nn.Module:
    """Return a copy of ``model`` with every Conv2d/Linear replaced by LSQ layers.

    As our users' tooling does: the first conv gets ``fixed_bits=first_bits`` (8-bit weights,
    float input), the last linear ``fixed_bits=last_bits``; the others get candidate widths
    ``bits_list`` and, when ``weight_bits``/``act_bits`` are given, ``bits=(w, a)``.
    """
    with torch.random.fork_rng(devices=[]):
        # building QuanConv2d/QuanLinear runs nn.Conv2d/nn.Linear.__init__, whose (discarded)
        # default initialisation draws from the global RNG: leave that RNG as it was
        return _quantize_lsq(
            model,
            bits_list=bits_list,
            weight_bits=weight_bits,
            act_bits=act_bits,
            first_bits=first_bits,
            last_bits=last_bits,
            symmetric=symmetric,
            per_channel=per_channel,
        )


def _quantize_lsq(
    model: nn.Module,
    *,
    bits_list: Sequence[int],
    weight_bits: int | None,
    act_bits: int | None,
    first_bits: tuple[int, int],
    last_bits: tuple[int, int],
    symmetric: bool,
    per_channel: bool,
) -> nn.Module:
    model = copy.deepcopy(model)
    targets = [(n, m) for n, m in model.named_modules() if type(m) in (nn.Conv2d, nn.Linear)]
    if not targets:
        raise ValueError("the model has no nn.Conv2d or nn.Linear layer to quantize")
    for i, (name, m) in enumerate(targets):
        first, last = i == 0, i == len(targets) - 1
        fixed = first_bits if first else last_bits if last else None
        wq = LsqQuan(all_positive=False, symmetric=symmetric, per_channel=per_channel)
        aq = LsqQuan(all_positive=not first)
        if isinstance(m, nn.Conv2d):
            new: nn.Module = QuanConv2d(m, wq, aq, bits_list, fixed_bits=fixed)
        else:
            new = QuanLinear(m, wq, aq, bits_list, fixed_bits=fixed)
        if fixed is None and weight_bits is not None:
            new.bits = (weight_bits, act_bits if act_bits is not None else weight_bits)  # type: ignore[assignment]
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, new)
    return model


@torch.no_grad()
def calibrate(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """Run ``model`` once in eval mode so that lazily initialised quantizers set their scales."""
    was = model.training
    model.eval()
    model(x)
    model.train(was)
    return model


def _inputs(shape: Sequence[int], seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g)


def lsq_resnet18(
    weight_bits: int = 4,
    act_bits: int = 4,
    *,
    num_classes: int = 10,
    width: int = 64,
    seed: int = 0,
    symmetric: bool = False,
    per_channel: bool = False,
) -> nn.Module:
    """The test-double CIFAR ResNet-18: LSQ layers, ``weight_bits`` in the middle, 8-bit
    first and last layers, calibrated once on random data, in eval mode."""
    model = quantize_lsq(
        resnet18_cifar(num_classes, width=width, seed=seed),
        weight_bits=weight_bits,
        act_bits=act_bits,
        symmetric=symmetric,
        per_channel=per_channel,
    )
    calibrate(model, _inputs((8, 3, 32, 32), seed))
    return model.eval()


def lsq_small_cnn(
    weight_bits: int = 4,
    act_bits: int = 4,
    *,
    num_classes: int = 10,
    width: int = 16,
    seed: int = 0,
    symmetric: bool = False,
    per_channel: bool = False,
) -> nn.Module:
    """The LSQ-quantized :class:`SmallCNN` (8-bit first and last layers), calibrated, in eval."""
    model = quantize_lsq(
        small_cnn(num_classes, width=width, seed=seed),
        weight_bits=weight_bits,
        act_bits=act_bits,
        symmetric=symmetric,
        per_channel=per_channel,
    )
    calibrate(model, _inputs((8, 1, 8, 8), seed).abs())
    return model.eval()
