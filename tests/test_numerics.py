"""What the faulty weights are: identity at ber=0, complement at ber=1, always on the grid."""

import pytest
import torch

import fxfault
from fxfault import FaultConfig
from fxfault.testing import lsq_thresholds

from .helpers import bits_equal, capture, single_layer


def test_ber_zero_is_bit_identical(resnet18, cifar_x):
    gm = fxfault.transform(resnet18, ber=0.0)
    with torch.no_grad():
        assert bits_equal(gm(cifar_x), resnet18(cifar_x))


def test_disabled_is_bit_identical(resnet18, cifar_x):
    gm = fxfault.transform(resnet18, ber=1e-2, seed=1)
    with torch.no_grad():
        faulty = gm(cifar_x)
        with fxfault.disabled(gm):
            clean = gm(cifar_x)
        assert bits_equal(clean, resnet18(cifar_x))
        assert not torch.equal(faulty, clean)
        # and the switch is restored on exit
        assert not torch.equal(gm(cifar_x), clean)


def test_ber_zero_is_bit_identical_in_training_mode_too(cnn, digits_x):
    gm = fxfault.transform(cnn, ber=0.0)
    import copy

    ref = copy.deepcopy(cnn).train()
    gm.train()
    assert bits_equal(gm(digits_x), ref(digits_x))


@pytest.mark.parametrize("k", [2, 3, 4, 5, 6, 7, 8])
@pytest.mark.parametrize("flags", ["full", "symmetric", "all_positive"])
def test_ber_one_complements_every_code(k, flags):
    model = single_layer(k, all_positive=flags == "all_positive", symmetric=flags == "symmetric")
    gm = fxfault.transform(model, ber=1.0)
    x = torch.rand(3, 64)
    _, v = capture(gm, x)
    codes = v["fc_weight_quantize"].to(torch.int64)
    flipped = v["fc_weight_flip"].to(torch.int64)
    if flags == "all_positive":
        assert torch.equal(flipped, (2**k - 1) - codes)
    else:
        # offset binary: word = code + 2^(k-1); all bits flipped: (2^k - 1) - word
        word = codes + 2 ** (k - 1)
        assert torch.equal(flipped + 2 ** (k - 1), (2**k - 1) - word)


@pytest.mark.parametrize("k", [2, 3, 4, 5, 6, 7, 8])
@pytest.mark.parametrize("flags", ["full", "symmetric", "all_positive"])
@pytest.mark.parametrize("mode", ["transient", "persistent"])
def test_faulted_weights_lie_on_the_grid(k, flags, mode):
    ap, sym = flags == "all_positive", flags == "symmetric"
    model = single_layer(k, all_positive=ap, symmetric=sym)
    gm = fxfault.transform(model, FaultConfig(ber=0.2, mode=mode, seed=k))
    s = model.fc.quan_w_fn.get_scale(k)
    lo, hi = lsq_thresholds(k, ap, sym)
    vmin, vmax = (0, 2**k - 1) if ap else (-(2 ** (k - 1)), 2 ** (k - 1) - 1)
    for _ in range(3):
        _, v = capture(gm, torch.rand(2, 64))
        clean = v["fc_quan_w_fn"]
        wf = v["fc_weight_dequantize"]
        assert torch.isfinite(wf).all()
        codes = wf / s
        # on the grid: integer multiples of the step (the quantizer's own floats may differ
        # from code * s in the last bit, see ops.dequantize)
        assert ((codes - codes.round()).abs() / codes.abs().clamp(min=1)).max() < 1e-6
        assert codes.round().min() >= vmin and codes.round().max() <= vmax
        flipped = v["fc_weight_flip"]
        assert flipped.min() >= vmin and flipped.max() <= vmax
        changed = flipped != v["fc_weight_quantize"]
        assert changed.any()
        # faulted weights are exactly code * s
        assert torch.equal(wf[changed], flipped[changed].to(torch.float32) * s)
        # unchanged codes keep the quantizer's own float bit for bit
        assert bits_equal(wf[~changed], clean[~changed])
        assert torch.equal(v["fc_weight_quantize"].to(torch.int64).clamp(lo, hi), v["fc_weight_quantize"].to(torch.int64))


@pytest.mark.parametrize("k", [2, 4, 8])
def test_narrow_symmetric_range_can_reach_the_extra_negative_code(k):
    """Documented: under a symmetric (narrow) range [-(2^(k-1)-1), 2^(k-1)-1], flipping the MSB
    of code 0 (offset-binary word 100..0) gives the word 0, which means -2^(k-1). The value is
    kept (it is what the stored word means), so the faulted weight is -2^(k-1) * s: on the grid,
    one step below the quantizer's clamp range."""
    model = single_layer(k, symmetric=True)
    with torch.no_grad():
        model.fc.weight[0, 0] = 0.0  # code 0
    gm = fxfault.transform(model, FaultConfig(faults=[("fc", 0, k - 1)]))
    s = model.fc.quan_w_fn.get_scale(k)
    _, v = capture(gm, torch.rand(1, 64))
    assert int(v["fc_weight_quantize"].reshape(-1)[0]) == 0
    assert int(v["fc_weight_flip"].reshape(-1)[0]) == -(2 ** (k - 1))
    assert v["fc_weight_dequantize"].reshape(-1)[0] == -(2 ** (k - 1)) * s


def test_flip_changes_exactly_the_sampled_weights(resnet18, cifar_x):
    gm = fxfault.transform(resnet18, FaultConfig(ber=1e-3, mode="persistent", seed=4))
    site = fxfault.control.fault_sites(gm)[5]
    w_idx, masks, events = site.fault_map()
    _, v = capture(gm, cifar_x)
    stem = site.name.replace(".", "_") + "_weight"
    changed = (v[f"{stem}_flip"] != v[f"{stem}_quantize"]).reshape(-1).nonzero().squeeze(1)
    assert torch.equal(changed, w_idx)
    assert events == int(sum(bin(int(m)).count("1") for m in masks))
