"""fxfault never changes the user's model: parameters, buffers, attributes, modules."""

import copy

import torch
from torch import fx

import fxfault
from fxfault import FaultConfig


def _freeze(v):
    if isinstance(v, torch.Tensor):
        return ("tensor", id(v), v.detach().clone())
    if isinstance(v, fx.Proxy):
        raise AssertionError("a torch.fx.Proxy was left on a user module")
    try:
        return ("value", copy.deepcopy(v))
    except Exception:
        return ("object", id(v))


def snapshot(model):
    attrs = {}
    for name, m in model.named_modules():
        d = {}
        for k, v in vars(m).items():
            if k in ("_parameters", "_buffers", "_modules"):
                d[k] = ("ids", [(n, id(t)) for n, t in v.items()])
            else:
                d[k] = _freeze(v)
        attrs[name] = d
    return {
        "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "tree": [(n, type(m), id(m)) for n, m in model.named_modules()],
        "attrs": attrs,
    }


def assert_same(a, b):
    assert a["tree"] == b["tree"]
    assert a["state"].keys() == b["state"].keys()
    for k in a["state"]:
        assert torch.equal(a["state"][k], b["state"][k]), k
    assert a["attrs"].keys() == b["attrs"].keys()
    for name in a["attrs"]:
        da, db = a["attrs"][name], b["attrs"][name]
        assert da.keys() == db.keys(), (name, da.keys() ^ db.keys())
        for k in da:
            x, y = da[k], db[k]
            if x[0] == "tensor":
                assert y[0] == "tensor" and x[1] == y[1] and torch.equal(x[2], y[2]), (name, k)
            elif x[0] == "value":
                eq = x[1] == y[1]
                assert bool(eq.all() if isinstance(eq, torch.Tensor) else eq), (name, k, x[1], y[1])
            else:
                assert x == y, (name, k)


def test_transform_and_faulty_forwards_leave_the_model_unchanged(resnet18, cifar_x):
    with torch.no_grad():
        resnet18(cifar_x)  # the layers' output_size attributes now hold numbers
    before = snapshot(resnet18)
    gm = fxfault.transform(resnet18, FaultConfig(ber=1e-2, seed=0))
    assert_same(before, snapshot(resnet18))
    with torch.no_grad():
        gm(cifar_x)
    gm(cifar_x).sum().backward()  # grads land on the shared parameters' .grad only
    for p in resnet18.parameters():
        p.grad = None
    assert_same(before, snapshot(resnet18))


def test_training_mode_trace_leaves_no_proxy_and_no_side_effect(resnet18, cifar_x):
    resnet18.train()
    before = snapshot(resnet18)
    gm = fxfault.transform(resnet18, ber=1e-3)
    assert_same(before, snapshot(resnet18))
    for m in resnet18.modules():
        assert not any(isinstance(v, fx.Proxy) for v in vars(m).values())
    assert resnet18.conv1.output_size is None or isinstance(resnet18.conv1.output_size, int)
    # eval-mode forwards of the faulty model do not write the user's modules either
    gm.eval()
    with torch.no_grad():
        gm(cifar_x)
    resnet18.eval()
    before = snapshot(resnet18)
    with torch.no_grad():
        gm(cifar_x)
    assert_same(before, snapshot(resnet18))


def test_faults_are_never_written_into_parameters(cnn, digits_x):
    params = {n: p.detach().clone() for n, p in cnn.named_parameters()}
    gm = fxfault.transform(cnn, FaultConfig(ber=0.2, mode="persistent"))
    with torch.no_grad():
        for _ in range(3):
            gm(digits_x)
    for n, p in cnn.named_parameters():
        assert torch.equal(p, params[n]), n
    for n, p in gm.named_parameters():
        assert torch.equal(p, params[n]), n


def test_parameters_are_shared_with_the_original(cnn):
    gm = fxfault.transform(cnn, ber=1e-3)
    mine = dict(cnn.named_parameters())
    for n, p in gm.named_parameters():
        assert p is mine[n]
