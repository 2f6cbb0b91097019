"""Which layers get sites: include / exclude / only / skip_first_last."""

import pytest

import fxfault
from fxfault import ConfigError, FaultConfig


def _names(model, **kw):
    return [s.name for s in fxfault.sites(fxfault.transform(model, FaultConfig(**kw)))]


def test_include_exclude(resnet18):
    assert _names(resnet18, include=["layer1.*"]) == [
        "layer1.0.conv1", "layer1.0.conv2", "layer1.1.conv1", "layer1.1.conv2"]
    names = _names(resnet18, exclude=["layer*.shortcut.*", "conv1"])
    assert len(names) == 17 and "conv1" not in names and not any("shortcut" in n for n in names)
    assert _names(resnet18, include=["layer4.*"], exclude=["*.conv2"]) == [
        "layer4.0.conv1", "layer4.0.shortcut.0", "layer4.1.conv1"]


def test_skip_first_last(resnet18):
    names = _names(resnet18, skip_first_last=True)
    assert len(names) == 19 and names[0] == "layer1.0.conv1" and names[-1] == "layer4.1.conv2"


def test_only_selects_one_layer(resnet18):
    assert _names(resnet18, only="layer3.0.conv2") == ["layer3.0.conv2"]
    with pytest.raises(ConfigError, match="must select exactly one site"):
        _names(resnet18, only="layer3.*")
    with pytest.raises(ConfigError, match="Close names: 'layer3.0.conv2'"):
        _names(resnet18, only="layer3.0.cov2")


def test_selection_that_leaves_nothing_is_an_error(resnet18):
    with pytest.raises(ConfigError, match="leaves no fault site"):
        _names(resnet18, include=["conv1"], skip_first_last=True)


def test_unselected_layers_run_clean(resnet18, cifar_x):
    import torch

    gm = fxfault.transform(resnet18, FaultConfig(ber=0.5, only="linear"))
    with torch.no_grad():
        out = gm(cifar_x)
    st = fxfault.stats(gm)
    assert [s.name for s in st.sites] == ["linear"] and st.total.events > 0
    assert out.shape == (2, 10)
