"""``BitFlip``: the ``nn.Module`` behind each ``<layer>_weight_flip`` node.

A site takes the integer codes of one stored tensor (a quantized weight, or an activation) and
returns them with this pass's faults applied. It owns the site's width, fault model, rates,
switches and statistics, and its eval-mode buffers (:class:`~fxfault.faults.cache.SiteCache`).
Sampling (*where*, :mod:`fxfault.faults.maps`) is kept apart from injection (*what*,
:mod:`fxfault.faults.inject`).

Each call gets the :class:`~fxfault.faults.plan.Pass` of its forward pass from the graph: the
faults of pass ``i`` are drawn from a generator seeded with ``(plan key of i, site name)`` and
nothing else, so they do not depend on other sites, on the order layers run in, on the batch
size or on the thread.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from .cache import Buffers, Patch, SiteCache, flat, scatter
from .encoding import Encoding, make_encoding
from .inject import Injector
from .maps import FaultMap, bit_faults, fixed_faults, pairs_to_map, value_faults
from .plan import FaultPlan, Pass, register
from .rates import describe, is_absolute, plane_rates
from .sampling import derive_seed, generator
from .stats import SiteStats

__all__ = ["BitFlip", "SiteStats"]

PATTERNS = ("flip_lsb", "flip_msb", "flip_all", "random")
#: drawn maps (and their device copies) a site keeps: repeating maps, and the last passes'
_KEPT_MAPS = 16


class BitFlip(nn.Module):
    """One fault site: applies faults to the integer codes of one stored tensor."""

    # plain attributes (set through __dict__, not registered as submodules or buffers)
    plan: FaultPlan
    cache: SiteCache
    handle: int
    _maps: collections.OrderedDict[Hashable, Any]
    _maps_lock: threading.Lock
    _settings: int
    _collector: dict[str, torch.Tensor] | None
    _rate_list: list[float]
    _groups: list[tuple[float, np.ndarray]]

    def __init__(
        self,
        *,
        name: str,
        layer: str,
        quantizer: str,
        bits: int,
        qmin: int,
        qmax: int,
        shape: tuple[int, ...],
        plan: FaultPlan,
        tensor: str = "weight",
        ber: float = 0.0,
        bit_rates: Any = None,
        fault: str = "flip",
        encoding: Any = "offset",
        gradient: str = "ste",
        unit: str = "bit",
        fraction: float | None = None,
        pattern: str | int | None = None,
        in_training: bool = True,
        in_inference: bool = True,
        axis: int | None = None,
        fixed: Sequence[tuple[int, int]] | None = None,
        count_member: bool = False,
        nodes: dict[str, str] | None = None,
        cache: bool = True,
        cacheable: bool = False,
    ) -> None:
        super().__init__()
        self.name = name
        self.layer = layer
        self.quantizer = quantizer
        self.tensor = tensor
        self.bits = int(bits)
        self.qmin = int(qmin)
        self.qmax = int(qmax)
        self.shape = tuple(int(s) for s in shape)
        self.numel = int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1
        self.axis = axis
        self.__dict__["plan"] = plan  # shared, not a submodule of each site
        self.fault = fault
        self.gradient = gradient
        self.unit = unit
        self.fraction = fraction
        self.pattern = pattern
        self.encoding: Encoding = make_encoding(encoding, self.bits, self.qmin, self.qmax, where=name)
        self.injector = Injector(
            self.encoding, "random" if unit == "value" and pattern == "random" else fault,
            self.qmin, self.qmax,
        )
        self.bit_rates = bit_rates
        self.ber = float(ber)
        self.enabled = True
        self.in_training = in_training
        self.in_inference = in_inference
        self.fixed_faults = self._check_fixed(fixed)
        self.count_member = count_member
        self.nodes = dict(nodes or {})
        self.cache_enabled = cache
        #: the clean codes are a pure function of stored tensors (the graph passes them)
        self.cacheable = cacheable
        self.stats = SiteStats()
        self._init_runtime()
        plan.attach(self)
        self._rates = plane_rates(bit_rates, self.bits, self.ber, where=name, fmt=self.encoding.format) if unit == "bit" else []

    # ------------------------------------------------------------------ identity
    def _init_runtime(self) -> None:
        d = self.__dict__
        d["cache"] = SiteCache()
        d["_maps"] = collections.OrderedDict()
        d["_maps_lock"] = threading.Lock()
        d["_settings"] = d.get("_settings", 0)
        d["_collector"] = None
        d["handle"] = register(self)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for key in ("cache", "_maps", "_maps_lock", "_collector", "handle"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._init_runtime()
        self.plan.attach(self)

    def extra_repr(self) -> str:
        return (
            f"layer={self.layer!r}, bits={self.bits}, codes=[{self.qmin}, {self.qmax}], "
            f"encoding={self.encoding.name}, fault={self.fault}, {describe(self)}, "
            f"mode={self.plan.mode}"
        )

    # ------------------------------------------------------------------ settings
    def _check_fixed(self, faults: Sequence[tuple[int, int]] | None) -> list[tuple[int, int]] | None:
        if faults is None:
            return None
        for idx, bit in faults:
            if not 0 <= idx < self.numel:
                raise ConfigError(
                    f"faults: flat index {idx} is out of range for site {self.name!r} "
                    f"({self.numel} values, indices 0..{self.numel - 1})"
                )
            if not 0 <= bit < self.bits:
                raise ConfigError(
                    f"faults: bit {bit} does not exist in the {self.bits}-bit site {self.name!r} "
                    f"(bits 0..{self.bits - 1}, 0 is the LSB)"
                )
        return list(faults)

    @property
    def _rates(self) -> list[float]:
        """Per-bit rates, LSB first; setting them also sets the Bernoulli walks drawn from them."""
        return self._rate_list  # type: ignore[no-any-return]

    @_rates.setter
    def _rates(self, rates: list[float]) -> None:
        groups: dict[float, list[int]] = {}
        for plane, r in enumerate(rates):
            if r > 0:
                groups.setdefault(r, []).append(plane)
        d = self.__dict__  # plain attributes: skip nn.Module.__setattr__
        d["_rate_list"] = [float(r) for r in rates]
        # one Bernoulli walk per distinct rate, by ascending rate
        d["_groups"] = [(r, np.asarray(groups[r], dtype=np.int64)) for r in sorted(groups)]
        self.changed()

    def changed(self) -> None:
        """Call after changing a setting that changes the faults: drawn maps are forgotten
        (the clean buffers stay valid)."""
        with self._maps_lock:
            self.__dict__["_settings"] = self._settings + 1
            self._maps.clear()

    @property
    def rates(self) -> list[float]:
        """Per-bit fault rates, LSB first (empty for value-level faults)."""
        return list(self._rates)

    def set_ber(self, ber: float) -> None:
        """Set the bit-error rate (sites with absolute ``bit_rates`` refuse)."""
        if is_absolute(self.bit_rates):
            raise ConfigError(
                f"site {self.name!r} uses absolute bit_rates {self.bit_rates!r}, which a BER "
                "does not scale; leave it out with set_ber(..., layers=[...]) or give it "
                "a preset such as 'msb_only'"
            )
        self.ber = float(ber)
        if self.unit == "bit":
            self._rates = plane_rates(self.bit_rates, self.bits, self.ber, where=self.name, fmt=self.encoding.format)
        else:
            self.changed()

    def clear_cache(self) -> None:
        """Forget the eval-mode buffers and drawn maps (they are rebuilt on demand)."""
        self.cache.invalidate()
        self.changed()

    def collect_clean(self, store: dict[str, torch.Tensor] | None) -> None:
        """Keep the clean quantized value of every pass in ``store[site name]`` (with
        ``retain_grad()``), or stop with ``None`` (see ``fxfault.training``)."""
        self.__dict__["_collector"] = store

    def observe_clean(self, x: torch.Tensor) -> None:
        """Called by ``quantize`` with the clean quantized value of this pass."""
        store = self._collector
        if store is not None:
            if x.requires_grad:
                x.retain_grad()
            store[self.name] = x

    def cached(self, pass_: Pass | None) -> bool:
        """Whether this pass may use the eval-mode buffers."""
        return bool(isinstance(pass_, Pass) and pass_.cached and self.cache_enabled and self.cacheable
                    and not self.training)

    def targeted_planes(self) -> list[int]:
        """Bit planes that can fail (for ``count``): those with a non-zero rate pattern."""
        mask = plane_rates(self.bit_rates, self.bits, 1.0, where=self.name, fmt=self.encoding.format)
        return [b for b, r in enumerate(mask) if r > 0]

    def expected_events(self) -> float:
        """Expected fault events per forward pass at the current settings."""
        if self.fixed_faults is not None:
            return float(len(self.fixed_faults))
        if self.count_member and self.plan.count is not None:
            total = self.plan.count_total_bits
            mine = self.numel * len(self.targeted_planes())
            return self.plan.count * mine / total if total else 0.0
        if self.unit == "value":
            if self.fraction is not None:
                return float(min(self.numel, round(self.fraction * self.numel)))
            return self.numel * self.ber
        return self.numel * sum(self._rates)

    def configured_rate(self) -> float:
        """Expected fault events per exposed bit."""
        return self.expected_events() / (self.numel * self.bits)

    def is_active(self) -> bool:
        """Whether the next forward pass injects faults."""
        if not self.enabled or not (self.in_training if self.training else self.in_inference):
            return False
        if self.fixed_faults is not None:
            return bool(self.fixed_faults)
        if self.count_member and self.plan.count is not None:
            return self.plan.count > 0
        if self.unit == "value":
            return (self.fraction or 0.0) > 0 or self.ber > 0
        return bool(self._groups)

    # ------------------------------------------------------------------ sampling (where)
    def fault_map(self, pass_index: int | None = None) -> tuple[torch.Tensor, torch.Tensor, int]:
        """The faults of a forward pass: ``(flat indices, payloads, events)``, on the CPU.

        Indices are sorted and distinct; for bit faults each payload holds the faulted bits of
        its value (``1 << bit``). ``pass_index`` defaults to the next pass.
        """
        if pass_index is None:
            t = self.plan.next_pass
        else:
            if isinstance(pass_index, bool) or not isinstance(pass_index, (int, np.integer)) or pass_index < 0:
                raise ConfigError(f"pass_index must be a non-negative integer, got {pass_index!r}")
            t = int(pass_index)
        m = self.map_for(t)
        return torch.from_numpy(m.index), torch.from_numpy(m.payload), m.events

    def map_for(self, pass_index: int, numel: int | None = None) -> FaultMap:
        """The :class:`FaultMap` of pass ``pass_index`` (kept while maps repeat)."""
        numel = self.numel if numel is None else numel
        if self.fixed_faults is not None:
            key: Hashable = ("fixed", self._settings)
        else:
            key = (self.plan.draw_key(pass_index), self._settings, numel)
        hit = self._maps.get(key)
        if hit is not None:
            return hit
        fmap = self._draw(key, numel)
        with self._maps_lock:
            while len(self._maps) >= _KEPT_MAPS:
                self._maps.popitem(last=False)  # the oldest
            self._maps[key] = fmap
        return fmap

    def prepare(self, pass_index: int) -> None:
        """Draw the faults of pass ``pass_index`` now (the plan calls this for every weight
        site when a pass starts, so that sampling runs in one place, while it is warm)."""
        if self.tensor == "weight" and self.is_active():
            self.map_for(pass_index)

    def _draw(self, key: Hashable, numel: int) -> FaultMap:
        if self.fixed_faults is not None:
            return fixed_faults(key, self.fixed_faults)
        plan_key = key[0]  # type: ignore[index]
        if self.count_member and self.plan.count is not None:
            planes = self.targeted_planes()
            pos = self.plan.count_positions(self.name, plan_key).numpy()
            p = np.asarray(planes, dtype=np.int64)
            return pairs_to_map(key, pos // len(planes), p[pos % len(planes)], sorted_=True)
        gen = generator(derive_seed(*plan_key, self.name))
        if self.unit == "value":
            payload = None if self.pattern == "random" else _pattern_mask(self.pattern, self.bits)
            return value_faults(key, numel, rate=self.ber, fraction=self.fraction, payload=payload,
                                span=self.qmax - self.qmin + 1, gen=gen)
        return bit_faults(key, numel, self._groups, gen)

    # ------------------------------------------------------------------ injection (what)
    def forward(self, codes: torch.Tensor, pass_: Any = None,
                sources: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        if torch.compiler.is_compiling():
            return torch.ops.fxfault.flip_bits(codes, self.handle, pass_)
        if not isinstance(pass_, Pass):  # a direct call: the plan's next pass, no buffers
            pass_ = Pass(self.plan.next_index(), False)
        return self.inject(codes, pass_, sources)

    def inject(self, codes: torch.Tensor, pass_: Pass,
               sources: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        """Apply pass ``pass_``'s faults to ``codes``; returns ``codes`` itself when there are
        none. With buffers (:meth:`cached`), the result is the site's faulted-codes buffer."""
        buf = self.cache.buffers() if self.cached(pass_) else None
        if buf is not None and sources is not None:
            buf.sync(sources, pass_.serial)
        if not self.is_active():
            return self._unchanged(codes, pass_, buf)
        if self.tensor == "weight" and tuple(codes.shape) != self.shape:
            raise RuntimeError(
                f"fault site {self.name!r} was built for a weight of shape {self.shape} but got "
                f"codes of shape {tuple(codes.shape)}; run fxfault.transform again after "
                "changing the model"
            )
        fmap = self.map_for(pass_.index, codes.numel())
        if buf is not None and not fmap.empty:
            ready = buf.current("fcodes", fmap.key)
            if ready is not None:  # the same faults on the same clean codes: nothing to do
                self.stats.add(exposed=codes.numel() * self.bits, events=buf.counts[0],
                               bits=buf.counts[1], values=buf.counts[2])
                buf.flipped = (pass_.index, buf.patches["fcodes"])
                return ready
        if fmap.empty:
            self.stats.add(exposed=codes.numel() * self.bits, events=0, bits=0, values=0)
            return self._unchanged(codes, pass_, buf)
        view = buf.flat(codes) if buf is not None else flat(codes)
        index: Any
        if isinstance(view, np.ndarray):
            old = view[fmap.index].astype(np.int64)
            new, nbits = self.injector.apply(old, fmap.payload)
            hit = new != old
            index, values = (fmap.index, new) if hit.all() else (fmap.index[hit], new[hit])
            nvalues: Any = int(index.size)
        else:
            index, payload = self._on(view.device, fmap)
            old = view[index].to(torch.int64)
            new, nbits = self.injector.apply(old, payload)
            hit = new != old
            index, values = index[hit], new[hit]
            nvalues = hit.sum()  # stays on the device until read
        if nbits is None:  # XOR faults: every bit of the payload changes
            nbits = fmap.events if self.unit == "bit" else fmap.events * bin(
                _pattern_mask(self.pattern, self.bits)).count("1")
        self.stats.add(exposed=codes.numel() * self.bits, events=fmap.events, bits=nbits,
                       values=nvalues)
        patch = Patch(fmap.key, index)
        if buf is not None:
            buf.flipped = (pass_.index, patch)
            buf.counts = (fmap.events, nbits, nvalues)
            return buf.write("fcodes", codes, patch, values)
        out = codes.detach().clone(memory_format=torch.contiguous_format)
        scatter(out, index, values)
        return out

    def _on(self, device: torch.device, fmap: FaultMap) -> tuple[torch.Tensor, torch.Tensor]:
        """The map's positions and payloads on ``device`` (kept while maps repeat)."""
        key = (fmap.key, device)
        hit = self._maps.get(key)
        if hit is None:
            hit = (torch.from_numpy(fmap.index).to(device), torch.from_numpy(fmap.payload).to(device))
            with self._maps_lock:
                while len(self._maps) >= _KEPT_MAPS:
                    self._maps.popitem(last=False)
                self._maps[key] = hit
        return hit  # type: ignore[return-value]

    def _unchanged(self, codes: torch.Tensor, pass_: Pass, buf: Buffers | None) -> torch.Tensor:
        if buf is not None:
            buf.flipped = (pass_.index, None)
        return codes


def _pattern_mask(pattern: str | int | None, bits: int) -> int:
    """The XOR mask of a value-level pattern."""
    if pattern is None or pattern == "flip_all":
        return (1 << bits) - 1
    if pattern == "flip_lsb":
        return 1
    if pattern == "flip_msb":
        return 1 << (bits - 1)
    if isinstance(pattern, int) and not isinstance(pattern, bool):
        return int(pattern) & ((1 << bits) - 1)
    raise ConfigError(f"unknown value pattern {pattern!r}; use one of {list(PATTERNS)} or an int mask")
