"""``import fxfault`` pulls in no optional dependency and not the campaign stack."""

import json
import subprocess
import sys

HEAVY = ("networkx", "matplotlib", "tqdm", "pandas", "scipy", "transformers", "brevitas", "torchao",
         "fxfault.campaign", "fxfault.cli")

_PROBE = """
import json, sys
import torch
before = set(sys.modules)
import fxfault
fxfault.FaultConfig(ber=1e-6)
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_import_fxfault_is_lean():
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True)
    added = json.loads(out.stdout.strip().splitlines()[-1])
    heavy = sorted(m for m in added if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert heavy == [], f"import fxfault imports {heavy}"


def test_lazy_names_load_on_first_use():
    probe = "import sys, fxfault; assert 'fxfault.campaign' not in sys.modules; fxfault.sweep; " \
            "assert 'fxfault.campaign' in sys.modules; print('ok')"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
