"""Resolve model specs given on the command line.

A spec is either a bundled name or ``package.module:factory`` (a callable returning an
``nn.Module``, called with no arguments), e.g. ``torchvision.models:resnet18`` or
``mypkg.models:build_quantized``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from torch import nn

__all__ = ["BUNDLED_MODELS", "load_model"]


def _lsq_resnet18() -> nn.Module:
    from ..testing import lsq_resnet18

    return lsq_resnet18()


def _demo_cnn() -> nn.Module:
    from ..testing import lsq_small_cnn

    return lsq_small_cnn()


def _digits_cnn() -> nn.Module:
    from ..testing.digits import trained_digits_cnn

    return trained_digits_cnn()


#: bundled model names and their builders
BUNDLED_MODELS: dict[str, Callable[[], nn.Module]] = {
    "lsq-resnet18": _lsq_resnet18,
    "demo-cnn": _demo_cnn,
    "digits-cnn": _digits_cnn,
}


def load_model(spec: str) -> nn.Module:
    """Build the model named by ``spec`` (a bundled name or ``package.module:factory``)."""
    if spec in BUNDLED_MODELS:
        return BUNDLED_MODELS[spec]()
    if ":" not in spec:
        import difflib

        close = difflib.get_close_matches(spec, list(BUNDLED_MODELS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown model {spec!r}.{hint} Give a bundled name ({', '.join(BUNDLED_MODELS)}) "
            "or 'package.module:factory'"
        )
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"cannot import {module_name!r} for model spec {spec!r}: {e}") from e
    factory = module
    for part in attr.split("."):
        if not hasattr(factory, part):
            raise ValueError(f"{module_name!r} has no attribute {attr!r} (model spec {spec!r})")
        factory = getattr(factory, part)
    model = factory() if callable(factory) and not isinstance(factory, nn.Module) else factory
    if not isinstance(model, nn.Module):
        raise TypeError(f"model spec {spec!r} gave a {type(model).__name__}, not an nn.Module")
    return model
