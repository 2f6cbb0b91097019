import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_quick_runs():
    out = subprocess.run(
        [sys.executable, "-m", "fxfault", "demo", "--quick"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert "bit for bit: True" in out.stdout
    assert "Demo finished in" in out.stdout
