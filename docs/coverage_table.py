"""Regenerate docs/coverage.md: which torchvision architectures fxfault handles, per quantization
path.

Usage::

    .venv/bin/python docs/coverage_table.py            # every row (several minutes on 2 cores)
    .venv/bin/python docs/coverage_table.py resnet18   # some rows, printed only

For each model (``weights=None``) and each path, a cell says whether fxfault transformed it,
how many fault sites it placed against the number of conv/linear weight tensors in the model,
and whether ``ber=0`` reproduces the quantized model's output. Failures of the quantization
flow itself (before fxfault runs) are reported as such.
"""

from __future__ import annotations

import copy
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

import fxfault
from fxfault import FaultConfig

MODELS = [
    "resnet18",
    "resnet50",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "efficientnet_b0",
    "regnet_y_400mf",
    "convnext_tiny",
    "vit_b_16",
    "swin_t",
]
PATHS = ["lsq", "torch.ao FX QAT", "PT2E (XNNPACK)", "float (own 8-bit)"]
SIZES = {"vit_b_16": 224, "swin_t": 112}


@dataclass
class Cell:
    ok: bool
    sites: int = 0
    weights: int = 0
    equivalent: bool | None = None
    note: str = ""
    seconds: float = 0.0

    def markdown(self) -> str:
        if not self.ok:
            return f"✗ {self.note}"
        eq = {True: "ber=0 ≡", False: "ber=0 ≠", None: ""}[self.equivalent]
        text = f"✓ {self.sites}/{self.weights} sites, {eq}".rstrip(", ")
        return f"{text} ({self.note})" if self.note else text


def build(name: str) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return getattr(torchvision.models, name)(weights=None).eval()


def count_weights(model: nn.Module) -> int:
    n = 0
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            n += 1
        elif isinstance(m, nn.MultiheadAttention) and m.in_proj_weight is not None:
            n += 1  # in_proj_weight (out_proj is a Linear, counted above)
    return n


def example(name: str) -> torch.Tensor:
    s = SIZES.get(name, 64)
    return torch.randn(2, 3, s, s, generator=torch.Generator().manual_seed(0))


class FlowFailed(Exception):
    """The quantization flow itself failed, before fxfault ran."""


def _flow(fn: Callable[[], nn.Module]) -> nn.Module:
    try:
        return fn()
    except Exception as e:
        raise FlowFailed(f"{type(e).__name__}: {str(e).splitlines()[0][:80]}") from e


def lsq_path(model: nn.Module, x: torch.Tensor) -> tuple[nn.Module, nn.Module, dict[str, Any]]:
    from fxfault.testing import calibrate, quantize_lsq

    q = _flow(lambda: calibrate(quantize_lsq(model, weight_bits=4, act_bits=4), x).eval())
    return q, q, {}


def ao_path(model: nn.Module, x: torch.Tensor) -> tuple[nn.Module, nn.Module, dict[str, Any]]:
    import torch.ao.quantization as tq
    from torch.ao.quantization.quantize_fx import prepare_qat_fx

    def make() -> nn.Module:
        p = prepare_qat_fx(copy.deepcopy(model).train(), tq.get_default_qat_qconfig_mapping("x86"), (x,))
        with torch.no_grad():
            p(x)
        p.apply(tq.disable_observer)
        return p.eval()

    p = _flow(make)
    return p, p, {}


def pt2e_path(model: nn.Module, x: torch.Tensor) -> tuple[nn.Module, nn.Module, dict[str, Any]]:
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.testing.pt2e._xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )

    def make() -> nn.Module:
        exported = torch.export.export(copy.deepcopy(model), (x,)).module()
        q = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
        p = prepare_pt2e(exported, q)
        with torch.no_grad():
            p(x)
        return convert_pt2e(p)

    c = _flow(make)
    return c, c, {}


def float_path(model: nn.Module, x: torch.Tensor) -> tuple[nn.Module, nn.Module, dict[str, Any]]:
    return model, model, {"float_bits": 8}


def float_reference(model: nn.Module, layers: set[str]) -> nn.Module:
    """``model`` with the weights of ``layers`` quantized per channel (8 bits), computed apart."""
    ref = copy.deepcopy(model)
    with torch.no_grad():
        for name, m in ref.named_modules():
            if name in layers:
                w = m.weight
                amax = w.abs().reshape(w.shape[0], -1).amax(1).reshape(-1, *[1] * (w.dim() - 1))
                s = torch.where(amax > 0, amax / 127, torch.ones_like(amax))
                w.copy_(torch.clamp(torch.round(w * (1 / s)), -127, 127) * s)
    return ref


BUILDERS = {
    "lsq": lsq_path,
    "torch.ao FX QAT": ao_path,
    "PT2E (XNNPACK)": pt2e_path,
    "float (own 8-bit)": float_path,
}


def cell(name: str, path: str) -> Cell:
    t0 = time.perf_counter()
    model = build(name)
    x = example(name)
    weights = count_weights(model)
    try:
        source, reference, extra = BUILDERS[path](model, x)
    except FlowFailed as e:
        return Cell(False, weights=weights, note=f"quantization flow failed ({e})")
    with torch.no_grad():
        first, second = reference(x), reference(x)
    if not torch.isfinite(first).all():
        return Cell(False, weights=weights, note="the quantized source model outputs NaN/Inf")
    deterministic = torch.equal(first, second)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            faulty = fxfault.transform(source, FaultConfig(ber=0.0, **extra))
            with torch.no_grad():
                out = faulty(x)
                ref = reference(x)
    except Exception as e:
        first = str(e).splitlines()[0][:100]
        return Cell(False, weights=weights, note=f"fxfault: {type(e).__name__}: {first}")
    note = ""
    if path.startswith("float"):
        ref_model = float_reference(model, {s.layer for s in fxfault.sites(faulty)})
        with torch.no_grad():
            equivalent: bool | None = bool(torch.allclose(out, ref_model(x), rtol=1e-4, atol=1e-4))
    elif not deterministic:
        equivalent, note = None, "source model is random in eval mode: not compared"
    else:
        equivalent = bool(torch.equal(out, ref))
    return Cell(
        True,
        sites=len(fxfault.sites(faulty)),
        weights=weights,
        equivalent=equivalent,
        note=note,
        seconds=time.perf_counter() - t0,
    )


def table(models: list[str], paths: list[str] = PATHS) -> tuple[str, dict[str, dict[str, Cell]]]:
    cells: dict[str, dict[str, Cell]] = {}
    for name in models:
        cells[name] = {}
        for path in paths:
            try:
                cells[name][path] = cell(name, path)
            except Exception:  # pragma: no cover - reported in the table
                cells[name][path] = Cell(False, note="error: " + traceback.format_exc(limit=1).splitlines()[-1][:80])
            print(f"{name:20} {path:18} {cells[name][path].markdown()}", file=sys.stderr, flush=True)
    head = "| model | " + " | ".join(paths) + " |\n|---|" + "---|" * len(paths) + "\n"
    rows = "".join(
        f"| {name} | " + " | ".join(cells[name][p].markdown() for p in paths) + " |\n" for name in models
    )
    return head + rows, cells


PREAMBLE = """# Coverage: torchvision architectures × quantization paths

Generated by `docs/coverage_table.py` (torch {torch}, torchvision {tv}, fxfault {fx}); the
test-suite regenerates a representative subset (`tests/test_coverage_table.py`).

Each cell: whether `fxfault.transform` handled the model, the number of fault sites against the
number of conv/linear weight tensors of the model, and whether `ber=0` reproduces the quantized
model's output (`≡`: bit for bit for the LSQ, torch.ao and PT2E paths, within 1e-4 against an
independent per-channel quantization for the float path). Models use `weights=None`, inputs of
64×64 pixels (112 for swin_t, 224 for vit_b_16).

- **lsq**: the test double's `quantize_lsq` (4-bit weights, 8-bit first and last layer). It
  quantizes `nn.Conv2d` and `nn.Linear` modules only, so attention projections inside
  `nn.MultiheadAttention` stay float and get no site.
- **torch.ao FX QAT**: `prepare_qat_fx` with the default x86 QAT qconfig mapping, observers
  then disabled.
- **PT2E (XNNPACK)**: `torch.export` + torchao's `prepare_pt2e` / `convert_pt2e` with the
  XNNPACK quantizer (per-channel symmetric int8 weights).
- **float (own 8-bit)**: the float model with `FaultConfig(float_bits=8)`.

Reading the numbers:

- Fewer sites than weights: weights that the path leaves unquantized, or that the model reads
  inside a function torch.fx does not trace into (`nn.MultiheadAttention` in vit_b_16;
  torchvision's `shifted_window_attention`, marked `torch.fx.wrap`, in swin_t), get no site.
- More sites than weights (PT2E): `torch.export` sees every weight, and the XNNPACK quantizer
  stores more of them as integers — the attention projections that the other paths cannot reach,
  ConvNeXt's layer scales, ViT's positional embedding — and each integer weight in memory is a
  site. Inside `nn.MultiheadAttention` the sites are named after the attention module
  (`...self_attention`, `...self_attention#1`).
- "random in eval mode": `prepare_qat_fx` traces the model in training mode, so dropout and
  stochastic depth stay active in its graph; the source model then differs from itself and the
  identity check does not apply.
- ✗ with "outputs NaN/Inf": the quantized source model is broken before fxfault runs (LSQ's step
  size initialisation divides by the mean |w| of ViT's all-zero classifier weight).

"""


def main(argv: list[str]) -> int:
    models = argv or MODELS
    text, _ = table(models)
    doc = PREAMBLE.format(torch=torch.__version__, tv=torchvision.__version__, fx=fxfault.__version__) + text
    if argv:
        print(doc)
    else:
        out = Path(__file__).with_name("coverage.md")
        out.write_text(doc, encoding="utf-8")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    torch.set_num_threads(2)
    sys.exit(main(sys.argv[1:]))
