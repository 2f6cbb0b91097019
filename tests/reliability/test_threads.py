"""Calling one faulty model from several threads: every call gets the faults of exactly one pass
index, each index once, so the outputs are a permutation of a sequential run's (issue 17)."""

import threading

import pytest
import torch

import fxfault
from fxfault import FaultConfig
from fxfault.control import fault_sites
from fxfault.testing import lsq_small_cnn

X = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def _threaded(gm, threads: int, calls: int, *, grad: bool = False) -> list[torch.Tensor]:
    outs: list[torch.Tensor] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with torch.set_grad_enabled(grad):
                for _ in range(calls):
                    y = gm(X).detach()
                    with lock:
                        outs.append(y)
        except BaseException as e:  # surfaced below
            errors.append(e)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors, errors
    return outs


def _matches(outs: list[torch.Tensor], seq: list[torch.Tensor]) -> list[list[int]]:
    return [[i for i, s in enumerate(seq) if torch.equal(s, y)] for y in outs]


@pytest.mark.parametrize(("threads", "mode", "train"), [(2, "transient", False), (4, "transient", False),
                                                         (3, "transient", True), (4, "persistent", False)])
def test_threads_see_the_faults_of_one_pass_each(threads, mode, train):
    calls = 12
    cfg = FaultConfig(ber=0.02, seed=3, mode=mode)
    model = lsq_small_cnn()
    ref = fxfault.transform(model, cfg).train(train)
    with torch.set_grad_enabled(train):
        seq = [ref(X).detach() for _ in range(threads * calls)]
    gm = fxfault.transform(model, cfg).train(train)
    outs = _threaded(gm, threads, calls, grad=train)
    found = _matches(outs, seq)
    assert all(found), "a threaded call matched no sequential pass"
    if mode == "transient":
        assert all(len(f) == 1 for f in found)
        assert sorted(f[0] for f in found) == list(range(threads * calls)), "an index was used twice"
    assert fxfault.stats(gm).total.passes == threads * calls


def test_the_eval_buffers_are_per_thread_and_go_with_their_thread():
    gm = fxfault.transform(lsq_small_cnn(), FaultConfig(ber=0.02, seed=3, mode="persistent")).eval()
    _threaded(gm, 3, 2)
    site = fault_sites(gm)[0]
    assert site.cache.threads() == 3
    with torch.no_grad():
        gm(X)  # this thread's buffers come; the finished threads' go
    assert site.cache.threads() == 1
