"""The samplers: exact distributions, cost proportional to the number of faults."""

import pytest
import torch

from fxfault.faults.sampling import bernoulli_positions, derive_seed, distinct_uniform, generator

from ..stats import binomial_gof, total_z, uniform_gof


@pytest.mark.parametrize("n, p", [(10, 0.5), (1000, 0.01), (1 << 20, 1e-5), (37, 0.9)])
def test_bernoulli_positions_are_sorted_distinct_and_in_range(n, p):
    g = generator(1)
    for _ in range(20):
        pos = bernoulli_positions(n, p, g)
        assert pos.dtype == torch.int64
        if pos.numel():
            assert pos.min() >= 0 and pos.max() < n
            assert torch.all(pos[1:] > pos[:-1])


def test_bernoulli_edge_rates():
    g = generator(0)
    assert bernoulli_positions(100, 0.0, g).numel() == 0
    assert torch.equal(bernoulli_positions(5, 1.0, g), torch.arange(5))
    assert bernoulli_positions(0, 0.5, g).numel() == 0


@pytest.mark.parametrize("n, p", [(64, 0.25), (4096, 0.01), (200_000, 1e-4)])
def test_bernoulli_counts_follow_the_binomial(n, p):
    g = generator(7)
    counts = [bernoulli_positions(n, p, g).numel() for _ in range(3000)]
    assert binomial_gof(counts, n, p) > 1e-3
    assert abs(total_z(sum(counts), 3000 * n, p)) < 4


@pytest.mark.parametrize("n, p", [(10, 0.5), (1000, 0.01), (1 << 20, 1e-5), (64, 0.25), (200_000, 1e-4)])
def test_python_and_numpy_walks_draw_the_same_positions(n, p, monkeypatch):
    """Small chunks are walked in Python, large ones in NumPy: the same positions either way."""
    import fxfault.faults.sampling as sampling

    for small in (0, 10**9):
        monkeypatch.setattr(sampling, "_SMALL", small)
        g = generator(11)
        draws = [bernoulli_positions(n, p, g) for _ in range(200)]
        if small == 0:
            numpy_draws = draws
    assert all(torch.equal(a, b) for a, b in zip(numpy_draws, draws))
    assert sum(d.numel() for d in draws) > 0


@pytest.mark.parametrize("small", [0, 10**9], ids=["numpy", "python"])
def test_both_walks_follow_the_binomial(small, monkeypatch):
    import fxfault.faults.sampling as sampling

    monkeypatch.setattr(sampling, "_SMALL", small)
    g = generator(13)
    n, p = 50_000, 2e-4
    counts = [bernoulli_positions(n, p, g).numel() for _ in range(3000)]
    assert binomial_gof(counts, n, p) > 1e-3
    assert abs(total_z(sum(counts), 3000 * n, p)) < 4


def test_bernoulli_positions_are_uniform():
    g = generator(3)
    n, bins = 1000, 20
    hist = torch.zeros(bins)
    for _ in range(2000):
        pos = bernoulli_positions(n, 0.02, g)
        hist += torch.bincount(pos * bins // n, minlength=bins)
    assert uniform_gof(hist.numpy()) > 1e-3


def test_each_position_fires_independently():
    """Pairs of positions co-occur at p^2: no repulsion (as merging duplicates would cause)."""
    g = generator(5)
    n, p, reps = 8, 0.4, 20000
    hits = torch.zeros(n, n)
    for _ in range(reps):
        v = torch.zeros(n)
        v[bernoulli_positions(n, p, g)] = 1
        hits += torch.outer(v, v)
    pair = hits[0, 1] / reps
    assert abs(pair - p * p) < 4 * (p * p * (1 - p * p) / reps) ** 0.5


def test_cost_is_proportional_to_the_number_of_faults():
    """At a tiny rate over 2^40 bits the sampler draws a handful of numbers, not 2^40."""
    g = generator(0)
    pos = bernoulli_positions(1 << 40, 1e-11, g)
    assert pos.numel() < 100


def test_distinct_uniform_is_a_uniform_subset():
    g = generator(2)
    total, m = 10_000_000, 50
    hist = torch.zeros(10)
    for _ in range(400):
        s = distinct_uniform(total, m, g)
        assert s.numel() == m and torch.unique(s).numel() == m
        hist += torch.bincount(s * 10 // total, minlength=10)
    assert uniform_gof(hist.numpy()) > 1e-3
    small = distinct_uniform(10, 10, g)
    assert sorted(small.tolist()) == list(range(10))
    with pytest.raises(ValueError):
        distinct_uniform(5, 6, g)


def test_derive_seed_is_stable():
    # fixed value: the same in every process and platform (BLAKE2b of the repr)
    assert derive_seed(0, "conv1") == derive_seed(0, "conv1")
    assert derive_seed(0, "conv1") != derive_seed(0, "conv2")
    assert derive_seed(0, "conv1") != derive_seed(1, "conv1")
    assert 0 <= derive_seed("x") < 2**63


def test_integer_likes_seed_as_the_ints_they_stand_for():
    import numpy as np

    assert derive_seed("transient", np.int64(3), 7) == derive_seed("transient", 3, 7)
    with pytest.raises(TypeError):
        derive_seed("x", 1.5)
