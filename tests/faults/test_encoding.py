"""Encodings: hand-computed words, round trips, and the offset/two's-complement facts."""

import pytest
import torch

import fxfault
from fxfault import ConfigError, FaultConfig
from fxfault.faults.encoding import make_encoding

from ..helpers import capture, single_layer

V3 = torch.arange(-4, 4)  # the signed 3-bit value space


def test_offset_binary_words():
    e = make_encoding("offset", 3, -4, 3)
    assert e.encode(V3).tolist() == [0, 1, 2, 3, 4, 5, 6, 7]


def test_twos_complement_words():
    e = make_encoding("twos", 3, -4, 3)
    assert e.encode(V3).tolist() == [4, 5, 6, 7, 0, 1, 2, 3]


def test_sign_magnitude_words_and_negative_zero():
    e = make_encoding("sign_magnitude", 3, -3, 3)
    assert e.encode(torch.arange(-3, 4)).tolist() == [7, 6, 5, 0, 1, 2, 3]
    assert e.decode(torch.tensor([4])).tolist() == [0]  # "-0"


def test_gray_words():
    e = make_encoding("gray", 3, -4, 3)
    # offset words 0..7 in reflected Gray code
    assert e.encode(V3).tolist() == [0, 1, 3, 2, 6, 7, 5, 4]


def test_unsigned_value_space():
    e = make_encoding("offset", 3, 0, 7)
    assert e.encode(torch.arange(8)).tolist() == list(range(8))
    assert make_encoding("twos", 3, 0, 7).decode(torch.arange(8)).tolist() == list(range(8))


@pytest.mark.parametrize("k", [1, 2, 3, 4, 8, 12, 16])
@pytest.mark.parametrize("name", ["offset", "twos", "gray", "table"])
def test_round_trip(k, name):
    lo, hi = -(2 ** (k - 1)), 2 ** (k - 1) - 1
    spec = list(reversed(range(2**k))) if name == "table" else name
    e = make_encoding(spec, k, lo, hi)
    v = torch.arange(lo, hi + 1)
    w = e.encode(v)
    assert sorted(w.tolist()) == list(range(2**k)), "a bijection onto the k-bit words"
    assert torch.equal(e.decode(w), v)


def test_code_table_as_dict_and_validation():
    table = {v: (v + 4) ^ 5 for v in range(-4, 4)}
    e = make_encoding(table, 3, -4, 3)
    assert e.encode(V3).tolist() == [table[v] for v in range(-4, 4)]
    with pytest.raises(ConfigError, match="not a bijection"):
        make_encoding([0, 1, 2, 3, 4, 5, 6, 6], 3, -4, 3)
    with pytest.raises(ConfigError, match="has 4 words but 3 bits need 8"):
        make_encoding([0, 1, 2, 3], 3, -4, 3)
    with pytest.raises(ConfigError, match="missing"):
        make_encoding({0: 0, 1: 1}, 3, -4, 3)
    with pytest.raises(ConfigError, match="out-of-range"):
        make_encoding([0, 1, 2, 3, 4, 5, 6, 9], 3, -4, 3)


def test_sign_magnitude_needs_a_symmetric_signed_range():
    with pytest.raises(ConfigError, match="cannot hold the code -4"):
        make_encoding("sign_magnitude", 3, -4, 3)
    with pytest.raises(ConfigError, match="needs a signed code range"):
        make_encoding("sign_magnitude", 3, 0, 7)
    with pytest.raises(ConfigError, match="unknown encoding"):
        FaultConfig(encoding="bcd")


def _faulted(encoding, fault, faults, symmetric=False):
    model = single_layer(4, symmetric=symmetric, shape=(4, 8))
    gm = fxfault.transform(model, FaultConfig(encoding=encoding, fault=fault, faults=faults))
    _, v = capture(gm, torch.rand(1, 8))
    return v["fc_weight_quantize"].to(torch.int64), v["fc_weight_flip"].to(torch.int64)


FAULTS = [("fc", i, b) for i in range(32) for b in (0, 3) if (i + b) % 3 == 0]


def test_xor_flips_are_identical_under_offset_and_twos():
    codes, off = _faulted("offset", "flip", FAULTS)
    _, twos = _faulted("twos", "flip", FAULTS)
    assert torch.equal(off, twos)
    assert not torch.equal(off, codes)


@pytest.mark.parametrize("fault", ["stuck_at_0", "stuck_at_1"])
def test_stuck_at_faults_differ_between_offset_and_twos(fault):
    _, off = _faulted("offset", fault, FAULTS)
    _, twos = _faulted("twos", fault, FAULTS)
    assert not torch.equal(off, twos)


def test_flip_under_gray_and_sign_magnitude_by_hand():
    codes, gray = _faulted("gray", "flip", [("fc", 0, 0)])
    c = int(codes.reshape(-1)[0])
    b = c + 8
    g = (b ^ (b >> 1)) ^ 1
    dec = g
    for s in (1, 2):
        dec ^= dec >> s
    assert int(gray.reshape(-1)[0]) == dec - 8
    codes, sm = _faulted("sign_magnitude", "flip", [("fc", 0, 3)], symmetric=True)
    c = int(codes.reshape(-1)[0])
    assert int(sm.reshape(-1)[0]) == -c  # the sign bit


def test_per_layer_encoding(resnet18, cifar_x):
    gm = fxfault.transform(resnet18, FaultConfig(encoding={"layer2.*": "gray", "linear": "twos"}))
    enc = {s.name: s.encoding for s in fxfault.sites(gm)}
    assert enc["layer2.0.conv1"] == "gray" and enc["linear"] == "twos" and enc["conv1"] == "offset"
