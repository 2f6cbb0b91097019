"""The models of the command line: the bundled ones, ``package.module:factory`` specs and
``torch.save``'d files.

A spec is either a bundled name (:data:`BUNDLED_MODELS`, the one list every subcommand uses) or
``package.module:factory`` (a callable returning an ``nn.Module``, called with no arguments),
e.g. ``torchvision.models:resnet18`` or ``mypkg.models:build_quantized``.

Example::

    >>> BUNDLED_MODELS["demo-cnn"].input_shape
    (1, 1, 8, 8)
    >>> type(load_model("demo-cnn")).__name__
    'SmallCNN'
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import io
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "BUNDLED_MODELS",
    "MODEL_SUFFIXES",
    "BundledModel",
    "bundled_names",
    "import_object",
    "load_model",
    "load_model_arg",
    "load_weights",
    "try_forward",
]

#: suffixes of model files given as MODEL
MODEL_SUFFIXES = (".pt", ".pth")


def _lsq_resnet18() -> nn.Module:
    from ..testing import lsq_resnet18

    return lsq_resnet18()


def _demo_cnn() -> nn.Module:
    from ..testing import lsq_small_cnn

    return lsq_small_cnn()


def _digits_cnn() -> nn.Module:
    from ..testing.digits import trained_digits_cnn

    return trained_digits_cnn()


@dataclass(frozen=True)
class BundledModel:
    """A model that ships with fxfault: its name, builder and the shape of one input."""

    name: str
    build: Callable[[], nn.Module]
    input_shape: tuple[int, ...]
    about: str


#: the bundled models, by name; every subcommand takes its list from here
BUNDLED_MODELS: dict[str, BundledModel] = {
    m.name: m
    for m in (
        BundledModel("lsq-resnet18", _lsq_resnet18, (1, 3, 32, 32), "an LSQ ResNet-18 for 32x32 images"),
        BundledModel("demo-cnn", _demo_cnn, (1, 1, 8, 8), "a small LSQ CNN for 8x8 images (untrained)"),
        BundledModel("digits-cnn", _digits_cnn, (1, 1, 8, 8),
                     "the demo's mixed-precision LSQ CNN, trained on the digits (a few seconds)"),
    )
}


def bundled_names() -> str:
    """``"lsq-resnet18, demo-cnn, digits-cnn"``, for help texts and messages."""
    return ", ".join(BUNDLED_MODELS)


def import_object(spec: str, what: str) -> Any:
    """The object named by ``package.module:attribute`` (dots in the attribute allowed)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"the {what} spec {spec!r} must look like 'package.module:name'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"cannot import {module_name!r} for the {what} spec {spec!r}: {e}") from e
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{module_name!r} has no attribute {attr!r} (the {what} spec {spec!r})")
        obj = getattr(obj, part)
    return obj


def load_model(spec: str) -> nn.Module:
    """Build the model named by ``spec`` (a bundled name or ``package.module:factory``)."""
    if spec in BUNDLED_MODELS:
        return BUNDLED_MODELS[spec].build()
    if ":" not in spec:
        close = difflib.get_close_matches(spec, list(BUNDLED_MODELS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown model {spec!r}.{hint} Give a bundled name ({bundled_names()}) "
            "or 'package.module:factory'"
        )
    factory = import_object(spec, "model")
    model = factory() if callable(factory) and not isinstance(factory, nn.Module) else factory
    if not isinstance(model, nn.Module):
        raise TypeError(f"model spec {spec!r} gave a {type(model).__name__}, not an nn.Module")
    return model


def _read_torch_file(path: Path, *, pickled_hint: str, trust_pickle: bool = False) -> Any:
    """``torch.load`` of a file the user named; every failure is a ``ValueError`` naming it.

    A file holding pickled Python objects (which run code when loaded) is refused, with
    ``pickled_hint`` saying what to do instead, unless ``trust_pickle``.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only" not in str(e).lower():
            raise ValueError(f"{str(path)!r} is not a file written by torch.save ({e})") from e
        if not trust_pickle:
            raise ValueError(
                f"{str(path)!r} holds a pickled Python object (such as a whole nn.Module), and "
                f"loading it runs code from the file; {pickled_hint}"
            ) from e
    except Exception as e:  # a file that is not torch's: KeyError, EOFError, RuntimeError, ...
        raise ValueError(
            f"{str(path)!r} is not a file written by torch.save "
            f"({type(e).__name__}: {str(e).strip() or 'unreadable'})"
        ) from e
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise ValueError(f"{str(path)!r} could not be unpickled ({type(e).__name__}: {e})") from e


def load_model_arg(spec: str, *, weights: str | None = None, trust_pickle: bool = False) -> nn.Module:
    """The model of the command line: a spec (:func:`load_model`) or a model file.

    A file is read with ``torch.load(weights_only=True)``; one holding a whole pickled
    ``nn.Module`` (which runs code when loaded) needs ``trust_pickle``. ``weights`` is a
    state dict loaded (strictly) into the model (:func:`load_weights`).
    """
    path = Path(spec)
    if path.suffix in MODEL_SUFFIXES or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"no model file {spec!r}")
        obj = _read_torch_file(
            path, trust_pickle=trust_pickle,
            pickled_hint="if you trust the file, add --trust-pickle. Safer: save model.state_dict() "
            "and give the architecture as MODEL with --weights FILE",
        )
        if isinstance(obj, Mapping):
            raise ValueError(
                f"{spec!r} holds a state dict, not a model; give the architecture as MODEL "
                "(a bundled name or package.module:factory) and this file as --weights"
            )
        if not isinstance(obj, nn.Module):
            raise TypeError(f"{spec!r} holds a {type(obj).__name__}, not an nn.Module")
        model = obj
    else:
        model = load_model(spec)
    if weights is not None:
        load_weights(model, weights)
    return model


def load_weights(model: nn.Module, weights: str) -> None:
    """Load the state dict in the file ``weights`` (read with ``weights_only=True``) into
    ``model``, strictly."""
    state = _read_torch_file(
        Path(weights),
        pickled_hint="give a state dict instead, saved with torch.save(model.state_dict(), path)",
    )
    if not isinstance(state, Mapping):
        raise TypeError(f"{weights!r} holds a {type(state).__name__}, not a state dict; save one "
                        "with torch.save(model.state_dict(), path)")
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError, KeyError) as e:
        raise ValueError(f"{weights!r} does not fit the model {type(model).__name__}: {e}") from e


def try_forward(faulty: nn.Module, inputs: Any) -> tuple[Any, str | None]:
    """Run ``inputs`` (a tensor, or a tuple/list of them) through ``faulty`` (the output of
    :func:`fxfault.transform`) with its faults disabled, in eval mode and without gradients:
    the outputs of the original model, which is not touched. Returns ``(outputs, None)``, or
    ``(None, why)`` when the model cannot take the inputs."""
    from ..runtime.control import disabled

    params = [*faulty.parameters(), *faulty.buffers()]
    dev = params[0].device if params else torch.device("cpu")

    def moved(x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            return x.to(dev)
        return type(x)(moved(v) for v in x) if isinstance(x, (tuple, list)) else x

    args = moved(inputs)
    training = faulty.training
    faulty.eval()
    try:  # torch.fx prints the generated code's traceback of a failing call: keep it quiet
        with torch.no_grad(), disabled(faulty), contextlib.redirect_stderr(io.StringIO()):
            out = faulty(*args) if isinstance(args, (tuple, list)) else faulty(args)
    except (RuntimeError, ValueError, TypeError, IndexError) as e:
        return None, f"{type(e).__name__}: {e}"
    finally:
        faulty.train(training)
    return out, None
