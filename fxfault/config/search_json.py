"""Reader for the bit-width configurations written by a mixed-precision search.

The file looks like::

    {"arch": "resnet18", "target_bits": [6, 5, 4, 3, 2],
     "configurations": [{"bops_limit": 6.0, "weight_bits": [3, 3, ...], "act_bits": [3, 5, ...]}]}

Entry ``i`` of ``weight_bits`` / ``act_bits`` belongs to the ``i``-th LSQ-style layer in
``named_modules()`` order whose ``fixed_bits`` is ``None``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import ConfigError

__all__ = ["read_search_json", "searchable_lsq_layers"]


def read_search_json(
    path: str | os.PathLike[str] | dict[str, Any], model: Any, index: int = 0
) -> tuple[dict[str, int], dict[str, int]]:
    """Return ``(weight_bits, act_bits)`` as mappings of layer name to width."""
    if isinstance(path, dict):
        data, where = path, "(a mapping)"
    else:
        p = Path(path)
        where = repr(str(p))
        if not p.is_file():
            raise ConfigError(f"search config {where} does not exist")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ConfigError(f"search config {where} is not valid JSON: {e}") from e
    if not isinstance(data, dict) or "configurations" not in data:
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ConfigError(
            f"search config {where} has no 'configurations' key (it has {keys}); expected "
            '{"configurations": [{"weight_bits": [...], "act_bits": [...]}, ...]}'
        )
    confs = data["configurations"]
    if not isinstance(confs, list) or not confs:
        raise ConfigError(f"search config {where}: 'configurations' must be a non-empty list")
    if isinstance(index, bool) or not isinstance(index, int):
        raise ConfigError(f"index must be an integer, got {index!r}")
    if not -len(confs) <= index < len(confs):
        raise ConfigError(
            f"search config {where} has {len(confs)} configuration(s) "
            f"(indices 0..{len(confs) - 1}); index {index} is out of range"
        )
    conf = confs[index]
    if not isinstance(conf, dict) or "weight_bits" not in conf:
        have = sorted(conf) if isinstance(conf, dict) else type(conf).__name__
        raise ConfigError(
            f"search config {where}: configuration {index} has no 'weight_bits' key "
            f"(it has {have})"
        )
    searchable, fixed = searchable_lsq_layers(model)
    if not searchable and not fixed:
        raise ConfigError(
            "the model has no LSQ-style layer (a module with a 'quan_w_fn' quantizer and a "
            "'fixed_bits' attribute), so a search config cannot be mapped onto it"
        )
    out: list[dict[str, int]] = []
    for key in ("weight_bits", "act_bits"):
        bits = conf.get(key)
        if bits is None and key == "act_bits":
            out.append({})
            continue
        if not isinstance(bits, list) or not all(
            isinstance(b, int) and not isinstance(b, bool) for b in bits
        ):
            raise ConfigError(
                f"search config {where}: configuration {index} {key!r} must be a list of "
                f"integers, got {bits!r}"
            )
        if len(bits) != len(searchable):
            raise ConfigError(
                f"search config {where}: configuration {index} {key!r} has {len(bits)} "
                f"entries, but the model has {len(searchable)} searchable quantized layers "
                f"({len(searchable) + len(fixed)} quantized layers, {len(fixed)} with "
                f"fixed_bits: {', '.join(fixed) or 'none'})"
            )
        out.append(dict(zip(searchable, bits)))
    return out[0], out[1]


def searchable_lsq_layers(model: Any) -> tuple[list[str], list[str]]:
    """Names of LSQ-style layers in ``named_modules()`` order: (searchable, fixed).

    A layer is LSQ-style when it has a ``quan_w_fn`` module and a ``fixed_bits`` attribute;
    it is searchable when ``fixed_bits`` is ``None``.
    """
    searchable: list[str] = []
    fixed: list[str] = []
    for name, m in model.named_modules():
        if isinstance(getattr(m, "quan_w_fn", None), nn.Module) and hasattr(m, "fixed_bits"):
            (searchable if m.fixed_bits is None else fixed).append(name)
    return searchable, fixed

