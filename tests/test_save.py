"""torch.save / torch.load of the transformed model and of its state_dict."""

import io

import torch

import fxfault
from fxfault import FaultConfig
from fxfault.testing import lsq_small_cnn

from .test_transform import _chains


def _roundtrip(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=False)


def test_whole_model_round_trips_with_names_and_metadata(resnet18, cifar_x):
    gm = fxfault.transform(resnet18, FaultConfig(ber=1e-3, seed=2, mode="persistent"))
    again = _roundtrip(gm)
    assert len(_chains(again)) == 21
    names = [n.name for n in gm.graph.nodes if "fxfault" in n.meta and n.meta["fxfault"]["role"] != "grid"]
    names2 = [n.name for n in again.graph.nodes if "fxfault" in n.meta and n.meta["fxfault"]["role"] != "grid"]
    assert names == names2
    assert [s.name for s in fxfault.sites(again)] == [s.name for s in fxfault.sites(gm)]
    with torch.no_grad():
        assert torch.equal(gm(cifar_x), again(cifar_x))
        fxfault.set_ber(again, 0.0)
        assert torch.equal(again(cifar_x), resnet18(cifar_x))


def test_state_dict_round_trips_into_a_fresh_transform(digits_x):
    model = lsq_small_cnn(seed=0)
    gm = fxfault.transform(model, FaultConfig(ber=1e-2, seed=1, mode="persistent"))
    sd = _roundtrip(gm.state_dict())
    assert set(sd) <= set(model.state_dict())
    other = fxfault.transform(lsq_small_cnn(seed=5), FaultConfig(ber=1e-2, seed=1, mode="persistent"))
    other.load_state_dict(sd)
    with torch.no_grad():
        assert torch.equal(gm(digits_x), other(digits_x))
