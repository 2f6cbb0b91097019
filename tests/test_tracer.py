import torch
from torch import fx, nn

from fxfault.graph.tracer import FaultTracer, remove_dead_nodes, shadow_copy


class _M(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.register_buffer("buf", torch.zeros(2))
        self.history = []
        self.cfg = {"a": 1}

    def forward(self, x):
        self.history.append(1)
        self.cfg["seen"] = True
        self.last = x
        return self.lin(x) + self.buf


def test_shadow_copy_shares_tensors_but_not_attributes():
    m = _M()
    s = shadow_copy(m)
    assert s is not m and s.lin is not m.lin
    assert s.lin.weight is m.lin.weight and s.buf is m.buf
    s(torch.zeros(1, 2))
    assert m.history == [] and m.cfg == {"a": 1} and not hasattr(m, "last")
    s.lin.extra = 1
    assert not hasattr(m.lin, "extra")


def test_shadow_copy_keeps_shared_submodules_shared():
    relu = nn.ReLU()
    m = nn.Sequential(relu, relu)
    s = shadow_copy(m)
    assert s[0] is s[1] and s[0] is not relu


def test_tracer_leaf_policy_by_name_and_type():
    m = nn.Sequential(nn.Sequential(nn.Linear(2, 2)), nn.Linear(2, 2))
    g = FaultTracer(leaf_patterns=["0"]).trace(m)
    assert [n.target for n in g.nodes if n.op == "call_module"] == ["0", "1"]
    lin = m[1]
    g = FaultTracer(through=[lin]).trace(m)
    assert any(n.op == "get_attr" and n.target == "1.weight" for n in g.nodes)


def test_remove_dead_nodes_keeps_effects():
    g = fx.Graph()
    x = g.placeholder("x")
    g.call_method("retain_grad", (x,))
    g.call_method("add_", (x, 1))
    dead = g.call_function(torch.add, (x, 1))
    g.call_function(torch.mul, (dead, 2))
    g.output(x)
    removed = remove_dead_nodes(g)
    assert removed == 3
    assert [n.target for n in g.nodes if n.op == "call_method"] == ["add_"]
