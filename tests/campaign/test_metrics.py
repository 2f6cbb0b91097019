from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import fxfault
from fxfault.campaign import Metric
from fxfault.campaign.metrics import Accumulator, resolve_metric


def _batches(sizes, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in sizes:
        out.append((torch.randn(n, 10, generator=g), torch.randint(0, 10, (n,), generator=g)))
    return out


def _aggregate(metric, batches):
    acc = Accumulator(resolve_metric(metric))
    for y, t in batches:
        acc.add(y, t)
    return acc.value()


def test_builtins_are_exact_over_uneven_batches():
    batches = _batches([7, 64, 3])
    y = torch.cat([b[0] for b in batches])
    t = torch.cat([b[1] for b in batches])
    assert _aggregate("top1", batches) == pytest.approx(100.0 * (y.argmax(1) == t).double().mean().item())
    assert _aggregate("loss", batches) == pytest.approx(F.cross_entropy(y, t).item(), rel=1e-6)


def test_callable_sum_count_and_per_batch_mean_agree():
    batches = _batches([5, 50, 1])

    def errors(outputs, targets):                 # (sum, count) with tensors
        return (outputs.argmax(1) != targets).sum(), targets.numel()

    def error_rate(outputs, targets):             # a per-example mean, as a float
        return (outputs.argmax(1) != targets).float().mean().item()

    def error_rate_tensor(outputs, targets):      # ... or as a 0-dim tensor
        return (outputs.argmax(1) != targets).float().mean()

    exact = _aggregate(errors, batches)
    assert _aggregate(error_rate, batches) == pytest.approx(exact)
    assert _aggregate(error_rate_tensor, batches) == pytest.approx(exact)
    assert exact == pytest.approx(1 - _aggregate("top1", batches) / 100)
    # a mean of batch means would be something else for these uneven batches
    naive = sum(error_rate(*b) for b in batches) / len(batches)
    assert not math.isclose(naive, exact)


def test_callable_names_and_metric_records():
    def my_metric(outputs, targets):
        return 0.0, 1

    assert resolve_metric(my_metric).name.endswith(":test_callable_names_and_metric_records.<locals>.my_metric")
    m = Metric("top5", my_metric, label="top-5 (%)", scale=100.0)
    assert resolve_metric(m) is m
    assert Metric("x", my_metric).label == "x"
    with pytest.raises(ValueError, match="unknown metric 'top2'"):
        resolve_metric("top2")
    with pytest.raises(TypeError):
        resolve_metric(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Metric("", my_metric)


@pytest.mark.parametrize(
    "ret, match",
    [
        ((1.0, 2.0, 3.0), "length 3"),
        (torch.ones(3), "shape"),                 # ambiguous: neither a pair nor one number
        ("0.5", "str"),
        ((torch.ones(2), 4), "sum tensor of shape"),
        (None, "NoneType"),
    ],
)
def test_bad_metric_returns_are_refused(ret, match):
    acc = Accumulator(resolve_metric(lambda y, t: ret))
    with pytest.raises(TypeError, match=match):
        acc.add(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))


def test_zero_count_is_refused():
    acc = Accumulator(resolve_metric(lambda y, t: (0.0, 0)))
    acc.add(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="count must be positive"):
        acc.value()


def test_metric_callable_in_a_sweep(model, batches):
    calls = []

    def correct(outputs, targets):
        calls.append(len(targets))
        return (outputs.argmax(1) == targets).sum(), targets.numel()

    r = fxfault.campaign.sweep(model, None, batches, [1e-2], 2, metric=correct, progress=False)
    top1 = fxfault.campaign.sweep(model, None, batches, [1e-2], 2, progress=False)
    assert len(calls) == 3 * len(batches)        # the baseline and two trials
    assert [x.value * 100 for x in r.records] == pytest.approx([x.value for x in top1.records])
    assert r.baseline * 100 == pytest.approx(top1.baseline)
