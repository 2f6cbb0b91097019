from __future__ import annotations

import pytest
import torch

import fxfault
from fxfault import FaultConfig
from fxfault.campaign import SweepResult, sweep, trial_seed
from fxfault.campaign import runner as sweep_module
from fxfault.faults.sampling import derive_seed


def _manual(model, cfg, batches, ber, seed):
    """The metric of one (BER, trial) pair, rebuilt from its seed alone."""
    faulty = fxfault.transform(model, cfg.replace(ber=ber)).eval()
    fxfault.resample(faulty, seed=seed)
    correct = n = 0
    with torch.no_grad():
        for x, y in batches:
            correct += int((faulty(x).argmax(1) == y).sum())
            n += len(y)
    return 100.0 * correct / n


def test_records_baseline_and_summary(model, batches):
    r = sweep(model, None, batches, ["1e-2", 1e-3], trials=3, progress=False)
    assert isinstance(r, SweepResult)
    assert [x.key for x in r.records] == [(1e-3, t) for t in range(3)] + [(1e-2, t) for t in range(3)]
    assert r.bers == [1e-3, 1e-2] and r.mode == "persistent" and r.seed == 0 and r.metric == "top1"
    with torch.no_grad():
        clean = sum(int((model(x).argmax(1) == y).sum()) for x, y in batches) / 192 * 100
    assert r.baseline == pytest.approx(clean)
    assert r.meta["data"] == {"batches": 3, "examples": 192}
    for rec in r.records:
        assert rec.seed == trial_seed(0, rec.ber, rec.trial) == derive_seed(0, "sweep", repr(rec.ber), rec.trial)
        assert rec.passes == 3 and rec.events % 3 == 0        # the same fault map on every batch
        assert rec.seconds > 0
    hi = r.summary()[1]
    vals = r.values(1e-2)
    assert hi.trials == 3 and hi.mean == pytest.approx(sum(vals) / 3)
    assert hi.drop == pytest.approx(r.baseline - hi.mean)
    assert hi.ci_low <= hi.mean <= hi.ci_high
    assert hi.faults_per_pass == pytest.approx(sum(x.events / 3 for x in r.records[3:]) / 3)
    assert "clean" in r.table() and "1e-02" in r.table()


def test_each_pair_is_reproducible_from_its_seed_alone(model, batches):
    cfg = FaultConfig(mode="persistent", seed=5)
    r = sweep(model, None, batches, [1e-3, 3e-2], trials=2, seed=5, progress=False)
    assert r.seed == 5
    for rec in r.records:
        assert rec.value == _manual(model, cfg, batches, rec.ber, rec.seed)
    # the same pairs in another sweep (other BERs around them, fewer trials) are the same
    again = sweep(model, None, batches, [3e-2], trials=1, seed=5, progress=False)
    assert again.records[0].same_outcome(r.records[2])


def test_persistent_is_independent_of_the_batch_size(model, batches):
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    a = sweep(model, None, batches, [2e-2], trials=2, progress=False)
    b = sweep(model, None, [(x, y)], [2e-2], trials=2, progress=False)
    assert [r.value for r in a.records] == [r.value for r in b.records]
    assert [r.events // r.passes for r in a.records] == [r.events for r in b.records]


def test_transient_mode_draws_new_faults_per_batch(model, batches):
    p = sweep(model, None, batches, [5e-2], trials=2, progress=False)
    t = sweep(model, None, batches, [5e-2], trials=2, mode="transient", progress=False)
    assert t.mode == "transient" and t.config["mode"] == "transient"
    assert [r.seed for r in p.records] == [r.seed for r in t.records]
    assert [r.value for r in p.records] != [r.value for r in t.records]
    # persistent: every batch sees the same number of faults; transient: (almost surely) not
    faulty = fxfault.transform(model, FaultConfig(ber=5e-2, mode="transient")).eval()
    fxfault.resample(faulty, seed=t.records[0].seed)
    counts = []
    with torch.no_grad():
        for x, _ in batches:
            fxfault.reset_stats(faulty)
            faulty(x)
            counts.append(fxfault.stats(faulty).total.events)
    assert sum(counts) == t.records[0].events and len(set(counts)) > 1
    # a transient trial is reproducible from its seed and the batch order
    again = sweep(model, None, batches, [5e-2], trials=2, mode="transient", progress=False)
    assert all(a.same_outcome(b) for a, b in zip(t.records, again.records))


def test_transforms_once_and_leaves_the_model_and_global_rng_alone(model, batches, monkeypatch):
    calls = []
    real = sweep_module.transform
    monkeypatch.setattr(sweep_module, "transform", lambda *a, **k: calls.append(1) or real(*a, **k))
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    sweep(model, None, batches, [1e-3, 1e-2, 1e-1], trials=3, progress=False)
    assert len(calls) == 1
    assert torch.equal(torch.get_rng_state(), rng)
    assert model.training
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_zero_ber_equals_the_baseline(model, batches):
    r = sweep(model, None, batches, [0.0], trials=2, progress=False)
    assert [x.value for x in r.records] == [r.baseline] * 2 and r.records[0].events == 0


def test_one_shot_iterators_are_refused(model, batches):
    with pytest.raises(TypeError, match="one-shot iterator"):
        sweep(model, None, (b for b in batches), [1e-3], 2, progress=False)
    with pytest.raises(TypeError, match="one-shot iterator"):
        sweep(model, None, iter(batches), [1e-3], 2, progress=False)
    with pytest.raises(TypeError, match="iterable of"):
        sweep(model, None, batches[0][0], [1e-3], 2, progress=False)


def test_a_dataloader_works(model, batches):
    from torch.utils.data import DataLoader, TensorDataset

    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    loader = DataLoader(TensorDataset(x, y), batch_size=50)
    a = sweep(model, None, loader, [1e-2], 2, progress=False)
    b = sweep(model, None, batches, [1e-2], 2, progress=False)
    assert [r.value for r in a.records] == [r.value for r in b.records]
    assert a.meta["data"] == {"batches": 4, "examples": 192}


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(bers=[]), ValueError, "bers is empty"),
        (dict(bers=1e-3), TypeError, "list of bit-error rates"),
        (dict(bers=[2.0]), ValueError, r"\[0, 1\]"),
        (dict(trials=0), ValueError, "trials must be"),
        (dict(mode="sometimes"), ValueError, "mode must be"),
        (dict(cfg=FaultConfig(count=3)), ValueError, "count= or faults="),
        (dict(cfg=FaultConfig(ber={"conv2": 1e-3})), ValueError, "per-layer mapping"),
        (dict(cfg=FaultConfig(bit_rates=[0.0] * 4 + [1e-3] * 4, include=["fc"])), ValueError, "absolute"),
        (dict(metric="top5"), ValueError, "unknown metric"),
        (dict(device="gpu0"), ValueError, "not a torch device"),
    ],
)
def test_bad_arguments(model, batches, kwargs, error, match):
    args = dict(cfg=None, bers=[1e-3], trials=2)
    args.update(kwargs)
    cfg, bers, trials = args.pop("cfg"), args.pop("bers"), args.pop("trials")
    with pytest.raises(error, match=match):
        sweep(model, cfg, batches, bers, trials, progress=False, **args)


def test_refuses_a_transformed_model_and_bad_batches(model, batches):
    with pytest.raises(TypeError, match="pass the original model"):
        sweep(fxfault.transform(model), None, batches, [1e-3], 2, progress=False)
    with pytest.raises(TypeError, match="pair"):
        sweep(model, None, [b[0] for b in batches], [1e-3], 2, progress=False)
    with pytest.raises(ValueError, match="same batches"):
        sweep(model, None, _Shrinking(batches), [1e-3], 2, progress=False)


class _Shrinking:
    """Data that yields one batch fewer every time it is iterated."""

    def __init__(self, batches):
        self.batches = list(batches)

    def __iter__(self):
        out = iter(list(self.batches))
        self.batches.pop()
        return out


def test_progress_bar_goes_to_stderr(model, batches, capsys):
    sweep(model, None, batches, [1e-3], 2, progress=True)
    cap = capsys.readouterr()
    assert "sweep" in cap.err and "2/2" in cap.err and cap.out == ""
    sweep(model, None, batches, [1e-3], 2, progress=False)
    assert capsys.readouterr().err == ""
