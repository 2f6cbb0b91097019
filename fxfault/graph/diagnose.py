"""What the pass says when it finds no site, or a quantizer it cannot read.

The hints name only modules that look like quantizers (a class name with ``quant`` that is not a
layer holding weights, such as a torchvision ``QuantizableResNet``), and say what fxfault looked
for, so that the user can register their quantizer or choose a fault model for float weights.
"""

from __future__ import annotations

import warnings
from typing import Any

from torch import fx, nn

from ..errors import NoSitesError

__all__ = ["no_sites_error", "warn_unrecognised"]

_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def _looks_like_quantizer(mod: nn.Module) -> bool:
    """A module named like a quantizer that holds no weight of its own and is not a container
    of layers (``QuantizableBasicBlock`` holds convs: not a quantizer)."""
    cls = type(mod)
    if cls.__module__.startswith(("torch.", "fxfault.")) or "quant" not in cls.__name__.lower():
        return False
    if isinstance(getattr(mod, "weight", None), nn.Parameter):
        return False
    return not any(isinstance(m, _LAYERS) for m in mod.modules())


def warn_unrecognised(gm: fx.GraphModule, matched: set[int]) -> None:
    """Warn about modules that look like weight quantizers but no adapter took."""
    for node in gm.graph.nodes:
        if node.op != "call_module" or id(node) in matched or not node.args:
            continue
        mod = gm.get_submodule(str(node.target))
        cls = type(mod)
        if cls.__module__.startswith(("torch.", "fxfault.")) or "quant" not in (
            cls.__name__ + str(node.target)
        ).lower():
            continue
        src = node.args[0]
        if isinstance(src, fx.Node) and src.op == "get_attr":
            value: Any = gm
            for part in str(src.target).split("."):
                value = getattr(value, part)
            if isinstance(value, nn.Parameter):
                warnings.warn(
                    f"{node.format_node()} looks like a weight quantizer ({cls.__qualname__} on "
                    f"the parameter {src.target!r}) but no fxfault adapter recognised it, so it "
                    "gets no fault site; register it with fxfault.register_quantizer(...)",
                    stacklevel=5,
                )


def no_sites_error(gm: fx.GraphModule, model: nn.Module, adapters: list[Any]) -> NoSitesError:
    """The error for a model without any quantizer fxfault can read, with hints."""
    looked = "\n  ".join(a.describe() for a in adapters)
    floats = [
        n
        for n in gm.graph.nodes
        if n.op == "call_module" and isinstance(gm.get_submodule(str(n.target)), _LAYERS)
    ]
    suspects = sorted({type(m).__qualname__ for m in model.modules() if _looks_like_quantizer(m)})
    hint = ""
    if suspects:
        hint += (
            f"\nThese modules look like quantizers but no adapter recognised them: "
            f"{', '.join(suspects)}. Register yours with fxfault.register_quantizer(...)."
        )
    if floats:
        hint += (
            f"\nThe model has {len(floats)} plain float conv/linear layers; to study it "
            "at a chosen width with fxfault's own weight quantizer, set "
            "FaultConfig(float_bits=8)."
        )
    return NoSitesError(
        "the model has no weight quantizer that fxfault can turn into a fault site. "
        f"fxfault looked for:\n  {looked}{hint}\nIf your quantizer is of another kind, "
        "register it with fxfault.register_quantizer(...)."
    )
