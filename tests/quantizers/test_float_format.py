"""Bit errors in floating-point weights (float_format): the chain, numerics against NumPy,
presets per field, counts, and models in float16 / bfloat16 / float8."""

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

import fxfault
from fxfault import ConfigError, FaultConfig
from fxfault.control import fault_sites
from fxfault.faults.formats import FORMATS
from fxfault.testing.assertions import assert_fault_chain

from ..helpers import capture
from ..stats import binomial_gof


def _model(dtype=torch.float32):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        m = nn.Sequential(OrderedDict(c=nn.Conv2d(1, 4, 3), r=nn.ReLU(), f=nn.Flatten(), l=nn.Linear(4 * 6 * 6, 3)))
    return m.eval().to(dtype)


X = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def _faulted_weight(gm, x, site="c"):
    _, values = capture(gm, x.to(next(gm.parameters()).dtype), suffixes=("_dequantize",))
    return values[f"{site}_weight_dequantize"]


@pytest.mark.parametrize("fmt", ["native", "float32"])
def test_own_format_with_faults_off_is_bit_identical_and_the_chain_is_explicit(fmt):
    model = _model()
    gm = fxfault.transform(model, FaultConfig(float_format=fmt, ber=1e-2, seed=0))
    assert_fault_chain(gm)
    assert [(s.name, s.bits, s.encoding, s.quantizer) for s in fxfault.sites(gm)] == [
        ("c", 32, "float32", "ieee"), ("l", 32, "float32", "ieee")]
    with torch.no_grad():
        with fxfault.disabled(gm):
            assert torch.equal(gm(X), model(X))
        assert not torch.equal(gm(X), model(X))
    assert "c_weight_quantize" in gm.code and "float_to_bits" in gm.code


def _expected(w: np.ndarray, faults, width):
    """A NumPy reference: XOR of the unsigned integer view (independent of fxfault's code)."""
    view = {32: np.uint32, 16: np.uint16, 8: np.uint8}[width]
    bits = w.copy().view(view).reshape(-1)
    for _, idx, bit in faults:
        bits[idx] ^= view(1 << bit)
    return bits.view(w.dtype).reshape(w.shape)


def test_flips_agree_with_a_numpy_reference_on_random_weights():
    model = _model()
    rng = np.random.default_rng(0)
    idx = rng.choice(36, size=12, replace=False)
    faults = [("c", int(i), int(b)) for i, b in zip(idx, rng.integers(0, 32, size=12))]
    gm = fxfault.transform(model, FaultConfig(float_format="float32", faults=faults)).eval()
    want = _expected(model.c.weight.detach().numpy(), faults, 32)
    got = _faulted_weight(gm, X).numpy()
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize(
    ("fmt", "value", "bit", "expected"),
    [
        ("float32", 0.01, 31, -0.01),  # sign
        ("float32", 0.01, 30, 3.402823e36),  # the top exponent bit: the classic catastrophe
        ("float32", 1.0, 0, 1.0000001192092896),  # lowest mantissa bit: one ulp
        ("float32", 1e-40, 23, 1e-40 + 2.0**-126),  # a subnormal gains the smallest exponent
        ("float16", 0.5, 15, -0.5),
        ("float16", 0.5, 14, 32768.0),
        ("float16", 1.0, 0, 1.0009765625),
        ("bfloat16", 1.0, 15, -1.0),
        ("bfloat16", 1.0, 0, 1.0078125),
        ("bfloat16", 0.01, 14, 1.28125 * 2.0**121),  # 0x3C24 -> 0x7C24
    ],
)
def test_hand_computed_flips(fmt, value, bit, expected):
    dtype = FORMATS[fmt].dtype
    model = nn.Sequential(OrderedDict(l=nn.Linear(1, 1, bias=False))).eval().to(dtype)
    with torch.no_grad():
        model.l.weight.fill_(value)
    gm = fxfault.transform(model, FaultConfig(float_format="native", faults=[("l", 0, bit)])).eval()
    _, values = capture(gm, torch.ones(1, 1, dtype=dtype), suffixes=("_dequantize",))
    got = float(values["l_weight_dequantize"].reshape(()))
    assert got == pytest.approx(float(torch.tensor(expected, dtype=dtype)), rel=1e-6)


def test_ber_one_flips_every_bit():
    model = _model()
    gm = fxfault.transform(model, FaultConfig(float_format="float32", ber=1.0)).eval()
    w = model.c.weight.detach().numpy()
    assert np.array_equal(_faulted_weight(gm, X).numpy().view(np.uint32), ~w.view(np.uint32))


@pytest.mark.parametrize("preset", ["sign", "exponent", "exponent_msb", "mantissa", "mantissa_msb"])
def test_field_presets_hit_only_their_planes(preset):
    fmt = FORMATS["float32"]
    gm = fxfault.transform(_model(), FaultConfig(float_format="float32", bit_rates=preset, ber=0.05, seed=2))
    field, _, top = preset.partition("_")
    planes = set(fmt.planes(field))
    want = {max(planes)} if top == "msb" else planes
    hit = {b for _, _, b in fxfault.fault_list(gm)}
    assert hit and hit <= want


@pytest.mark.slow
def test_counts_per_field_are_binomial():
    """Per-field flip counts of a float32 site follow Binomial(numel * field bits, 1e-3)."""
    model = nn.Sequential(OrderedDict(l=nn.Linear(64, 64, bias=False))).eval()
    gm = fxfault.transform(model, FaultConfig(float_format="float32", ber=1e-3, seed=0))
    (site,) = fault_sites(gm)
    fmt = FORMATS["float32"]
    per_field = {f: [] for f in ("sign", "exponent", "mantissa")}
    for t in range(400):
        _, masks, _ = site.fault_map(t)
        bits = [b for m in masks.tolist() for b in range(32) if (m >> b) & 1]
        for f in per_field:
            per_field[f].append(sum(fmt.field_of(b) == f for b in bits))
    for f, counts in per_field.items():
        n = site.numel * len(fmt.planes(f))
        assert binomial_gof(counts, n, 1e-3) > 1e-3, f


def test_float_presets_need_a_float_site():
    from fxfault.testing import lsq_small_cnn

    with pytest.raises(ConfigError, match="float word"):
        fxfault.transform(lsq_small_cnn(), FaultConfig(bit_rates="exponent", ber=1e-3))


def test_float_format_and_float_bits_on_one_layer_are_refused():
    with pytest.raises(ConfigError, match="both float_format and float_bits"):
        fxfault.transform(_model(), FaultConfig(float_format="float32", float_bits=8, ber=1e-3))


def test_an_encoding_does_not_apply_to_float_bits():
    with pytest.raises(ConfigError, match="laid out by the format"):
        fxfault.transform(_model(), FaultConfig(float_format="float32", encoding="gray", ber=1e-3))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("mode", ["transient", "persistent"])
def test_half_precision_models_run_on_the_cpu(dtype, mode):
    model = _model(dtype)
    x = X.to(dtype)
    gm = fxfault.transform(model, FaultConfig(float_format="native", ber=1e-2, seed=1, mode=mode))
    with torch.no_grad():
        with fxfault.disabled(gm):
            assert torch.equal(gm(x), model(x))
        outs = [gm(x) for _ in range(2)]
    assert outs[0].dtype == dtype and not torch.equal(outs[0], model(x))
    assert torch.equal(outs[0], outs[1]) is (mode == "persistent")


@pytest.mark.skipif("float8_e4m3fn" not in FORMATS, reason="this torch has no float8 dtypes")
@pytest.mark.parametrize("fmt", ["float8_e4m3fn", "float8_e5m2"])
def test_float8_round_trip(fmt):
    """A float32 model stored as float8: faults off gives the weights rounded to float8."""
    model = _model()
    gm = fxfault.transform(model, FaultConfig(float_format=fmt, ber=1e-2, seed=0)).eval()
    with fxfault.disabled(gm):
        got = _faulted_weight(gm, X)
    dtype = FORMATS[fmt].dtype
    assert torch.equal(got, model.c.weight.detach().to(dtype).to(torch.float32))
    assert fxfault.sites(gm)[0].bits == 8


def test_non_finite_weights_are_a_fault_outcome_not_an_error():
    model = _model()
    faults = [("c", i, 30) for i in range(36)] + [("l", i, 30) for i in range(20)]
    gm = fxfault.transform(model, FaultConfig(float_format="float32", faults=faults)).eval()
    with torch.no_grad():
        y = gm(X)
    assert not torch.isfinite(y).all()


def test_the_gradient_is_the_clean_weights():
    model = _model()
    gm = fxfault.transform(model, FaultConfig(float_format="float32", ber=0.02, seed=0)).train()
    gm(X).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = None
    with fxfault.disabled(gm):
        gm(X).sum().backward()
    # the straight-through gradient: the weights' own gradient flows, whatever the faults did
    assert all(grads[n] is not None and grads[n].shape == p.shape for n, p in model.named_parameters())
