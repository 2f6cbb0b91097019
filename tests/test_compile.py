"""torch.compile and torch.export of transformed models: the fault ops stay single named nodes."""

from collections import OrderedDict

import pytest
import torch
from torch import nn

import fxfault
from fxfault import FaultConfig
from fxfault.testing import lsq_small_cnn

from .conftest import requires_cuda


def _float_model():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return nn.Sequential(
            OrderedDict(c=nn.Conv2d(1, 8, 3), r=nn.ReLU(), f=nn.Flatten(), l=nn.Linear(8 * 6 * 6, 4))
        ).eval()


X = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))


@pytest.mark.slow
def test_compile_fullgraph_matches_eager_and_follows_run_time_switches():
    torch._dynamo.reset()
    model = _float_model()
    gm = fxfault.transform(model, FaultConfig(float_bits=8, ber=0.02, mode="persistent", seed=1))
    compiled = torch.compile(gm, fullgraph=True)
    with torch.no_grad():
        eager = gm(X)
        assert torch.allclose(compiled(X), eager, atol=1e-6)
        # switches are read at run time by the fault op: no re-trace, no recompilation needed
        with fxfault.disabled(gm):
            clean = gm(X)
            assert torch.allclose(compiled(X), clean, atol=1e-6)
        fxfault.resample(gm, seed=2)
        assert torch.allclose(compiled(X), gm(X), atol=1e-6)


@pytest.mark.slow
def test_compiled_training_step_gives_the_eager_gradients():
    torch._dynamo.reset()
    model = _float_model()
    gm = fxfault.transform(model, FaultConfig(float_bits=6, ber=0.05, mode="persistent"))
    gm.train()
    gm(X).square().sum().backward()
    eager = {n: p.grad.clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = None
    torch.compile(gm, fullgraph=True)(X).square().sum().backward()
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, eager[n], rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_export_keeps_named_fault_ops():
    gm = fxfault.transform(_float_model(), FaultConfig(float_bits=8, ber=0.02, mode="persistent"))
    ep = torch.export.export(gm, (X,))
    targets = [str(n.target) for n in ep.graph.nodes if "fxfault" in str(n.target)]
    assert targets == ["fxfault.next_pass.default"] + [
        f"fxfault.{op}.default" for op in ("quantize", "flip_bits", "dequantize", "straight_through")
    ] * 2
    with torch.no_grad():
        assert torch.allclose(ep.module()(X), gm(X), atol=1e-6)


@pytest.mark.slow
def test_lsq_models_compile_with_graph_breaks():
    """The LSQ quantizer initialises its step size lazily (data-dependent control flow), so an
    LSQ model compiles with graph breaks, not fullgraph, and does not export; nor does the
    source model. The faulty graph follows its source model here."""
    torch._dynamo.reset()
    model = lsq_small_cnn()
    gm = fxfault.transform(model, FaultConfig(ber=0.01, mode="persistent"))
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(torch.compile(gm)(x), gm(x), atol=1e-5)
    with pytest.raises(Exception, match="data-dependent"):
        torch.export.export(model, (x,))


@requires_cuda
@pytest.mark.cuda
def test_cuda_faults_equal_cpu_faults():
    import copy

    model = _float_model()
    cfg = FaultConfig(float_bits=8, ber=0.05, mode="persistent", seed=3)
    cpu = fxfault.transform(model, cfg)
    gpu = fxfault.transform(copy.deepcopy(model).cuda(), cfg)
    assert fxfault.fault_list(gpu) == fxfault.fault_list(cpu)  # sampling runs on the CPU
    with torch.no_grad():
        torch.testing.assert_close(gpu(X.cuda()).cpu(), cpu(X), rtol=1e-4, atol=1e-4)
