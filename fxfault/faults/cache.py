"""``SiteCache``: the eval-mode buffers of one fault site, the only state kept between passes.

In eval mode without autograd (a :class:`~fxfault.faults.plan.Pass` with ``cached=True``), the
clean codes of a weight depend only on stored tensors: the weight, the quantizer's parameters
and buffers, the scale. While those are unchanged (same tensor objects, same version counters,
storage, dtype and device), a site reuses, per thread:

``codes``
    the clean integer codes (``quantize`` computes them once);
``fcodes`` / ``fweight``
    the faulted codes and the faulted weight: copies of the clean ones in which the faults of
    the current map are written. Moving to another map *undoes* the positions of the last map
    (copying the clean values back) and writes the new ones, in time proportional to the
    number of faults; the same map again costs nothing;
``scale`` / ``qweight``
    the step sizes and the clean quantized weight of fxfault's own quantizer (``float_bits``),
    which then stops re-quantizing unchanged weights.

:meth:`Buffers.write` is the one place where faults are applied and undone. Each thread that
runs the model gets its own :class:`Buffers` (a returned buffer is read by the layer after the
site has returned), so threads never see each other's faults. Nothing here is ever written into
a tensor that the model or the caller holds: buffers are the cache's own copies.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch

__all__ = ["Buffers", "Patch", "SiteCache", "flat", "gather", "numpy_ok", "scatter", "source_key"]

_NUMPY_DTYPES = frozenset(
    {torch.float16, torch.float32, torch.float64, torch.int8, torch.int16, torch.int32, torch.int64,
     torch.uint8, torch.bool}
)


def numpy_ok(t: torch.Tensor) -> bool:
    """Whether ``t`` is a CPU tensor that NumPy can view (not bfloat16 or float8, no grad)."""
    return t.device.type == "cpu" and t.dtype in _NUMPY_DTYPES


def flat(t: torch.Tensor) -> Any:
    """A flat view of ``t``: a NumPy array for CPU tensors NumPy can view (indexing a handful of
    values costs far less in NumPy than in torch), else a flat tensor."""
    if t.device.type == "cpu" and t.dtype in _NUMPY_DTYPES:
        return t.detach().numpy().reshape(-1)  # a view (a copy only for a non-contiguous t)
    return t.detach().reshape(-1)


def _index_for(view: Any, index: Any) -> Any:
    if isinstance(view, np.ndarray):
        return index if isinstance(index, np.ndarray) else index.cpu().numpy()
    if isinstance(index, np.ndarray):
        index = torch.from_numpy(index)
    return index.to(view.device)


def gather(t: Any, index: Any) -> Any:
    """``t.reshape(-1)[index]`` for a tensor or a :func:`flat` view; ``index`` is a NumPy array
    or a tensor of flat positions."""
    view = t if isinstance(t, np.ndarray) else flat(t)
    return view[_index_for(view, index)]


def scatter(t: Any, index: Any, values: Any) -> None:
    """``t.view(-1)[index] = values`` in place, for a contiguous tensor owned by the caller or
    a :func:`flat` view of one."""
    view = t if isinstance(t, np.ndarray) else flat(t)
    if isinstance(view, np.ndarray):
        if not isinstance(values, np.ndarray):
            values = values.cpu().numpy()
        view[_index_for(view, index)] = values.astype(view.dtype, copy=False)
        return
    if isinstance(values, np.ndarray):
        values = torch.from_numpy(values)
    view[_index_for(view, index)] = values.to(device=view.device, dtype=view.dtype)


def source_key(sources: Sequence[Any]) -> tuple[Any, ...] | None:
    """What identifies the current contents of stored tensors without reading them: the objects
    themselves (held, so their identity cannot be reused), their version counters (bumped by
    every in-place write), storage, dtype, device and shape. A module among ``sources`` stands
    for all its parameters and buffers. ``None`` when a tensor does not track versions
    (inference tensors): then nothing is cached."""
    out: list[Any] = []
    for src in sources:
        tensors = [*src.parameters(), *src.buffers()] if isinstance(src, torch.nn.Module) else [src]
        for t in tensors:
            if not isinstance(t, torch.Tensor):
                return None
            try:
                out.append((t, t._version, t.data_ptr(), t.dtype, t.device, tuple(t.shape)))
            except RuntimeError:
                return None
    return tuple(out)


def _same_key(a: tuple[Any, ...] | None, b: tuple[Any, ...] | None) -> bool:
    if a is None or b is None or len(a) != len(b):
        return False
    return all(x[0] is y[0] and x[1:] == y[1:] for x, y in zip(a, b))


class Patch(NamedTuple):
    """Where a faulted buffer differs from the clean values (flat positions: a NumPy array, or
    a tensor on the buffer's device), the map that put them there, and the clean values there
    (to undo it; ``None`` until written)."""

    key: Hashable
    positions: Any
    clean: Any = None


@dataclass
class Buffers:
    """One thread's eval-mode state of one site (see the module docstring)."""

    key: tuple[Any, ...] | None = None
    scale: torch.Tensor | None = None
    qweight: torch.Tensor | None = None
    codes: torch.Tensor | None = None
    fcodes: torch.Tensor | None = None
    fweight: torch.Tensor | None = None
    patches: dict[str, Patch] = field(default_factory=dict)
    #: flat views (NumPy on the CPU) of the faulted buffers
    views: dict[str, Any] = field(default_factory=dict)
    #: (pass index, patch of the codes or None) of the last flip on this thread
    flipped: tuple[int, Patch | None] | None = None
    #: the counts of the faults in ``fcodes`` (events, changed bits, changed values)
    counts: tuple[int, Any, Any] = (0, 0, 0)
    #: the serial of the last pass whose sources were checked
    checked: int = -1
    #: what a codec keeps beside the buffers (a rebuilt weight, a packed module), by name
    extra: dict[str, Any] = field(default_factory=dict)

    def sync(self, sources: Sequence[Any], serial: int = -1) -> Buffers:
        """Forget everything when the stored tensors changed since the buffers were made
        (checked once per forward pass: ``serial`` is the pass's serial number)."""
        if serial >= 0 and serial == self.checked:
            return self
        key = source_key(sources)
        if key is None or not _same_key(key, self.key):
            self.reset()
            self.key = key
        self.checked = serial
        return self

    def flat(self, t: torch.Tensor) -> Any:
        """:func:`flat` of ``t``, kept for the buffers' own tensors (they are read every pass)."""
        for name in ("codes", "fcodes", "qweight", "fweight"):
            if getattr(self, name) is t:
                view = self.views.get(name)
                if view is None:
                    view = self.views[name] = flat(t)
                return view
        return flat(t)

    def current(self, name: str, key: Hashable) -> torch.Tensor | None:
        """The faulted buffer ``name`` if it already holds the faults of map ``key``."""
        patch = self.patches.get(name)
        return getattr(self, name) if patch is not None and patch.key == key else None

    def reset(self) -> None:
        self.key = self.scale = self.qweight = self.codes = None
        self.fcodes = self.fweight = self.flipped = None
        self.patches = {}
        self.views = {}
        self.extra = {}
        self.checked = -1

    def write(self, name: str, clean: torch.Tensor, patch: Patch, values: Any) -> torch.Tensor:
        """The faulted buffer ``name`` ("fcodes" or "fweight"): a copy of ``clean`` with
        ``values`` at ``patch.positions``. The last patch is undone first (from the clean values
        it saved); the same patch again costs nothing."""
        buf: torch.Tensor | None = getattr(self, name)
        old = self.patches.get(name)
        if buf is None or buf.shape != clean.shape or buf.dtype != clean.dtype:
            buf = clean.detach().clone(memory_format=torch.contiguous_format)
            setattr(self, name, buf)
            self.views[name] = flat(buf)
            old = None
        elif old is not None and old.key == patch.key:
            return buf
        view = self.views[name]
        if old is not None:
            scatter(view, old.positions, old.clean)  # undo the last map
        saved = gather(view, patch.positions)
        scatter(view, patch.positions, values)
        self.patches[name] = patch._replace(clean=saved)
        return buf


class SiteCache:
    """Per-thread :class:`Buffers` of one site; :meth:`invalidate` forgets them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: dict[int, Buffers] = {}

    def buffers(self) -> Buffers:
        """The calling thread's buffers."""
        ident = threading.get_ident()
        buf = self._threads.get(ident)
        if buf is None:
            with self._lock:
                alive = {t.ident for t in threading.enumerate()}
                for dead in [i for i in self._threads if i not in alive]:
                    del self._threads[dead]
                buf = self._threads.setdefault(ident, Buffers())
        return buf

    def threads(self) -> int:
        """How many threads hold buffers (those of finished threads go when a new one comes)."""
        return len(self._threads)

    def invalidate(self) -> None:
        """Forget the buffers of every thread (they are rebuilt on the next eval pass)."""
        with self._lock:
            self._threads.clear()

    def nbytes(self) -> int:
        """Memory held by the buffers (all threads)."""
        total = 0
        for b in list(self._threads.values()):
            for t in (b.scale, b.qweight, b.codes, b.fcodes, b.fweight):
                if t is not None:
                    total += t.numel() * t.element_size()
        return total

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]
