import copy

import pytest
import torch

import fxfault
from fxfault import ConfigError, FaultConfig


def test_set_ber_without_retrace(cnn, digits_x):
    gm = fxfault.transform(cnn, ber=0.0)
    code = gm.code
    with torch.no_grad():
        clean = gm(digits_x)
        fxfault.set_ber(gm, "0.05")
        assert not torch.equal(gm(digits_x), clean)
        fxfault.set_ber(gm, 0.0, layers="conv*")
        assert {s.name: s.ber for s in fxfault.sites(gm)} == {"conv1": 0.0, "conv2": 0.0, "fc": 0.05}
    assert gm.code == code
    with pytest.raises(ConfigError, match=r"ber must be a number in \[0, 1\]"):
        fxfault.set_ber(gm, 2.0)
    with pytest.raises(ConfigError, match="matches no fault site"):
        fxfault.set_ber(gm, 0.1, layers="conv9")


def test_in_training_and_in_inference_switches(cnn, digits_x):
    gm = fxfault.transform(cnn, FaultConfig(ber=0.2, in_training=False))
    gm.train()
    with torch.no_grad():
        gm(digits_x)
    assert fxfault.stats(gm).total.events == 0
    gm.eval()
    with torch.no_grad():
        gm(digits_x)
    assert fxfault.stats(gm).total.events > 0
    gm = fxfault.transform(cnn, FaultConfig(ber=0.2, in_inference=False))
    with torch.no_grad():
        gm.eval()(digits_x)
    assert fxfault.stats(gm).total.events == 0


def test_disabled_for_some_layers_and_set_enabled(cnn, digits_x):
    gm = fxfault.transform(cnn, FaultConfig(ber=0.2))
    with torch.no_grad(), fxfault.disabled(gm, layers=["conv1", "fc"]):
        gm(digits_x)
    counts = {s.name: s.passes for s in fxfault.stats(gm).sites}
    assert counts == {"conv1": 0, "conv2": 1, "fc": 0}
    fxfault.set_enabled(gm, False)
    assert not any(s.enabled for s in fxfault.sites(gm))
    with pytest.raises(TypeError):
        fxfault.set_enabled(gm, "no")


def test_control_functions_need_a_transformed_model(cnn):
    with pytest.raises(TypeError, match="returned by fxfault.transform"):
        fxfault.stats(cnn)
    with pytest.raises(TypeError, match="returned by fxfault.transform"), fxfault.disabled(cnn):
        pass


def test_resample_validates_seed(cnn):
    gm = fxfault.transform(cnn, ber=0.1)
    with pytest.raises(ConfigError, match="non-negative integer"):
        fxfault.resample(gm, seed=-1)


def test_clear_cache_picks_up_writes_through_data(cnn, digits_x):
    """`.data` writes bypass the version counters that key the eval caches: clear_cache."""
    model = copy.deepcopy(cnn).eval()
    cfg = FaultConfig(ber=0.02, mode="persistent", seed=4)
    gm = fxfault.transform(model, cfg)
    with torch.no_grad():
        gm(digits_x)
        for p in model.parameters():
            p.data.mul_(0.5)  # no version bump
        stale = gm(digits_x)
        fxfault.clear_cache(gm)
        fresh = fxfault.transform(model, cfg)(digits_x)
        assert torch.equal(gm(digits_x), fresh)
    assert not torch.equal(stale, fresh), "the cache was not stale: this test proves nothing"
    with pytest.raises(TypeError, match="fxfault.transform"):
        fxfault.clear_cache(model)


def test_fault_list_pass_index_is_checked_and_integer_likes_are_ints(cnn):
    import numpy as np

    gm = fxfault.transform(cnn, FaultConfig(ber=0.05, seed=1))
    assert fxfault.fault_list(gm, np.int64(3)) == fxfault.fault_list(gm, 3)
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ConfigError, match="pass_index must be a non-negative integer"):
            fxfault.fault_list(gm, bad)
