"""``BitFlip``: the ``nn.Module`` behind each ``<layer>_weight_flip`` node.

A site takes the integer codes of one quantized weight and returns them with bit faults
applied. It owns the site's bit width, fault model, rates, RNG stream, on/off switches and
statistics. Sampling (where faults go) is kept apart from injection (what a fault does):

* *where*: :meth:`BitFlip.fault_map` draws the faulted ``(weight, bit)`` pairs on the CPU, in time
  proportional to their number (see :mod:`fxfault.faults.sampling`);
* *what*: :meth:`BitFlip.inject` encodes the codes at those weights into ``k``-bit words,
  flips or forces the bits, and decodes them back, touching nothing else.
"""

from __future__ import annotations

import itertools
import numbers
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .._numpy_views import numpy_ok
from ..errors import ConfigError
from .encoding import Encoding, make_encoding
from .plan import FaultPlan
from .rates import is_absolute, plane_rates
from .sampling import bernoulli_positions_np, derive_seed

__all__ = ["BitFlip", "SiteStats", "lookup_site"]

_REGISTRY: weakref.WeakValueDictionary[int, BitFlip] = weakref.WeakValueDictionary()
_HANDLES = itertools.count(1)


def lookup_site(handle: int) -> BitFlip:
    """The live site with ``handle`` (used by the ``fxfault::flip_bits`` custom op)."""
    site = _REGISTRY.get(int(handle))
    if site is None:
        raise RuntimeError(
            f"fxfault site handle {handle} is not alive in this process. A compiled or "
            "exported fault graph calls back into the BitFlip modules of the GraphModule it "
            "came from; keep that GraphModule alive (and in this process)."
        )
    return site


@dataclass
class SiteStats:
    """Counters of one site since the last reset.

    ``events`` counts fault events (sampled faults); ``changed_bits`` the stored bits that
    actually changed (fewer than ``events`` for stuck-at faults on bits that already held the
    forced value); ``changed_weights`` the weights with at least one changed bit;
    ``exposed_bits`` the bits at risk (``passes * numel * bits``).
    """

    passes: int = 0
    events: int = 0
    changed_bits: int = 0
    changed_weights: int = 0
    exposed_bits: int = 0
    # device-side counters for stuck-at faults, folded in lazily (no sync per forward)
    _dev: list[torch.Tensor] = field(default_factory=list, repr=False)

    def settle(self) -> None:
        for t in self._dev:
            bits, weights = (int(x) for x in t.tolist())
            self.changed_bits += bits
            self.changed_weights += weights
        self._dev.clear()


class BitFlip(nn.Module):
    """One fault site: applies bit faults to the integer codes of one quantized weight."""

    # derived from the rates by the ``_rates`` setter
    _rate_list: list[float]
    _any_rate: bool
    _groups: list[tuple[float, np.ndarray]]

    def __init__(
        self,
        *,
        name: str,
        layer: str,
        kind: str,
        bits: int,
        qmin: int,
        qmax: int,
        shape: tuple[int, ...],
        plan: FaultPlan,
        ber: float = 0.0,
        bit_rates: Any = None,
        fault: str = "flip",
        encoding: Any = "offset",
        gradient: str = "ste",
        in_training: bool = True,
        in_inference: bool = True,
        axis: int | None = None,
        fixed_faults: list[tuple[int, int]] | None = None,
        count_member: bool = False,
        nodes: dict[str, str] | None = None,
        cache: bool = True,
    ) -> None:
        super().__init__()
        self.name = name
        self.layer = layer
        self.kind = kind
        self.bits = int(bits)
        self.qmin = int(qmin)
        self.qmax = int(qmax)
        self.shape = tuple(int(s) for s in shape)
        self.numel = 1
        for s in self.shape:
            self.numel *= s
        self.axis = axis
        self.plan = plan
        self.fault = fault
        self.gradient = gradient
        self.encoding: Encoding = make_encoding(encoding, self.bits, self.qmin, self.qmax, where=name)
        self.bit_rates = bit_rates
        self.ber = float(ber)
        self._rates = plane_rates(bit_rates, self.bits, self.ber, where=name)
        self.enabled = True
        self.in_training = in_training
        self.in_inference = in_inference
        self.fixed_faults = self._check_fixed(fixed_faults)
        self.count_member = count_member
        self.nodes = dict(nodes or {})
        self.stats = SiteStats()
        self._pass = 0
        self._cache: dict[Any, tuple[torch.Tensor, torch.Tensor, int]] = {}
        self._dev_cache: dict[tuple[Any, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}
        # eval-mode cache of persistent faults, shared with fxfault.ops (quantize/dequantize)
        self.cache = cache
        self._memo: dict[str, Any] = {}
        self._generation = 0
        self._prefetched: dict[Any, tuple[torch.Tensor, torch.Tensor, int]] = {}
        # fxfault.training: replay one pass (same_faults) / collect clean weights
        self._hold: int | None = None
        self._keep_clean: dict[str, torch.Tensor] | None = None
        self._register()

    # ------------------------------------------------------------------ identity
    def _register(self) -> None:
        self._handle = next(_HANDLES)
        _REGISTRY[self._handle] = self

    def __setstate__(self, state: dict[str, Any]) -> None:
        legacy = state.pop("_rates", None)  # pickles from before _rates was a property
        super().__setstate__(state)
        if legacy is not None:
            self._rates = legacy
        self._cache = {}
        self._dev_cache = {}
        self._memo = {}
        self._prefetched = {}
        self._hold = None
        self._keep_clean = None
        self._register()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"] = {}
        state["_dev_cache"] = {}
        state["_memo"] = {}
        state["_prefetched"] = {}
        state.pop("_gen", None)
        state["_hold"] = None
        state["_keep_clean"] = None
        self.stats.settle()
        return state

    def extra_repr(self) -> str:
        return (
            f"layer={self.layer!r}, bits={self.bits}, codes=[{self.qmin}, {self.qmax}], "
            f"encoding={self.encoding.name}, fault={self.fault}, {self.rate_text()}, "
            f"mode={self.plan.mode}"
        )

    # ------------------------------------------------------------------ settings
    def _check_fixed(self, faults: list[tuple[int, int]] | None) -> list[tuple[int, int]] | None:
        if faults is None:
            return None
        for idx, bit in faults:
            if not 0 <= idx < self.numel:
                raise ConfigError(
                    f"faults: flat index {idx} is out of range for site {self.name!r} "
                    f"({self.numel} weights, indices 0..{self.numel - 1})"
                )
            if not 0 <= bit < self.bits:
                raise ConfigError(
                    f"faults: bit {bit} does not exist in the {self.bits}-bit site {self.name!r} "
                    f"(bits 0..{self.bits - 1}, 0 is the LSB)"
                )
        return list(faults)

    @property
    def rates(self) -> list[float]:
        """Per-bit fault rates, LSB first."""
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
        self._rates = plane_rates(self.bit_rates, self.bits, self.ber, where=self.name)
        self.clear_cache()

    @property
    def _rates(self) -> list[float]:
        """Per-bit rates, LSB first; setting them also sets what is derived from them."""
        return self._rate_list

    @_rates.setter
    def _rates(self, rates: list[float]) -> None:
        rates = [float(r) for r in rates]
        groups: dict[float, list[int]] = {}
        for plane, r in enumerate(rates):
            if r > 0:
                groups.setdefault(r, []).append(plane)
        # plain attributes: skip nn.Module.__setattr__
        self.__dict__["_rate_list"] = rates
        self.__dict__["_any_rate"] = bool(groups)
        # one Bernoulli walk per distinct rate, by ascending rate
        self.__dict__["_groups"] = [(r, np.asarray(groups[r], dtype=np.int64)) for r in sorted(groups)]

    def clear_cache(self) -> None:
        """Forget drawn fault maps and cached results (they are recomputed on demand)."""
        self._prefetched.clear()
        self._cache.clear()
        self._dev_cache.clear()
        self._memo.clear()

    def fast_ok(self, codes: torch.Tensor | None = None, *, any_map: bool = False) -> bool:
        """Whether this pass may use the site's buffers, and, given ``codes``, whether they are
        the clean codes memoised by ``quantize``.

        Buffers serve eval mode without autograd, with the cache on. The buffer of faulted
        *codes* (``any_map=True``, a quarter of the weight's size for 8-bit codes) serves every
        fault map: undoing last pass's faults is cheaper than copying the codes. The buffer of
        faulted *weights* (the default) serves maps that repeat (persistent mode, seed lists,
        fault lists), where it makes a repeated pass free.
        """
        if not (self.cache and not self.training and not torch.is_grad_enabled()):
            return False
        if not any_map and self.fixed_faults is None and not self.plan.cacheable():
            return False
        if torch.compiler.is_compiling():
            return False
        if codes is None:
            return True
        memo = self._memo.get("quantize")
        return memo is not None and memo[1] is codes

    def codes_cache_ok(self) -> bool:
        """Whether clean codes may be reused across passes (eval mode, cache on): they depend
        on the weight and the grid only, whatever the fault mode."""
        return self.cache and not self.training and not torch.compiler.is_compiling()

    def train(self, mode: bool = True) -> BitFlip:
        self._memo.clear()
        return super().train(mode)

    def targeted_planes(self) -> list[int]:
        """Bit planes that can fail (for ``count``): those with a non-zero rate pattern."""
        mask = plane_rates(self.bit_rates, self.bits, 1.0, where=self.name)
        return [b for b, r in enumerate(mask) if r > 0]

    def expected_events(self) -> float:
        """Expected fault events per forward pass at the current settings."""
        if self.fixed_faults is not None:
            return float(len(self.fixed_faults))
        if self.count_member and self.plan.count is not None:
            total = self.plan.count_total_bits
            mine = self.numel * len(self.targeted_planes())
            return self.plan.count * mine / total if total else 0.0
        return self.numel * sum(self._rates)

    def configured_rate(self) -> float:
        """Expected fault events per exposed bit."""
        return self.expected_events() / (self.numel * self.bits)

    def rate_text(self) -> str:
        if self.fixed_faults is not None:
            return f"faults={len(self.fixed_faults)}"
        if self.count_member and self.plan.count is not None:
            return f"count-share~{self.expected_events():.3g}"
        if self.bit_rates is None:
            return f"ber={self.ber:g}"
        return f"bit_rates={self.bit_rates!r} (ber={self.ber:g})"

    def is_active(self) -> bool:
        """Whether the next forward pass injects faults."""
        if not self.enabled:
            return False
        if not (self.in_training if self.training else self.in_inference):
            return False
        if self.fixed_faults is not None:
            return bool(self.fixed_faults)
        if self.count_member and self.plan.count is not None:
            return self.plan.count > 0
        return self._any_rate

    # ------------------------------------------------------------------ sampling (where)
    def fault_map(self, pass_index: int | None = None) -> tuple[torch.Tensor, torch.Tensor, int]:
        """The faults of a forward pass: ``(weight indices, bit masks, events)``, on the CPU.

        Weight indices are sorted and distinct (flat indices into the weight); each mask holds
        the faulted bits of its weight. ``pass_index`` defaults to the next pass.
        """
        if pass_index is None:
            t = self._pass
        else:
            if isinstance(pass_index, bool) or not isinstance(pass_index, numbers.Integral) or pass_index < 0:
                raise ConfigError(f"pass_index must be a non-negative integer, got {pass_index!r}")
            t = int(pass_index)
        _, w_idx, masks, events = self._map(t)
        return w_idx, masks, events

    def _map(self, t: int) -> tuple[Any, torch.Tensor, torch.Tensor, int]:
        """``(key, weights, masks, events)`` of pass ``t``; ``key`` is None when not reusable."""
        if self.fixed_faults is not None:
            key: Any = ("fixed",)
        else:
            key = self.plan.draw_key(t)
        hit = self._cache.get(key)
        if hit is not None:
            return (key, *hit)
        if self.fixed_faults is None and not self.plan.cacheable():
            # transient: the plan draws this pass for every site at once (while the sampler's
            # code and data are warm); each draw depends on (key, site name) only
            self.plan.enlist(self)
            pre = self._prefetched.pop(key, None)
            if pre is None:
                self.plan.prefetch(key, t)
                pre = self._prefetched.pop(key, None)
            result = pre if pre is not None else self._draw(key)
            return (None, *result)
        result = self._draw(key)
        if self.fixed_faults is not None or self.plan.cacheable():
            if len(self._cache) > 64:
                self._cache.clear()
                self._dev_cache.clear()
            self._cache[key] = result
            return (key, *result)
        return (None, *result)

    def _draw(self, key: Any) -> tuple[torch.Tensor, torch.Tensor, int]:
        if self.fixed_faults is not None:
            if not self.fixed_faults:
                return _pairs_to_masks(torch.empty(0, dtype=torch.int64), torch.empty(0, dtype=torch.int64))
            w = torch.tensor([i for i, _ in self.fixed_faults], dtype=torch.int64)
            b = torch.tensor([j for _, j in self.fixed_faults], dtype=torch.int64)
            return _pairs_to_masks(w, b, dedupe=True)
        if self.count_member and self.plan.count is not None:
            planes = self.targeted_planes()
            pos = self.plan.count_positions(self.name, key)
            p = torch.tensor(planes, dtype=torch.int64)
            return _pairs_to_masks(pos // len(planes), p[pos % len(planes)])
        gen = self._generator()
        gen.manual_seed(derive_seed(*key, self.name))
        ws: list[np.ndarray] = []
        bs: list[np.ndarray] = []
        for r, group in self._groups:
            hits = bernoulli_positions_np(self.numel * group.size, r, gen)
            if not hits.size:
                continue
            if group.size == 1:
                ws.append(hits)
                bs.append(np.full(hits.shape, group[0], dtype=np.int64))
            else:
                weight_idx, plane_idx = np.divmod(hits, group.size)
                ws.append(weight_idx)
                bs.append(group[plane_idx])
        if not ws:
            return _empty_map()
        if len(ws) == 1:
            return _pairs_to_masks(torch.from_numpy(ws[0]), torch.from_numpy(bs[0]), sorted_=True)
        return _pairs_to_masks(torch.from_numpy(np.concatenate(ws)), torch.from_numpy(np.concatenate(bs)))

    def _generator(self) -> torch.Generator:
        gen = self.__dict__.get("_gen")
        if gen is None:
            gen = torch.Generator(device="cpu")
            self.__dict__["_gen"] = gen
        return gen

    # ------------------------------------------------------------------ injection (what)
    def _advance(self) -> None:
        if self._hold is None:
            # plain ints: skip nn.Module.__setattr__, which costs microseconds per pass
            self.__dict__["_pass"] = self._pass + 1

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling():
            return torch.ops.fxfault.flip_bits(codes, self._handle)
        return self.inject(codes)

    def inject(self, codes: torch.Tensor) -> torch.Tensor:
        """Apply this pass's faults to ``codes``; returns ``codes`` itself when inactive.

        In eval mode without autograd (see :meth:`fast_ok`), with the clean codes unchanged
        since the last pass (the same memoised tensor), the faulted codes live in a buffer of
        the site: the same faults cost nothing, a new map undoes the last one and applies its
        own, in time proportional to the number of faults. The returned
        tensor is then that buffer, rewritten by later passes.
        """
        if not self.is_active():
            return codes
        if tuple(codes.shape) != self.shape:
            raise RuntimeError(
                f"fault site {self.name!r} was built for a weight of shape {self.shape} but got "
                f"codes of shape {tuple(codes.shape)}; re-run fxfault.transform after changing "
                "the model"
            )
        t = self._pass if self._hold is None else self._hold
        buf = self._memo.get("flip") if self.fast_ok(codes, any_map=True) else None
        if buf is not None and buf["codes"] is not codes:
            buf = None
        map_key = ("fixed",) if self.fixed_faults is not None else self.plan.draw_key(t)
        if buf is not None and buf["key"] == map_key and buf["version"] == codes._version:
            # the same faults on the same clean codes: the buffer already holds the result
            self._advance()
            self._count(*buf["counts"])
            return buf["out"]  # type: ignore[no-any-return]
        key, w_idx, masks, events = self._map(t)
        self._advance()
        if w_idx.numel() == 0:
            self._count(0, 0, None)
            return codes
        if numpy_ok(codes):
            out, changed, dev_counts = self._apply_numpy(codes, buf, w_idx, masks)
        else:
            out, changed, dev_counts = self._apply_torch(codes, buf, key, w_idx, masks)
        counts = (events, int(w_idx.numel()), dev_counts)
        self._count(*counts)
        # Tell dequantize (in eager mode) which positions changed value, so that it can patch
        # the clean weight there instead of comparing every code; ``generation`` tells it
        # whether these are the faults it already applied.
        self.__dict__["_generation"] = self._generation + 1
        out._fxfault_patch = (codes, changed, self._generation)  # type: ignore[attr-defined]
        if self.fast_ok(codes, any_map=True):
            self._memo["flip"] = {
                "codes": codes, "version": codes._version, "key": map_key, "out": out,
                "idx": w_idx, "counts": counts,
            }
        return out

    def _new_words(self, words: Any, m: Any) -> Any:
        if self.fault == "flip":
            return words ^ m
        if self.fault == "stuck_at_0":
            return words & ~m
        return words | m

    def _apply_numpy(
        self, codes: torch.Tensor, buf: dict[str, Any] | None, w_idx: torch.Tensor, masks: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """CPU: the per-fault arithmetic in NumPy on views of the tensors (cheap for few faults)."""
        cn = codes.detach().reshape(-1).numpy()
        if buf is not None:
            out = buf["out"]
            prev = buf["idx"].numpy()
            out.view(-1).numpy()[prev] = cn[prev]  # undo last pass's faults
        else:
            out = codes.clone(memory_format=torch.contiguous_format)
        on = out.view(-1).numpy()
        idx = w_idx.numpy()
        old = cn[idx].astype(np.int64)
        words = self.encoding.encode(old)
        new_words = self._new_words(words, masks.numpy())
        new = self.encoding.decode(new_words)
        on[idx] = new
        dev_counts = None
        if self.fault != "flip":
            diff = words ^ new_words
            nbits = sum(int(((diff >> b) & 1).sum()) for b in range(self.bits))
            dev_counts = torch.tensor([nbits, int((diff != 0).sum())])
        return out, torch.from_numpy(idx[new != old]), dev_counts

    def _apply_torch(
        self,
        codes: torch.Tensor,
        buf: dict[str, Any] | None,
        key: Any,
        w_idx: torch.Tensor,
        masks: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Accelerators: the same arithmetic as torch ops on the device."""
        dev = codes.device
        cached = self._dev_cache.get((key, dev)) if key is not None else None
        if cached is None:
            cached = (w_idx.to(dev, non_blocking=True), masks.to(dev, non_blocking=True))
            if key is not None:
                self._dev_cache[(key, dev)] = cached
        idx, m = cached
        flat_codes = codes.reshape(-1)
        if buf is not None:
            out = buf["out"]
            prev = buf["idx"].to(dev, non_blocking=True)
            out.view(-1)[prev] = flat_codes[prev]  # undo last pass's faults
        else:
            out = codes.clone(memory_format=torch.contiguous_format)
        old = flat_codes[idx].to(torch.int64)
        words = self.encoding.encode(old)
        new_words = self._new_words(words, m)
        new = self.encoding.decode(new_words)
        out.view(-1)[idx] = new.to(out.dtype)
        dev_counts = None
        if self.fault != "flip":
            diff = words ^ new_words
            nbits = torch.zeros((), dtype=torch.int64, device=dev)
            for b in range(self.bits):
                nbits = nbits + ((diff >> b) & 1).sum()
            dev_counts = torch.stack([nbits, (diff != 0).sum()])
        return out, idx[new != old], dev_counts

    def _count(self, events: int, weights: int, dev_counts: torch.Tensor | None) -> None:
        st = self.stats
        st.passes += 1
        st.events += events
        st.exposed_bits += self.numel * self.bits
        if self.fault == "flip":
            st.changed_bits += events
            st.changed_weights += weights
        elif dev_counts is not None:
            st._dev.append(dev_counts)
            if len(st._dev) > 256:
                st.settle()


def _empty_map() -> tuple[torch.Tensor, torch.Tensor, int]:
    return torch.empty(0, dtype=torch.int64), torch.empty(0, dtype=torch.int64), 0


def _pairs_to_masks(
    w: torch.Tensor, b: torch.Tensor, *, sorted_: bool = False, dedupe: bool = False
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Group ``(weight, bit)`` pairs by weight: ``(unique weights, OR of 1 << bit, #pairs)``."""
    wn = w.numpy()
    bn = b.numpy()
    if dedupe and wn.size:
        pair = np.unique(wn * 64 + bn)
        wn, bn = pair // 64, pair % 64
        sorted_ = True
    events = int(wn.size)
    if events == 0:
        return torch.empty(0, dtype=torch.int64), torch.empty(0, dtype=torch.int64), 0
    bitval = np.left_shift(np.int64(1), bn.astype(np.int64))
    if sorted_:
        starts = np.flatnonzero(np.concatenate(([True], wn[1:] != wn[:-1])))
        if starts.size == wn.size:
            return torch.from_numpy(np.ascontiguousarray(wn, dtype=np.int64)), torch.from_numpy(bitval), events
        uniq = wn[starts]
        masks = np.add.reduceat(bitval, starts)
    else:
        uniq, inverse = np.unique(wn, return_inverse=True)
        masks = np.zeros(uniq.size, dtype=np.int64)
        np.add.at(masks, inverse, bitval)
    return (
        torch.from_numpy(np.ascontiguousarray(uniq, dtype=np.int64)),
        torch.from_numpy(np.ascontiguousarray(masks, dtype=np.int64)),
        events,
    )
