"""Every ```python block of the README and of docs/*.md runs (blocks of one file share a namespace).

Blocks fenced as ```py are illustrations and are not run.
"""

import pathlib
import re

import pytest
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


@pytest.mark.slow
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_python_blocks_run(path, tmp_path, monkeypatch):
    blocks = BLOCK.findall(path.read_text(encoding="utf-8"))
    if not blocks:
        pytest.skip("no runnable blocks")
    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": "__doc__"}
    for i, code in enumerate(blocks):
        with torch.random.fork_rng():
            try:
                exec(compile(code, f"{path.name}[block {i}]", "exec"), ns)
            except Exception as e:  # pragma: no cover - the message is the point
                raise AssertionError(f"{path.name} block {i} failed:\n{code}") from e
