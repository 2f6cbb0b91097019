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
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = [
    "SCHEMA_VERSION",
    "FaultConfig",
    "check_patterns",
    "load_config",
    "resolve_per_layer",
    "searchable_lsq_layers",
]

SCHEMA_VERSION = 1

FAULT_KINDS = ("flip", "stuck_at_0", "stuck_at_1")
ENCODINGS = ("offset", "twos", "sign_magnitude", "gray")
MODES = ("transient", "persistent")
GRADIENTS = ("ste", "zero_faulted")
MAX_BITS = 16

PerLayer = Any  # one value, or a mapping of module-name glob -> value


# --------------------------------------------------------------------------------------------
# scalar validators
# --------------------------------------------------------------------------------------------
def _as_rate(value: Any, what: str) -> float:
    """Return ``value`` as a float in [0, 1]; numeric strings (from YAML) are accepted."""
    if isinstance(value, bool):
        raise ConfigError(f"{what} must be a number in [0, 1], got the bool {value!r}")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ConfigError(
                f"{what} must be a number in [0, 1], got the string {value!r}; "
                "write it like 1e-6 or '1e-6'"
            ) from None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{what} must be a number in [0, 1], got {type(value).__name__} {value!r}"
        ) from None
    if math.isnan(out) or not 0.0 <= out <= 1.0:
        raise ConfigError(f"{what} must be a number in [0, 1], got {out!r}")
    return out


def _as_bits(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        else:
            raise ConfigError(
                f"{what} must be an integer bit width in 1..{MAX_BITS}, "
                f"got {type(value).__name__} {value!r}"
            )
    if not 1 <= value <= MAX_BITS:
        raise ConfigError(f"{what} must be an integer bit width in 1..{MAX_BITS}, got {value}")
    return int(value)


def _as_int(value: Any, what: str, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ConfigError(f"{what} must be an integer, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{what} must be >= {minimum}, got {value}")
    return int(value)


def _as_choice(value: Any, choices: Sequence[str], what: str) -> str:
    if not isinstance(value, str) or value not in choices:
        hint = difflib.get_close_matches(str(value), choices, n=1)
        extra = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ConfigError(f"{what} must be one of {list(choices)}, got {value!r}{extra}")
    return value


def _as_bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{what} must be True or False, got {type(value).__name__} {value!r}")
    return value


def _as_patterns(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Iterable):
        raise ConfigError(f"{what} must be a glob string or a list of them, got {value!r}")
    out = tuple(value)
    for p in out:
        if not isinstance(p, str) or not p:
            raise ConfigError(f"{what} must hold non-empty glob strings, got {p!r}")
    return out


def _validate_rates_spec(value: Any, what: str) -> Any:
    """Type-level check of a ``bit_rates`` value; width-dependent checks happen per site."""
    from .faults.rates import parse_rates_spec

    return parse_rates_spec(value, what)


def _validate_encoding_spec(value: Any, what: str) -> Any:
    from .faults.encoding import normalise_encoding_spec

    return normalise_encoding_spec(value, what)


def _per_layer(value: Any, what: str, check: Any) -> Any:
    """Validate a per-layer field: one value or a mapping of glob -> value."""
    if isinstance(value, Mapping) and not _is_leaf_mapping(what, value):
        out: dict[str, Any] = {}
        for pat, v in value.items():
            if not isinstance(pat, str) or not pat:
                raise ConfigError(
                    f"{what}: keys of a per-layer mapping must be module-name globs, got {pat!r}"
                )
            out[pat] = check(v, f"{what}[{pat!r}]")
        return out
    return check(value, what)


def _is_leaf_mapping(what: str, value: Mapping[Any, Any]) -> bool:
    # An encoding code table may be given as {value: code}; its keys are ints (or int strings
    # from JSON), never globs.
    if what.startswith("encoding") and value:
        return all(_looks_int(k) for k in value)
    return False


def _looks_int(k: Any) -> bool:
    if isinstance(k, bool):
        return False
    if isinstance(k, int):
        return True
    return isinstance(k, str) and k.strip().lstrip("-").isdigit()


# --------------------------------------------------------------------------------------------
# per-layer resolution
# --------------------------------------------------------------------------------------------
def resolve_per_layer(value: PerLayer, layer: str, default: Any = None, *, what: str = "") -> Any:
    """Return the value of a per-layer field for ``layer``.

    A plain value applies to every layer. In a mapping an exact name wins, then the longest
    matching glob (the later one on ties); ``default`` is returned when nothing matches.
    """
    if not isinstance(value, Mapping) or _is_leaf_mapping(what, value):
        return value
    if layer in value:
        return value[layer]
    best: tuple[int, int] | None = None
    best_value = default
    for i, (pat, v) in enumerate(value.items()):
        if fnmatchcase(layer, pat):
            key = (len(pat), i)
            if best is None or key > best:
                best, best_value = key, v
    return best_value


def check_patterns(what: str, patterns: Iterable[str], names: Sequence[str], *, kind: str) -> None:
    """Raise :class:`ConfigError` for each pattern that matches none of ``names``."""
    for pat in patterns:
        if pat in names or any(fnmatchcase(n, pat) for n in names):
            continue
        close = difflib.get_close_matches(pat, list(names), n=3, cutoff=0.5)
        hint = f" Close names: {', '.join(repr(c) for c in close)}." if close else ""
        shown = ", ".join(repr(n) for n in list(names)[:8])
        more = f" (and {len(names) - 8} more)" if len(names) > 8 else ""
        raise ConfigError(
            f"{what}: the pattern {pat!r} matches no {kind}.{hint} "
            f"The {kind}s are: {shown}{more}. Patterns are fnmatch globs on module names, "
            "such as 'layer1.*' or 'fc'."
        )


# --------------------------------------------------------------------------------------------
# the config
# --------------------------------------------------------------------------------------------
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
    version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(self, "ber", _per_layer(self.ber, "ber", _as_rate))
        s(self, "seed", _as_int(self.seed, "seed", minimum=0))
        if self.bits is not None:
            s(self, "bits", _per_layer(self.bits, "bits", _as_bits))
        if self.act_bits is not None:
            s(self, "act_bits", _per_layer(self.act_bits, "act_bits", _as_act_bits))
        if self.float_bits is not None:
            s(self, "float_bits", _per_layer(self.float_bits, "float_bits", _as_optional_bits))
        if self.bit_rates is not None:
            s(self, "bit_rates", _per_layer(self.bit_rates, "bit_rates", _validate_rates_spec))
        s(
            self,
            "fault",
            _per_layer(self.fault, "fault", lambda v, w: _as_choice(v, FAULT_KINDS, w)),
        )
        s(self, "encoding", _per_layer(self.encoding, "encoding", _validate_encoding_spec))
        s(self, "mode", _as_choice(self.mode, MODES, "mode"))
        s(
            self,
            "gradient",
            _per_layer(self.gradient, "gradient", lambda v, w: _as_choice(v, GRADIENTS, w)),
        )
        if self.count is not None:
            s(self, "count", _as_int(self.count, "count", minimum=0))
        if self.faults is not None:
            s(self, "faults", _as_fault_list(self.faults))
        if self.seed_list is not None:
            if isinstance(self.seed_list, (str, bytes)) or not isinstance(
                self.seed_list, Iterable
            ):
                raise ConfigError(f"seed_list must be a list of seeds, got {self.seed_list!r}")
            seeds = tuple(_as_int(x, "seed_list entry", minimum=0) for x in self.seed_list)
            if not seeds:
                raise ConfigError("seed_list must hold at least one seed (or be None)")
            s(self, "seed_list", seeds)
        if self.include is not None:
            s(self, "include", _as_patterns(self.include, "include"))
        s(self, "exclude", _as_patterns(self.exclude, "exclude"))
        if self.only is not None and (not isinstance(self.only, str) or not self.only):
            raise ConfigError(f"only must be one layer name (or a glob), got {self.only!r}")
        s(self, "skip_first_last", _as_bool(self.skip_first_last, "skip_first_last"))
        s(self, "in_training", _as_bool(self.in_training, "in_training"))
        s(self, "in_inference", _as_bool(self.in_inference, "in_inference"))
        s(self, "leaf_modules", _as_patterns(self.leaf_modules, "leaf_modules"))
        s(self, "cache", _as_bool(self.cache, "cache"))
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
        if self.seed_list is not None and self.mode == "persistent":
            raise ConfigError(
                "seed_list rotates fault maps over forward passes; it cannot be combined with "
                "mode='persistent' (which keeps one map until fxfault.resample). "
                "Use mode='transient' with seed_list."
            )

    # ---------------------------------------------------------------- per-layer access
    def for_layer(self, name: str, layer: str) -> Any:
        """Resolve the per-layer field ``name`` for ``layer``."""
        default = {"ber": 0.0, "fault": "flip", "encoding": "offset", "gradient": "ste"}.get(name)
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
            out[f.name] = _jsonable(getattr(self, f.name))
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
            raise ConfigError(f"a config must be a mapping of field names, got {type(data)}")
        _check_field_names(data)
        kwargs = dict(data)
        if kwargs.get("faults") is not None:
            kwargs["faults"] = tuple(tuple(x) for x in kwargs["faults"])
        for key in ("seed_list", "include", "exclude", "leaf_modules"):
            if isinstance(kwargs.get(key), list):
                kwargs[key] = tuple(kwargs[key])
        return cls(**kwargs)

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> FaultConfig:
        """Read a config written by :meth:`to_json` (or by hand)."""
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {str(p)!r} does not exist")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
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
        from .search_json import read_search_json

        weight, act = read_search_json(path, model, index)
        _check_field_names(fields)
        for key in ("bits", "act_bits"):
            if key in fields:
                raise ConfigError(
                    f"from_search_json sets {key} from the file; do not pass {key}= as well"
                )
        return cls(bits=weight, act_bits=act or None, **fields)


def _as_optional_bits(value: Any, what: str) -> int | None:
    return None if value is None else _as_bits(value, what)


def _as_act_bits(value: Any, what: str) -> int:
    # activation widths of LSQ layers: 1..32 (32 means float, i.e. the identity)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 32:
        raise ConfigError(f"{what} must be an integer in 1..32 (32 = float), got {value!r}")
    return value


def _as_fault_list(value: Any) -> tuple[tuple[str, int, int], ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConfigError(f"faults must be a list of (site, flat_index, bit), got {value!r}")
    out = []
    for i, item in enumerate(value):
        if isinstance(item, (str, bytes)) or not isinstance(item, Sequence) or len(item) != 3:
            raise ConfigError(
                f"faults[{i}] must be a triple (site, flat_index, bit), got {item!r}"
            )
        site, idx, bit = item
        if not isinstance(site, str) or not site:
            raise ConfigError(f"faults[{i}]: the site must be a layer name, got {site!r}")
        out.append(
            (
                site,
                _as_int(idx, f"faults[{i}] flat_index", minimum=0),
                _as_int(bit, f"faults[{i}] bit", minimum=0),
            )
        )
    return tuple(out)


def _check_field_names(data: Mapping[str, Any]) -> None:
    names = [f.name for f in dataclasses.fields(FaultConfig)]
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown FaultConfig field {key!r}.{hint} Fields: {names}")


def _jsonable(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (tuple, list)):
        return [_jsonable(x) for x in v]
    return v


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


def searchable_lsq_layers(model: Any) -> tuple[list[str], list[str]]:
    """Names of LSQ-style layers in ``named_modules()`` order: (searchable, fixed).

    A layer is LSQ-style when it has a ``quan_w_fn`` module and a ``fixed_bits`` attribute;
    it is searchable when ``fixed_bits`` is ``None``.
    """
    import torch.nn as nn

    searchable: list[str] = []
    fixed: list[str] = []
    for name, m in model.named_modules():
        if isinstance(getattr(m, "quan_w_fn", None), nn.Module) and hasattr(m, "fixed_bits"):
            (searchable if m.fixed_bits is None else fixed).append(name)
    return searchable, fixed

