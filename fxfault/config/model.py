"""``FaultConfig``: the frozen, validated, JSON-serialisable description of a fault campaign.

Fields that apply per layer take either one value or a mapping of glob pattern to value
(``{"layer1.*": 4, "fc": 8}``), matched with :func:`fnmatch.fnmatchcase` against module names
such as ``layer1.0.conv1``. An exact name beats any glob; among globs the longest pattern wins.

Example::

    >>> cfg = FaultConfig(ber="1e-6", bits={"layer1.*": 4}, seed=0)
    >>> cfg.ber
    1e-06
    >>> FaultConfig.from_dict(cfg.to_dict()) == cfg
    True
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .fields import (
    PerLayer,
    as_bits,
    as_bool,
    as_choice,
    as_fault_list,
    as_int,
    as_patterns,
    as_rate,
    jsonable,
    per_layer,
    resolve_per_layer,
)
from .specs import normalise_encoding_spec, parse_rates_spec

__all__ = ["SCHEMA_VERSION", "FaultConfig", "load_config"]

SCHEMA_VERSION = 1

FAULT_KINDS = ("flip", "stuck_at_0", "stuck_at_1")
TARGETS = ("weight", "activation")
UNITS = ("bit", "value")
PATTERNS = ("flip_lsb", "flip_msb", "flip_all", "random")
FLOAT_FORMATS = ("float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2", "native")
_LAYER_DEFAULTS = {
    "ber": 0.0, "fault": "flip", "encoding": "offset", "gradient": "ste", "act_gradient": "zero_faulted",
    "fault_unit": "bit", "pattern": "random",
}
MODES = ("transient", "persistent")
GRADIENTS = ("ste", "zero_faulted")


@dataclass(frozen=True)
class FaultConfig:
    """What faults to inject, where, and how. Frozen and validated on creation.

    Per-layer fields (``ber``, ``bits``, ``float_bits``, ``bit_rates``, ``fault``, ``encoding``,
    ``gradient``, ``act_bits``) take one value or a mapping of module-name glob to value.

    ``bits`` is special: a plain integer is the *default* width, used only for layers whose own
    quantizer sets none; a mapping overrides the model's own widths for the layers it matches.
    """

    ber: PerLayer = 0.0
    seed: int = 0
    bits: PerLayer = None
    act_bits: PerLayer = None
    float_bits: PerLayer = None
    bit_rates: PerLayer = None
    fault: PerLayer = "flip"
    count: int | None = None
    faults: tuple[tuple[str, int, int], ...] | None = None
    encoding: PerLayer = "offset"
    mode: str = "transient"
    seed_list: tuple[int, ...] | None = None
    gradient: PerLayer = "ste"
    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    only: str | None = None
    skip_first_last: bool = False
    in_training: bool = True
    in_inference: bool = True
    leaf_modules: tuple[str, ...] = ()
    cache: bool = True
    targets: tuple[str, ...] = ("weight",)
    act_ber: PerLayer = None
    act_gradient: PerLayer = "zero_faulted"
    float_act_bits: PerLayer = None
    fault_unit: PerLayer = "bit"
    value_fraction: PerLayer = None
    pattern: PerLayer = "random"
    float_format: PerLayer = None
    track_effect: bool = False
    version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(self, "ber", per_layer(self.ber, "ber", as_rate))
        s(self, "seed", as_int(self.seed, "seed", minimum=0))
        if self.bits is not None:
            s(self, "bits", per_layer(self.bits, "bits", as_bits))
        if self.act_bits is not None:
            s(self, "act_bits", per_layer(self.act_bits, "act_bits", _as_act_bits))
        if self.float_bits is not None:
            s(self, "float_bits", per_layer(self.float_bits, "float_bits", _as_optional_bits))
        if self.bit_rates is not None:
            s(self, "bit_rates", per_layer(self.bit_rates, "bit_rates", parse_rates_spec))
        s(
            self,
            "fault",
            per_layer(self.fault, "fault", lambda v, w: as_choice(v, FAULT_KINDS, w)),
        )
        s(self, "encoding", per_layer(self.encoding, "encoding", normalise_encoding_spec))
        s(self, "mode", as_choice(self.mode, MODES, "mode"))
        s(
            self,
            "gradient",
            per_layer(self.gradient, "gradient", lambda v, w: as_choice(v, GRADIENTS, w)),
        )
        if self.count is not None:
            s(self, "count", as_int(self.count, "count", minimum=0))
        if self.faults is not None:
            s(self, "faults", as_fault_list(self.faults))
        if self.seed_list is not None:
            if isinstance(self.seed_list, (str, bytes)) or not isinstance(
                self.seed_list, Iterable
            ):
                raise ConfigError(f"seed_list must be a list of seeds, got {self.seed_list!r}")
            seeds = tuple(as_int(x, "seed_list entry", minimum=0) for x in self.seed_list)
            if not seeds:
                raise ConfigError("seed_list must hold at least one seed (or be None)")
            s(self, "seed_list", seeds)
        if self.include is not None:
            s(self, "include", as_patterns(self.include, "include"))
        s(self, "exclude", as_patterns(self.exclude, "exclude"))
        if self.only is not None and (not isinstance(self.only, str) or not self.only):
            raise ConfigError(f"only must be one layer name (or a glob), got {self.only!r}")
        s(self, "skip_first_last", as_bool(self.skip_first_last, "skip_first_last"))
        s(self, "in_training", as_bool(self.in_training, "in_training"))
        s(self, "in_inference", as_bool(self.in_inference, "in_inference"))
        s(self, "leaf_modules", as_patterns(self.leaf_modules, "leaf_modules"))
        s(self, "cache", as_bool(self.cache, "cache"))
        s(self, "targets", _as_targets(self.targets))
        if self.act_ber is not None:
            s(self, "act_ber", per_layer(self.act_ber, "act_ber", as_rate))
        s(self, "act_gradient", per_layer(self.act_gradient, "act_gradient", lambda v, w: as_choice(v, GRADIENTS, w)))
        if self.float_act_bits is not None:
            s(self, "float_act_bits", per_layer(self.float_act_bits, "float_act_bits", _as_optional_bits))
        s(self, "fault_unit", per_layer(self.fault_unit, "fault_unit", lambda v, w: as_choice(v, UNITS, w)))
        if self.value_fraction is not None:
            s(self, "value_fraction", per_layer(self.value_fraction, "value_fraction", _as_optional_rate))
        s(self, "pattern", per_layer(self.pattern, "pattern", _as_pattern))
        if self.float_format is not None:
            s(self, "float_format", per_layer(self.float_format, "float_format", _as_optional_format))
        s(self, "track_effect", as_bool(self.track_effect, "track_effect"))
        if self.version != SCHEMA_VERSION:
            raise ConfigError(
                f"this fxfault reads config schema version {SCHEMA_VERSION}, "
                f"the config says {self.version!r}"
            )
        # cross-field rules
        if self.count is not None and self.faults is not None:
            raise ConfigError(
                "count and faults are exclusive: count draws random faults, "
                "faults replays a fixed list"
            )
        if (self.count is not None or self.faults is not None) and self.ber != 0.0:
            which = "count" if self.count is not None else "faults"
            warnings.warn(
                f"FaultConfig: ber={self.ber!r} has no effect with {which}= ({which} fixes the "
                f"faults); leave ber out, or drop {which}= to draw faults at a bit-error rate",
                UserWarning,
                stacklevel=3,
            )
        if self.value_fraction is not None and self.fault_unit == "bit":
            raise ConfigError(
                "value_fraction hits a fraction of the *values* of a tensor; it needs "
                "fault_unit='value' (fault_unit='bit' draws each bit at the BER)"
            )
        if self.seed_list is not None and self.mode == "persistent":
            raise ConfigError(
                "seed_list rotates fault maps over forward passes; it cannot be combined with "
                "mode='persistent' (which keeps one map until fxfault.resample). "
                "Use mode='transient' with seed_list."
            )

    # ---------------------------------------------------------------- per-layer access
    def for_layer(self, name: str, layer: str) -> Any:
        """Resolve the per-layer field ``name`` for ``layer``."""
        default = _LAYER_DEFAULTS.get(name)
        return resolve_per_layer(getattr(self, name), layer, default, what=name)

    def bits_override(self, layer: str) -> int | None:
        """The width the config forces on ``layer`` (a mapping entry), or ``None``."""
        if isinstance(self.bits, Mapping):
            return resolve_per_layer(self.bits, layer, None, what="bits")
        return None

    def bits_default(self) -> int | None:
        """The config's default width (a plain ``bits=``), or ``None``."""
        return self.bits if isinstance(self.bits, int) else None

    def replace(self, **changes: Any) -> FaultConfig:
        """Return a copy with ``changes`` applied (and validated)."""
        _check_field_names(changes)
        return dataclasses.replace(self, **changes)

    # ---------------------------------------------------------------- (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``FaultConfig.from_dict(cfg.to_dict()) == cfg``."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            out[f.name] = jsonable(getattr(self, f.name))
        return out

    def to_json(self, path: str | os.PathLike[str] | None = None, *, indent: int = 2) -> str:
        """Serialise to JSON text, and write it to ``path`` when one is given."""
        text = json.dumps(self.to_dict(), indent=indent, sort_keys=False)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultConfig:
        """Build a config from a mapping, rejecting unknown keys with a suggestion."""
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"a config must be a mapping of field names to values, got {type(data).__name__}"
            )
        _check_field_names(data)
        kwargs = dict(data)
        if isinstance(kwargs.get("faults"), list):
            kwargs["faults"] = tuple(tuple(x) if isinstance(x, list) else x for x in kwargs["faults"])
        for key in ("seed_list", "include", "exclude", "leaf_modules"):
            if isinstance(kwargs.get(key), list):
                kwargs[key] = tuple(kwargs[key])
        return cls(**kwargs)

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> FaultConfig:
        """Read a config written by :meth:`to_json` (or by hand)."""
        p = Path(path)
        if p.is_dir():
            raise ConfigError(f"config file {str(p)!r} is a directory; give the path of a JSON file")
        if not p.is_file():
            raise ConfigError(f"config file {str(p)!r} does not exist")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except UnicodeDecodeError as e:
            raise ConfigError(
                f"config file {str(p)!r} is not UTF-8 text (byte {e.start}); save it as UTF-8 JSON"
            ) from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"config file {str(p)!r} is not valid JSON: {e}") from e
        if isinstance(data, Mapping) and "configurations" in data:
            raise ConfigError(
                f"{str(p)!r} is a bit-width search output, not a FaultConfig; load it with "
                "FaultConfig.from_search_json(path, model, index=...)"
            )
        return cls.from_dict(data)

    @classmethod
    def from_search_json(
        cls,
        path: str | os.PathLike[str],
        model: Any,
        index: int = 0,
        **fields: Any,
    ) -> FaultConfig:
        """Read the bit widths chosen by a mixed-precision search.

        Entry ``i`` of ``weight_bits`` / ``act_bits`` belongs to the ``i``-th LSQ-style layer
        of ``model.named_modules()`` whose ``fixed_bits`` is ``None``. Layers with
        ``fixed_bits`` keep them. ``fields`` set the other config fields (``ber=1e-6``, ...).
        """
        from .search_json import read_search_json  # the LSQ layer walk, in this layer

        weight, act = read_search_json(path, model, index)
        _check_field_names(fields)
        for key in ("bits", "act_bits"):
            if key in fields:
                raise ConfigError(
                    f"from_search_json sets {key} from the file; do not pass {key}= as well"
                )
        return cls(bits=weight, act_bits=act or None, **fields)




def _as_optional_bits(value: Any, what: str) -> int | None:
    return None if value is None else as_bits(value, what)


def _as_targets(value: Any) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else value
    if not isinstance(items, (tuple, list)) or not items:
        raise ConfigError(
            f"targets must name what gets fault sites: ('weight',), ('activation',) or "
            f"('weight', 'activation'); got {value!r}"
        )
    out = tuple(as_choice(v, TARGETS, "each entry of targets") for v in items)
    if len(set(out)) != len(out):
        raise ConfigError(f"targets lists {value!r}; name each of 'weight' and 'activation' once")
    return out


def _as_optional_rate(value: Any, what: str) -> float | None:
    return None if value is None else as_rate(value, what)


def _as_pattern(value: Any, what: str) -> str | int:
    if isinstance(value, str):
        return as_choice(value, PATTERNS, what)
    mask = as_int(value, what, minimum=1)
    if mask >= 1 << 32:
        raise ConfigError(f"{what}: an integer pattern is a bit mask of the code word, got {mask}")
    return mask


def _as_optional_format(value: Any, what: str) -> str | None:
    if value is None:
        return None
    return as_choice(value, FLOAT_FORMATS, what)


def _as_act_bits(value: Any, what: str) -> int:
    # activation widths of LSQ layers: 1..32 (32 means float, i.e. the identity)
    return as_bits(value, what, maximum=32)


def _check_field_names(data: Mapping[str, Any]) -> None:
    names = [f.name for f in dataclasses.fields(FaultConfig)]
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown FaultConfig field {key!r}.{hint} Fields: {names}")



def load_config(
    cfg: FaultConfig | Mapping[str, Any] | str | os.PathLike[str] | None,
    **overrides: Any,
) -> FaultConfig:
    """Turn ``cfg`` (a config, a mapping, a JSON path or ``None``) into a ``FaultConfig``.

    ``overrides`` whose value is not ``None`` replace the corresponding fields.
    """
    if cfg is None:
        base = FaultConfig()
    elif isinstance(cfg, FaultConfig):
        base = cfg
    elif isinstance(cfg, Mapping):
        base = FaultConfig.from_dict(cfg)
    elif isinstance(cfg, (str, os.PathLike)):
        base = FaultConfig.from_json(cfg)
    else:
        raise TypeError(
            "cfg must be a FaultConfig, a mapping of its fields, a path to a JSON file or None; "
            f"got {type(cfg).__name__}"
        )
    changes = {k: v for k, v in overrides.items() if v is not None}
    return base.replace(**changes) if changes else base


