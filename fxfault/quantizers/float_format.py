"""Bit errors in floating-point weights: ``FaultConfig(float_format="float32" | "float16" |
"bfloat16" | "float8_e4m3fn" | "float8_e5m2" | "native")``.

A float site has no quantizer. Its chain is::

    weight [-> round_to_format] -> float_to_bits -> flip -> bits_to_float -> straight_through

``float_to_bits`` reinterprets the stored float as an integer of the format's width (bit for
bit, ``Tensor.view``), the site flips bits of that word (:mod:`fxfault.faults.formats` says
which are sign, exponent and mantissa), and ``bits_to_float`` reinterprets them back. For a
format narrower than the weight's dtype (``bfloat16`` for a float32 model), the weight is first
rounded to the format (``round_to_format``: what a bfloat16 deployment stores), and the faulted
value is cast back to the weight's dtype for the layer. With the weight's own format
(``"native"``, or its dtype's name) and faults off, the outputs are bit-identical to the source
model's.

A flip can make a weight infinite or NaN (an exponent of all ones): that is a fault outcome,
never an error.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from ..config import FaultConfig
from ..errors import ConfigError
from ..faults.cache import gather, numpy_ok, scatter
from ..faults.formats import FORMATS, FloatFormat, format_of
from ..faults.plan import Pass
from ..ops import faulted_buffer, proxy_call
from .base import ChainNodes, MatchContext, QuantizerAdapter, SiteMatch
from .codecs import DECODE_OPS, ENCODE_OPS, ChainContext, Codec

__all__ = ["FloatFormatAdapter", "FloatFormatCodec", "bits_to_float", "float_to_bits", "round_to_format"]

_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_CONSUMERS: set[Any] = {
    F.conv1d, F.conv2d, F.conv3d, F.linear, torch.conv1d, torch.conv2d, torch.conv3d,
    torch._C._nn.linear, torch.ops.aten.conv1d.default, torch.ops.aten.conv2d.default,
    torch.ops.aten.conv3d.default, torch.ops.aten.linear.default,
}
_NP = {torch.int32: np.int32, torch.int16: np.int16, torch.int8: np.int8,
       torch.float32: np.float32, torch.float16: np.float16}


# --------------------------------------------------------------------------------------------
# arithmetic
# --------------------------------------------------------------------------------------------
def _to_bits(x: torch.Tensor, fmt: FloatFormat) -> torch.Tensor:
    with torch.no_grad():
        return x.detach().to(fmt.dtype).view(fmt.int_dtype)


def _floats_at(codes: Any, index: Any, fmt: FloatFormat, out: torch.Tensor) -> Any:
    """The floats of the codes at the flat ``index`` positions, in ``out``'s dtype."""
    words = gather(codes, index)
    if isinstance(words, np.ndarray) and fmt.dtype in _NP and out.dtype in _NP and numpy_ok(out):
        return words.astype(_NP[fmt.int_dtype], copy=False).view(_NP[fmt.dtype]).astype(_NP[out.dtype])
    t = torch.as_tensor(words).to(fmt.int_dtype).view(fmt.dtype).to(out.dtype)
    return t.cpu().numpy() if numpy_ok(out) and out.dtype in _NP else t.to(out.device)


def _from_bits(codes: torch.Tensor, fmt: FloatFormat, reference: torch.Tensor,
               reference_codes: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        if codes is reference_codes:
            return reference
        changed = torch.nonzero((codes != reference_codes).reshape(-1)).squeeze(1)
        out = reference.detach().clone(memory_format=torch.contiguous_format)
        if changed.numel():
            scatter(out, changed, _floats_at(codes, changed, fmt, out))
        return out


# --------------------------------------------------------------------------------------------
# graph functions
# --------------------------------------------------------------------------------------------
def round_to_format(weight: torch.Tensor, fmt: str, site: Any = None, pass_: Pass | None = None) -> torch.Tensor:
    """``weight`` rounded to the float format ``fmt`` and cast back to its dtype (the gradient
    passes unchanged). With a site and an eval pass, kept while ``weight`` is unchanged."""
    traced = proxy_call(round_to_format, (weight, fmt), {"site": site, "pass_": pass_})
    if traced is not None:
        return traced
    if site is not None and site.cached(pass_):
        buf = site.cache.buffers().sync((weight,), pass_.serial)  # type: ignore[union-attr]
        if buf.qweight is None:
            with torch.no_grad():
                buf.qweight = weight.to(FORMATS[fmt].dtype).to(weight.dtype)
        return buf.qweight
    return weight.to(FORMATS[fmt].dtype).to(weight.dtype)


def float_to_bits(x: torch.Tensor, fmt: str, site: Any = None, sources: list[torch.Tensor] | None = None,
                  pass_: Pass | None = None) -> torch.Tensor:
    """The bits of ``x`` stored as ``fmt``, as signed integers of the same width (a view when
    ``x`` already has that dtype). With a site and an eval pass, kept while ``sources`` are
    unchanged."""
    traced = proxy_call(float_to_bits, (x, fmt), {"site": site, "sources": sources, "pass_": pass_})
    if traced is not None:
        return traced
    if torch.compiler.is_compiling():
        return torch.ops.fxfault.float_to_bits(x.detach(), fmt)
    f = FORMATS[fmt]
    if site is not None:
        site.observe_clean(x)
        if sources is not None and site.cached(pass_):
            buf = site.cache.buffers().sync(sources, pass_.serial)  # type: ignore[union-attr]
            if buf.codes is None:
                buf.codes = _to_bits(x, f)
            return buf.codes
    return _to_bits(x, f)


def bits_to_float(codes: torch.Tensor, fmt: str, reference: torch.Tensor, reference_codes: torch.Tensor,
                  site: Any = None, pass_: Pass | None = None) -> torch.Tensor:
    """The floats of ``codes`` (bits of ``fmt``) in ``reference``'s dtype; codes equal to
    ``reference_codes`` give ``reference`` exactly. With a site and an eval pass, the result is
    the site's faulted-weight buffer, updated in time proportional to the number of faults."""
    traced = proxy_call(bits_to_float, (codes, fmt, reference, reference_codes), {"site": site, "pass_": pass_})
    if traced is not None:
        return traced
    if torch.compiler.is_compiling():
        return torch.ops.fxfault.bits_to_float(codes, fmt, reference.detach(), reference_codes)
    if codes is reference_codes:
        return reference
    f = FORMATS[fmt]
    if site is not None and site.cached(pass_):
        out = faulted_buffer(site, pass_, reference,  # type: ignore[arg-type]
                             lambda view, at: _floats_at(view, at, f, reference), codes)
        if out is not None:
            return out
    return _from_bits(codes, f, reference, reference_codes)


ENCODE_OPS.add(float_to_bits)
DECODE_OPS.add(bits_to_float)


@torch.library.custom_op("fxfault::float_to_bits", mutates_args=())
def _float_to_bits_op(x: torch.Tensor, fmt: str) -> torch.Tensor:
    return _to_bits(x, FORMATS[fmt]).clone()


@_float_to_bits_op.register_fake
def _(x, fmt):  # type: ignore[no-untyped-def]
    return torch.empty(x.shape, dtype=FORMATS[fmt].int_dtype, device=x.device)


@torch.library.custom_op("fxfault::bits_to_float", mutates_args=())
def _bits_to_float_op(codes: torch.Tensor, fmt: str, reference: torch.Tensor,
                      reference_codes: torch.Tensor) -> torch.Tensor:
    out = _from_bits(codes, FORMATS[fmt], reference, reference_codes)
    return out.clone() if out is reference else out


@_bits_to_float_op.register_fake
def _(codes, fmt, reference, reference_codes):  # type: ignore[no-untyped-def]
    return torch.empty_like(reference, memory_format=torch.contiguous_format)


# --------------------------------------------------------------------------------------------
# codec and adapter
# --------------------------------------------------------------------------------------------
class FloatFormatCodec(Codec):
    """``float_to_bits`` / ``bits_to_float`` of one format."""

    def __init__(self, fmt: FloatFormat) -> None:
        self.fmt = fmt

    def encode(self, graph: fx.Graph, value: fx.Node, ctx: ChainContext) -> fx.Node:
        return graph.call_function(
            float_to_bits, (value, self.fmt.name), {"site": ctx.site, "sources": ctx.sources, "pass_": ctx.pass_}
        )

    def decode(self, graph: fx.Graph, flipped: fx.Node, codes: fx.Node, value: fx.Node,
               ctx: ChainContext) -> fx.Node:
        return graph.call_function(
            bits_to_float, (flipped, self.fmt.name, value, codes), {"site": ctx.site, "pass_": ctx.pass_}
        )


def _format_name(cfg: FaultConfig, layer: str) -> str | None:
    if cfg.float_format is None:
        return None
    return cfg.for_layer("float_format", layer)  # type: ignore[no-any-return]


class FloatFormatAdapter(QuantizerAdapter):
    """Float conv/linear weights faulted in their floating-point bits (``float_format``)."""

    name = "float_format"

    def describe(self) -> str:
        return "float_format: a conv/linear weight read without a quantizer, with FaultConfig(float_format=...)"

    def trace_through(self, model: nn.Module, cfg: FaultConfig) -> Iterable[nn.Module]:
        if cfg.float_format is None:
            return []
        return [m for n, m in model.named_modules() if type(m) in _LAYERS and _format_name(cfg, n)]

    def candidate_layers(self, shadow: nn.Module, cfg: FaultConfig) -> Iterable[str]:
        if cfg.float_format is None:
            return []
        return [n for n, m in shadow.named_modules() if isinstance(m, _LAYERS)]

    def match(self, node: fx.Node, ctx: MatchContext) -> SiteMatch | None:
        if ctx.cfg.float_format is None or node.op != "call_function" or node.target not in _CONSUMERS:
            return None
        weight = node.args[1] if len(node.args) > 1 else node.kwargs.get("weight")
        w = ctx.tensor_of(weight)
        if not isinstance(w, nn.Parameter) or not isinstance(weight, fx.Node):
            return None
        layer = str(weight.target).rpartition(".")[0]
        name = _format_name(ctx.cfg, layer)
        if name is None:
            return None
        if ctx.cfg.float_bits is not None and ctx.cfg.for_layer("float_bits", layer) is not None:
            raise ConfigError(
                f"layer {layer!r} has both float_format and float_bits: choose one fault model "
                "(its float bits, or integer codes of fxfault's own quantizer)"
            )
        fmt = format_of(name, w.dtype, where=layer)
        narrow = fmt.dtype != w.dtype

        def build_quantizer(graph: fx.Graph, chain: ChainNodes) -> dict[str, fx.Node]:
            if not narrow:
                return {"out": weight}
            kwargs: dict[str, Any] = {"site": chain.site, "pass_": chain.pass_}
            return {"out": graph.call_function(round_to_format, (weight, fmt.name), kwargs)}

        half = 1 << (fmt.bits - 1)
        return SiteMatch(
            quantizer="ieee",
            layer=layer,
            node=None,
            bits=fmt.bits,
            qmin=-half,
            qmax=half - 1,
            shape=tuple(w.shape),
            build_quantizer=build_quantizer,
            weight=weight,
            consumer=node,
            stored=str(weight.target),
            codec=FloatFormatCodec(fmt),
            encoding=fmt,
        )
