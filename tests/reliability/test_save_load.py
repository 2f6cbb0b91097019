"""fxfault.save / fxfault.load: weights_only-safe files that restore the fault streams exactly,
also in a fresh process; torch.save keeps chain names and metadata (issue 17)."""

import io
import subprocess
import sys

import pytest
import torch

import fxfault
from fxfault import ConfigError, FaultConfig
from fxfault.runtime.saving import load, save
from fxfault.testing import lsq_small_cnn

X = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("mode", ["transient", "persistent"])
def test_save_then_load_gives_the_same_next_faults(tmp_path, mode):
    model = lsq_small_cnn(seed=0)
    gm = fxfault.transform(model, FaultConfig(ber=0.02, seed=5, mode=mode)).eval()
    with torch.no_grad():
        gm(X), gm(X)  # advance the streams
    fxfault.resample(gm)  # a later trial
    with torch.no_grad():
        gm(X)
    fxfault.set_ber(gm, 0.03, layers="conv2")
    fxfault.set_enabled(gm, False, layers="fc")
    path = save(gm, tmp_path / "faulty.fxf")
    again = load(path, lsq_small_cnn(seed=0))
    assert fxfault.fault_list(again) == fxfault.fault_list(gm)
    assert [s.enabled for s in fxfault.sites(again)] == [True, True, False]
    assert fxfault.stats(again).to_dict() == fxfault.stats(gm).to_dict()
    with torch.no_grad():
        assert torch.equal(again.eval()(X), gm(X))


def test_the_file_loads_with_weights_only(tmp_path):
    path = save(fxfault.transform(lsq_small_cnn(), ber=1e-3), tmp_path / "f.fxf")
    data = torch.load(path, weights_only=True)
    assert data["format"] == "fxfault.faulty-model" and "conv1.weight" in data["state_dict"]


def test_load_checks_the_weights_and_never_changes_the_model(tmp_path):
    path = save(fxfault.transform(lsq_small_cnn(seed=0), ber=1e-3), tmp_path / "f.fxf")
    other = lsq_small_cnn(seed=7)
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(ConfigError, match="load_weights=True"):
        load(path, other)
    gm = load(path, other, load_weights=True)
    assert all(torch.equal(v, before[k]) for k, v in other.state_dict().items())
    assert torch.equal(gm.conv1.weight, lsq_small_cnn(seed=0).conv1.weight)


def test_bad_files_are_clear_errors(tmp_path):
    junk = tmp_path / "junk.fxf"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ConfigError, match="not a file written by fxfault.save"):
        load(junk, lsq_small_cnn())
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.fxf", lsq_small_cnn())
    with pytest.raises(TypeError, match="fxfault.transform"):
        save(lsq_small_cnn(), tmp_path / "x.fxf")


def test_save_and_load_in_a_fresh_process(tmp_path):
    gm = fxfault.transform(lsq_small_cnn(seed=0), FaultConfig(ber=0.02, seed=9))
    with torch.no_grad():
        gm.eval()(X)
    path = save(gm, tmp_path / "f.fxf")
    expected = fxfault.fault_list(gm)
    probe = (
        "import sys, json, fxfault; from fxfault.runtime.saving import load; "
        "from fxfault.testing import lsq_small_cnn; "
        f"g = load({str(path)!r}, lsq_small_cnn(seed=0)); print(json.dumps(fxfault.fault_list(g)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    import json

    assert [tuple(f) for f in json.loads(out.stdout.strip().splitlines()[-1])] == expected


def test_torch_save_keeps_the_chain_names_and_metadata():
    gm = fxfault.transform(lsq_small_cnn(), FaultConfig(ber=1e-3, seed=2))
    buf = io.BytesIO()
    torch.save(gm, buf)
    buf.seek(0)
    again = torch.load(buf, weights_only=False)
    def chain(g):
        return [(n.name, n.meta["fxfault"]["role"], n.meta["fxfault"]["site"]) for n in g.graph.nodes
                if n.meta.get("fxfault", {}).get("role") not in (None, "grid")]

    assert chain(again) == chain(gm)
    with pytest.raises(Exception, match="weights_only|Unpickl"):
        buf.seek(0)
        torch.load(buf, weights_only=True)
