"""A representative subset of docs/coverage.md, regenerated in CI."""

import importlib.util
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("coverage_table", ROOT / "docs" / "coverage_table.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses need the module registered
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
@pytest.mark.parametrize("model", ["resnet18", "mobilenet_v3_small"])
def test_representative_rows(model):
    pytest.importorskip("torchao")
    ct = _load()
    _, cells = ct.table([model])
    for path, cell in cells[model].items():
        assert cell.ok, f"{model} / {path}: {cell.note}"
        assert cell.sites == cell.weights, f"{model} / {path}"
        assert cell.equivalent, f"{model} / {path}: ber=0 is not equivalent"


def test_committed_table_is_complete():
    text = (ROOT / "docs" / "coverage.md").read_text()
    ct = _load()
    for model in ct.MODELS:
        assert f"| {model} |" in text
