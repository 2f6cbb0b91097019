"""Quantizer adapters and their registry.

fxfault finds weight quantizers through adapters, one per quantizer family. The built-in ones
cover LSQ-style layers; :func:`register_quantizer` adds more (see ``docs/quantizers.md``).
"""

from __future__ import annotations

from .base import MatchContext, QuantizerAdapter, SiteMatch, codes_dtype
from .brevitas import BrevitasAdapter
from .custom import ModuleQuantizerAdapter, register_quantizer
from .float_format import FloatFormatAdapter
from .lsq import LSQAdapter
from .own import FloatAdapter
from .pt2e import PT2EAdapter
from .torch_ao import TorchAOQATAdapter

__all__ = [
    "MatchContext",
    "ModuleQuantizerAdapter",
    "QuantizerAdapter",
    "SiteMatch",
    "adapters",
    "codes_dtype",
    "register_adapter",
    "register_quantizer",
    "unregister_adapter",
]

_ADAPTERS: list[QuantizerAdapter] = [
    LSQAdapter(),
    TorchAOQATAdapter(),
    PT2EAdapter(),
    BrevitasAdapter(),
    FloatFormatAdapter(),
    FloatAdapter(),
]


def adapters() -> list[QuantizerAdapter]:
    """The registered adapters, in the order they are asked (user-registered ones first)."""
    return list(_ADAPTERS)


def register_adapter(adapter: QuantizerAdapter, *, first: bool = True) -> QuantizerAdapter:
    """Register ``adapter`` (asked before the built-in ones unless ``first=False``)."""
    if not isinstance(adapter, QuantizerAdapter):
        raise TypeError(
            f"register_adapter needs a QuantizerAdapter instance, got {type(adapter).__name__}"
        )
    if first:
        _ADAPTERS.insert(0, adapter)
    else:
        _ADAPTERS.append(adapter)
    return adapter


def unregister_adapter(adapter: QuantizerAdapter) -> None:
    """Remove a previously registered adapter."""
    try:
        _ADAPTERS.remove(adapter)
    except ValueError:
        raise ValueError(f"{adapter!r} is not registered") from None
