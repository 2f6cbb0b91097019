"""The examples run (in their small settings)."""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_train_fault_aware_quick():
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_fault_aware.py"), "--quick"],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert "fault-aware" in out.stdout and "gain" in out.stdout
    lines = [ln for ln in out.stdout.splitlines() if ln.strip().startswith(("1e-03", "1e-02"))]
    assert len(lines) == 2
