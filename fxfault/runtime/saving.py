"""``fxfault.save`` / ``fxfault.load``: a faulty model as data that loads with
``torch.load(weights_only=True)``.

A saved file holds the config, the transform's options, the fault state (seed, trial, the next
pass index, each site's switches, rate and counters) as JSON text, and the model's parameters
and buffers as tensors. Nothing in it is pickled code. :func:`load` transforms the model you
give it again and restores the fault state, so the next pass draws exactly the faults the saved
model would have drawn.

Example::

    >>> faulty = fxfault.transform(lsq_small_cnn(), ber=1e-3, seed=1)
    >>> fxfault.save(faulty, tmp / "faulty.fxf")
    >>> again = fxfault.load(tmp / "faulty.fxf", lsq_small_cnn())
    >>> fxfault.fault_list(again) == fxfault.fault_list(faulty)
    True
"""

from __future__ import annotations

import copy
import importlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn

from .._version import __version__
from ..config import FaultConfig
from ..errors import ConfigError
from ..files import write_atomic
from ..graph.access import fault_sites, plan_of
from ..graph.transform import transform

__all__ = ["load", "save"]

FORMAT = "fxfault.faulty-model"
VERSION = 1


def _site_state(s: Any) -> dict[str, Any]:
    st = s.stats
    st.settle()
    return {
        "name": s.name, "enabled": s.enabled, "ber": s.ber,
        "stats": {k: getattr(st, k) for k in ("passes", "events", "changed_bits", "changed_weights", "exposed_bits")},
    }


def save(faulty: nn.Module, path: str | os.PathLike[str]) -> Path:
    """Write ``faulty`` (a model returned by :func:`fxfault.transform`) to ``path``."""
    sites = fault_sites(faulty)  # raises TypeError for a model fxfault did not transform
    plan = plan_of(faulty)
    meta = getattr(faulty, "meta", {}).get("fxfault", {})
    state = {
        "plan": {"seed": plan.seed, "trial": plan.trial, "next_pass": plan.next_pass},
        "sites": [_site_state(s) for s in sites],
    }
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "fxfault": __version__,
        "config": json.dumps(meta.get("config", {})),
        "options": json.dumps(meta.get("options", {})),
        "state": json.dumps(state),
        "state_dict": {k: v.detach().cpu() for k, v in faulty.state_dict().items()},
    }
    import io

    buf = io.BytesIO()
    torch.save(payload, buf)
    return write_atomic(path, buf.getvalue())


def _read(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no saved faulty model at {str(p)!r}")
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # not a torch file, or one holding pickled code
        raise ConfigError(
            f"{str(p)!r} is not a file written by fxfault.save ({type(e).__name__}: {str(e).splitlines()[0]})"
        ) from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError(f"{str(p)!r} is not a file written by fxfault.save")
    if data.get("version") != VERSION:
        raise ConfigError(f"{str(p)!r} has format version {data.get('version')!r}; this fxfault reads {VERSION}")
    return data


def _leaf_types(names: list[str]) -> tuple[type, ...]:
    out = []
    for qual in names:
        module, _, attr = qual.rpartition(".")
        try:
            out.append(getattr(importlib.import_module(module), attr))
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"the saved model kept {qual!r} whole when tracing, which cannot be imported: {e}") from e
    return tuple(out)


def load(path: str | os.PathLike[str], model: nn.Module, *, load_weights: bool = False,
         example_inputs: Any = None) -> fx.GraphModule:
    """Transform ``model`` as the saved faulty model was, and restore its fault state.

    ``model`` must hold the saved weights (checked exactly), or, with ``load_weights=True``, a
    copy of ``model`` gets them (``model`` itself is never changed). ``example_inputs`` are
    passed to :func:`fxfault.transform` (needed where the original transform needed them).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"load needs the model to transform (an nn.Module), got {type(model).__name__}")
    data = _read(path)
    saved: dict[str, torch.Tensor] = data["state_dict"]
    own = model.state_dict()
    missing = sorted(k for k in saved if k not in own)
    if missing:
        raise ConfigError(
            f"the model lacks {len(missing)} saved tensors (e.g. {missing[:3]}); load the model "
            "the faulty one was made from"
        )
    if load_weights:
        model = copy.deepcopy(model)
        model.load_state_dict({k: v for k, v in saved.items() if k in own}, strict=False)
    else:
        differ = [k for k, v in saved.items() if not torch.equal(own[k].detach().cpu(), v)]
        if differ:
            raise ConfigError(
                f"the model's weights differ from the saved ones ({len(differ)} tensors, e.g. "
                f"{differ[:3]}); pass load_weights=True to use the saved weights (on a copy)"
            )
    options = json.loads(data["options"])
    cfg = FaultConfig.from_dict(json.loads(data["config"]))
    gm = transform(
        model, cfg, leaf_modules=_leaf_types(options.get("leaf_modules", [])),
        check=bool(options.get("check", True)), strict=bool(options.get("strict", False)),
        example_inputs=example_inputs,
    )
    _restore(gm, json.loads(data["state"]))
    return gm


def _restore(gm: fx.GraphModule, state: dict[str, Any]) -> None:
    plan = plan_of(gm)
    p = state["plan"]
    plan.resample(int(p["seed"]))
    for _ in range(int(p["trial"])):
        plan.resample()
    plan.advance(int(p["next_pass"]))
    by_name = {s.name: s for s in fault_sites(gm)}
    for rec in state["sites"]:
        site = by_name.get(rec["name"])
        if site is None:
            raise ConfigError(f"the saved site {rec['name']!r} is missing from the transformed model")
        site.enabled = bool(rec["enabled"])
        if float(rec["ber"]) != site.ber:
            site.set_ber(float(rec["ber"]))
        for k, v in rec["stats"].items():
            setattr(site.stats, k, int(v))
        site.changed()
