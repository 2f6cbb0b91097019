"""The pass: trace, match weight quantizers, insert the fault chains, lint, recompile.

Example::

    >>> import fxfault
    >>> from fxfault.testing import lsq_small_cnn
    >>> model = lsq_small_cnn()
    >>> faulty = fxfault.transform(model, ber=1e-3, seed=0)
    >>> [s.name for s in fxfault.sites(faulty)]
    ['conv1', 'conv2', 'fc']
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

import torch
from torch import fx, nn

from . import ops
from ._chain import SITES_MODULE, annotate
from ._graphs import graph_of
from .config import FaultConfig, check_patterns, load_config
from .errors import ConfigError, NoSitesError, QuantizerMismatchError
from .faults.plan import FaultPlan
from .faults.site import BitFlip
from .quantizers import MatchContext, SiteMatch, adapters, codes_dtype
from .tracer import FaultTracer, remove_dead_nodes, shadow_copy

__all__ = ["SITES_MODULE", "transform"]


def transform(
    model: nn.Module,
    cfg: FaultConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    *,
    ber: float | str | None = None,
    seed: int | None = None,
    leaf_modules: Sequence[type] = (),
    check: bool = True,
) -> fx.GraphModule:
    """Return a standalone copy of ``model`` with bit-flip faults after each weight quantizer.

    After every weight quantizer the graph holds ``<layer>_weight_quantize`` (float weight to
    integer codes), ``<layer>_weight_flip`` (a :class:`~fxfault.faults.BitFlip` site),
    ``<layer>_weight_dequantize`` (codes to float) and ``<layer>_weight_straight_through``
    (forward: the faulted weight; backward: the gradient of the clean quantized weight).

    :param model: the quantized model. It is never modified, called or written to.
    :param cfg: a :class:`FaultConfig`, a mapping of its fields, or a path to a JSON config.
    :param ber: overrides ``cfg.ber`` (numbers or numeric strings such as ``"1e-6"``).
    :param seed: overrides ``cfg.seed``.
    :param leaf_modules: module types to keep whole when tracing (also ``cfg.leaf_modules``).
    :param check: verify that each quantizer's output lies on the grid its adapter reads.
    :returns: a ``torch.fx.GraphModule`` that shares parameters and buffers with ``model``.

    Example::

        >>> faulty = fxfault.transform(model, ber=1e-6, seed=0)
        >>> [s.name for s in fxfault.sites(faulty)][:2]
        ['conv1', 'conv2']
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"transform needs a torch.nn.Module, got {type(model).__name__}")
    if isinstance(model, fx.GraphModule) and hasattr(model, SITES_MODULE):
        raise TypeError(
            "this model was already transformed by fxfault; transform the original model "
            "again (with a new config) or use fxfault.set_ber / fxfault.resample on this one"
        )
    for t in leaf_modules:
        if not isinstance(t, type) or not issubclass(t, nn.Module):
            raise TypeError(f"leaf_modules must hold nn.Module subclasses, got {t!r}")
    cfg = load_config(cfg, ber=ber, seed=seed)
    pass_ = _Pass(cfg, tuple(leaf_modules), check)
    return pass_.run(model)


class _Pass:
    def __init__(self, cfg: FaultConfig, leaf_types: tuple[type, ...], check: bool) -> None:
        self.cfg = cfg
        self.leaf_types = leaf_types
        self.check = check
        self.adapters = adapters()

    # ------------------------------------------------------------------ driver
    def run(self, model: nn.Module) -> fx.GraphModule:
        cfg = self.cfg
        shadow = shadow_copy(model)
        self.model_modules = list(shadow.modules())
        names = [n for n, _ in shadow.named_modules()]
        check_patterns("leaf_modules", cfg.leaf_modules, names + _class_names(shadow), kind="module")
        candidates = sorted({n for a in self.adapters for n in a.candidate_layers(shadow, cfg)})
        if isinstance(cfg.bits, Mapping):
            check_patterns("bits", cfg.bits, candidates or names, kind="quantizable layer")
        if isinstance(cfg.act_bits, Mapping):
            check_patterns("act_bits", cfg.act_bits, candidates or names, kind="quantizable layer")
        if isinstance(cfg.float_bits, Mapping):
            check_patterns("float_bits", cfg.float_bits, candidates or names, kind="quantizable layer")
        for a in self.adapters:
            a.prepare(shadow, cfg)
        through = [m for a in self.adapters for m in a.trace_through(shadow, cfg)]
        tracer = FaultTracer(
            leaves=[m for a in self.adapters for m in a.leaf_modules(shadow)],
            through=through,
            leaf_patterns=cfg.leaf_modules,
            leaf_types=self.leaf_types,
        )
        graph = graph_of(shadow, tracer, {id(m) for m in through})
        remove_dead_nodes(graph)
        root = shadow_copy(model)
        _carry_trace_constants(graph, shadow, root)
        gm = fx.GraphModule(root, graph, class_name=_class_name(model))
        for attr in ("_in_spec", "_out_spec"):  # pytree codegen of exported modules
            if hasattr(model, attr):
                setattr(gm, attr, getattr(model, attr))
        ctx = MatchContext(gm, gm.graph, cfg)
        matches = self._match(gm, ctx)
        matches = self._select(matches)
        plan = FaultPlan(cfg.seed, cfg.mode, cfg.seed_list, cfg.count)
        fixed = self._fixed_faults([m.layer for m in matches])
        gm.add_submodule(SITES_MODULE, nn.Module())
        inserted: list[tuple[SiteMatch, BitFlip, dict[str, fx.Node]]] = []
        for m in matches:
            site, nodes = self._insert(gm, m, plan, fixed.get(m.layer))
            inserted.append((m, site, nodes))
        if cfg.count is not None:
            plan.count_members = [
                (site.name, site.numel * len(site.targeted_planes())) for _, site, _ in inserted
            ]
            if cfg.count > plan.count_total_bits:
                raise ConfigError(
                    f"count={cfg.count} is larger than the {plan.count_total_bits} targeted bits "
                    "of the selected sites"
                )
        if self.check:
            for m, _, nodes in inserted:
                if m.domain == "float":
                    _verify(gm, m, nodes)
        # sites follow the model's mode (GraphModule itself copies root.training)
        gm.training = model.training
        getattr(gm, SITES_MODULE).train(model.training)
        remove_dead_nodes(gm.graph)
        annotate(gm.graph, gm)
        gm.graph.lint()
        gm.recompile()
        gm.meta["fxfault"] = {"config": cfg.to_dict(), "sites": [s.name for _, s, _ in inserted]}
        setattr(gm, "fxfault_plan", plan)  # noqa: B010  (plain attribute, pickled with gm)
        return gm

    # ------------------------------------------------------------------ matching
    def _match(self, gm: fx.GraphModule, ctx: MatchContext) -> list[SiteMatch]:
        matches: list[SiteMatch] = []
        for node in list(gm.graph.nodes):
            for a in self.adapters:
                m = a.match(node, ctx)
                if m is not None:
                    matches.append(m)
                    break
        _warn_unrecognised(gm, {id(m.node) for m in matches} | {id(m.weight) for m in matches})
        if not matches:
            looked = "\n  ".join(a.describe() for a in self.adapters)
            floats = [
                n.format_node()
                for n in gm.graph.nodes
                if n.op == "call_module"
                and isinstance(gm.get_submodule(str(n.target)), (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))
            ]
            hint = ""
            suspects = sorted(
                {
                    type(mod).__qualname__
                    for mod in self.model_modules
                    if "quant" in type(mod).__name__.lower()
                    and not type(mod).__module__.startswith(("torch.", "fxfault."))
                }
            )
            if suspects:
                hint += (
                    f"\nThese modules look like quantizers but no adapter recognised them: "
                    f"{', '.join(suspects)}. Register yours with fxfault.register_quantizer(...)."
                )
            if floats:
                hint += (
                    f"\nThe model has {len(floats)} plain float conv/linear layers; to study it "
                    "at a chosen width with fxfault's own weight quantizer, set "
                    "FaultConfig(float_bits=8)."
                )
            raise NoSitesError(
                "the model has no weight quantizer that fxfault can turn into a fault site. "
                f"fxfault looked for:\n  {looked}{hint}\nIf your quantizer is of another kind, "
                "register it with fxfault.register_quantizer(...)."
            )
        seen: dict[str, int] = {}
        for m in matches:
            n = seen.get(m.layer, 0)
            seen[m.layer] = n + 1
            if n:
                m.notes["name"] = f"{m.layer}#{n}"
        return matches

    def _select(self, matches: list[SiteMatch]) -> list[SiteMatch]:
        cfg = self.cfg
        names = [_site_name(m) for m in matches]
        kind = "fault site"
        if cfg.include is not None:
            check_patterns("include", cfg.include, names, kind=kind)
        check_patterns("exclude", cfg.exclude, names, kind=kind)
        for field_name in ("ber", "bit_rates", "fault", "encoding", "gradient"):
            value = getattr(cfg, field_name)
            if isinstance(value, Mapping) and not (
                field_name == "encoding" and all(isinstance(k, int) for k in value)
            ):
                check_patterns(field_name, value, names, kind=kind)
        keep = list(matches)
        if cfg.include is not None:
            keep = [m for m in keep if any(fnmatchcase(_site_name(m), p) for p in cfg.include)]
        keep = [m for m in keep if not any(fnmatchcase(_site_name(m), p) for p in cfg.exclude)]
        if cfg.skip_first_last and len(keep) >= 1:
            first, last = _site_name(matches[0]), _site_name(matches[-1])
            keep = [m for m in keep if _site_name(m) not in (first, last)]
        if cfg.only is not None:
            check_patterns("only", [cfg.only], names, kind=kind)
            hits = [m for m in keep if _site_name(m) == cfg.only or fnmatchcase(_site_name(m), cfg.only)]
            if len(hits) != 1:
                raise ConfigError(
                    f"only={cfg.only!r} must select exactly one site after include/exclude/"
                    f"skip_first_last, but it selects {[_site_name(m) for m in hits]}"
                )
            keep = hits
        if not keep:
            raise ConfigError(
                f"the layer selection (include={cfg.include}, exclude={list(cfg.exclude)}, "
                f"only={cfg.only}, skip_first_last={cfg.skip_first_last}) leaves no fault site; "
                f"the sites are {names}"
            )
        return keep

    def _fixed_faults(self, layers: list[str]) -> dict[str, list[tuple[int, int]]]:
        cfg = self.cfg
        if cfg.faults is None:
            return {}
        out: dict[str, list[tuple[int, int]]] = {layer: [] for layer in layers}
        names = list(out)
        for i, (site, idx, bit) in enumerate(cfg.faults):
            if site not in out:
                check_patterns(f"faults[{i}]", [site], names, kind="selected fault site")
                raise ConfigError(
                    f"faults[{i}] names {site!r}, which is not a selected site (sites: {names})"
                )
            out[site].append((idx, bit))
        return out

    # ------------------------------------------------------------------ insertion
    def _insert(
        self,
        gm: fx.GraphModule,
        m: SiteMatch,
        plan: FaultPlan,
        fixed: list[tuple[int, int]] | None,
    ) -> tuple[BitFlip, dict[str, fx.Node]]:
        cfg = self.cfg
        name = _site_name(m)
        stem = name.replace(".", "_").replace("#", "_") + "_weight"
        target = f"{SITES_MODULE}.{stem}"
        node_names = {
            "quantize": f"{stem}_quantize",
            "flip": f"{stem}_flip",
            "dequantize": f"{stem}_dequantize",
            "straight_through": f"{stem}_straight_through",
        }
        site = BitFlip(
            name=name,
            layer=m.layer,
            kind=m.adapter,
            bits=m.bits,
            qmin=m.qmin,
            qmax=m.qmax,
            shape=m.shape,
            plan=plan,
            ber=cfg.for_layer("ber", name),
            bit_rates=cfg.for_layer("bit_rates", name),
            fault=cfg.for_layer("fault", name),
            encoding=cfg.for_layer("encoding", name),
            gradient=cfg.for_layer("gradient", name),
            in_training=cfg.in_training,
            in_inference=cfg.in_inference,
            axis=m.axis,
            fixed_faults=fixed,
            count_member=cfg.count is not None,
            cache=cfg.cache,
            nodes=node_names if m.domain == "float" else {"flip": node_names["flip"]},
        )
        gm.add_submodule(target, site)
        graph = gm.graph
        if m.build_quantizer is not None:
            if m.consumer is None or m.weight is None:
                raise RuntimeError(f"adapter {m.adapter} builds a quantizer without weight/consumer")
            with graph.inserting_before(m.consumer):
                m.node = m.build_quantizer(graph)
            m.consumer.replace_input_with(m.weight, m.node)
        q = m.node
        if q is None:
            raise RuntimeError(f"adapter {m.adapter} returned a site without a node")
        nodes: dict[str, fx.Node] = {}
        if m.domain == "int":
            if m.consumer is None:
                raise RuntimeError(f"adapter {m.adapter} returned an int-domain site without a consumer")
            with graph.inserting_after(q):
                flip = graph.call_module(target, (q,))
            m.consumer.replace_input_with(q, flip)
            nodes["flip"] = flip
            return site, nodes
        if m.build_grid is None:
            raise RuntimeError(f"adapter {m.adapter} returned a float-domain site without a grid")
        with graph.inserting_before(q.next):
            scale, zp = m.build_grid(graph)
            dtype = codes_dtype(m.bits, m.signed)
            site_ref = graph.get_attr(target)
            codes = graph.call_function(
                ops.quantize,
                (q, scale, zp, m.qmin, m.qmax, dtype),
                {"source": _sources(gm, q), "site": site_ref},
            )
            flip = graph.call_module(target, (codes,))
            deq = graph.call_function(
                ops.dequantize, (flip, scale, zp, q, codes), {"site": site_ref, "in_place": True}
            )
            st = graph.call_function(
                ops.straight_through, (q, deq, site.gradient == "zero_faulted")
            )
        ours = {codes, flip, deq, st}
        q.replace_all_uses_with(st, delete_user_cb=lambda u: u not in ours)
        for role, n in (("quantize", codes), ("flip", flip), ("dequantize", deq), ("straight_through", st)):
            nodes[role] = n
        nodes["scale"] = scale
        if zp is not None:
            nodes["zero_point"] = zp
        return site, nodes


def _warn_unrecognised(gm: fx.GraphModule, matched: set[int]) -> None:
    """Warn about modules that look like weight quantizers but no adapter took."""
    for node in gm.graph.nodes:
        if node.op != "call_module" or id(node) in matched or not node.args:
            continue
        mod = gm.get_submodule(str(node.target))
        cls = type(mod)
        if cls.__module__.startswith(("torch.", "fxfault.")) or "quant" not in (
            cls.__name__ + str(node.target)
        ).lower():
            continue
        src = node.args[0]
        if isinstance(src, fx.Node) and src.op == "get_attr":
            value = gm
            for part in str(src.target).split("."):
                value = getattr(value, part)
            if isinstance(value, nn.Parameter):
                warnings.warn(
                    f"{node.format_node()} looks like a weight quantizer ({cls.__qualname__} on "
                    f"the parameter {src.target!r}) but no fxfault adapter recognised it, so it "
                    "gets no fault site; register it with fxfault.register_quantizer(...)",
                    stacklevel=4,
                )


def _site_name(m: SiteMatch) -> str:
    return str(m.notes.get("name", m.layer))


def _carry_trace_constants(graph: fx.Graph, traced: nn.Module, root: nn.Module) -> None:
    """Tracing stores tensor constants (``_tensor_constant0``) on the traced copy; give the
    clean copy the ones the graph reads."""
    for node in graph.nodes:
        if node.op != "get_attr":
            continue
        path, _, field = str(node.target).rpartition(".")
        try:
            dst = root.get_submodule(path) if path else root
            if hasattr(dst, field):
                continue
            src = traced.get_submodule(path) if path else traced
            value = getattr(src, field)
        except AttributeError:
            continue
        setattr(dst, field, value)


def _class_name(model: nn.Module) -> str:
    name = type(model).__name__
    return "GraphModule" if "<" in name or not name.isidentifier() else name


def _sources(gm: fx.GraphModule, q: fx.Node) -> list[fx.Node] | None:
    """The tensors the quantizer's output is a pure function of (for the eval cache), or None
    when it also depends on inputs or on a module call other than the quantizer itself."""
    out: list[fx.Node] = []
    seen: set[fx.Node] = set()
    stack = [a for a in q.all_input_nodes] if q.op == "call_module" else [q]
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        if n.op == "get_attr":
            obj: Any = gm
            for part in str(n.target).split("."):
                obj = getattr(obj, part)
            if isinstance(obj, torch.Tensor):
                out.append(n)
        elif n.op in ("call_function", "call_method"):
            stack.extend(n.all_input_nodes)
        else:
            return None
    return out


def _class_names(model: nn.Module) -> list[str]:
    return sorted({type(m).__name__ for m in model.modules()})


# --------------------------------------------------------------------------------------------
# grid verification
# --------------------------------------------------------------------------------------------
def _verify(gm: fx.GraphModule, m: SiteMatch, nodes: dict[str, fx.Node]) -> None:
    """Check on copies of the quantizer modules that the quantizer's output is on the grid."""
    if m.node is None:
        return
    want = [m.node, nodes["scale"]] + ([nodes["zero_point"]] if "zero_point" in nodes else [])
    values = _evaluate(gm, want)
    if values is None:
        return
    wq, scale = values[0], values[1]
    zp = values[2] if len(values) > 2 else None
    if not isinstance(wq, torch.Tensor) or not isinstance(scale, torch.Tensor):
        return
    name = _site_name(m)
    s64 = scale.detach().to(torch.float64)
    if (s64 <= 0).any() or not torch.isfinite(s64).all():
        raise QuantizerMismatchError(
            f"site {name!r}: the scale read by the {m.adapter} adapter is not a positive "
            f"finite number (min {s64.min().item():.3g})"
        )
    # in float64, a slab of output channels at a time (bounded temporary memory)
    w = wq.detach()
    shape = tuple(w.shape)
    sb = torch.broadcast_to(s64, shape) if s64.dim() else s64
    zb = None
    if zp is not None:
        z64 = zp.detach().to(torch.float64)
        zb = torch.broadcast_to(z64, shape) if z64.dim() else z64
    per = max(1, (1 << 20) // max(1, w[0].numel() if w.dim() else 1))
    off, lo, hi, peak = 0.0, float("inf"), float("-inf"), 0.0
    rows = shape[0] if w.dim() else 1
    for r0 in range(0, rows, per):
        sl = slice(r0, r0 + per)
        part = w[sl].to(torch.float64) if w.dim() else w.to(torch.float64)
        if not torch.isfinite(part).all():
            raise QuantizerMismatchError(f"site {name!r}: the quantized weight holds NaN or Inf")
        ratio = part / (sb[sl] if sb.dim() else sb)
        codes = torch.round(ratio)
        off = max(off, (ratio - codes).abs().max().item())
        peak = max(peak, ratio.abs().max().item())
        if zb is not None:
            codes = codes + (zb[sl] if zb.dim() else zb)
        lo, hi = min(lo, codes.min().item()), max(hi, codes.max().item())
    # a weight stored in a narrow float (bfloat16, float16) holds code * scale rounded to its
    # precision: up to |code| * unit roundoff steps off the grid
    unit = torch.finfo(w.dtype).eps / 2 if w.dtype.is_floating_point else 0.0
    tol = 1e-3 + 1.01 * peak * unit
    if tol >= 0.5:
        raise QuantizerMismatchError(
            f"site {name!r}: {w.dtype} weights cannot hold the {m.bits}-bit codes of this layer "
            f"exactly (codes up to {peak:.0f} steps, rounded to {unit:.2g} relative precision, "
            "can land nearer another code); run fault injection on the model in float32 "
            "(model.float()), or give this layer fewer bits"
        )
    if off > tol or lo < m.qmin or hi > m.qmax:
        raise QuantizerMismatchError(
            f"site {name!r}: the output of the {m.adapter} weight quantizer is not on the grid "
            f"its adapter reads (scale from {nodes['scale'].format_node()}, codes "
            f"[{m.qmin}, {m.qmax}]): off-grid by up to {off:.3g} steps, codes span "
            f"[{lo:g}, {hi:g}]. The adapter reads the wrong scale or range for this "
            "quantizer; register a dedicated one with fxfault.register_quantizer(...)"
        )


def _evaluate(gm: fx.GraphModule, want: list[fx.Node]) -> list[Any] | None:
    """Evaluate ``want`` with copies of the modules involved; None if inputs are needed."""
    needed: set[fx.Node] = set()
    stack = list(want)
    while stack:
        n = stack.pop()
        if n in needed:
            continue
        if n.op == "placeholder":
            return None
        needed.add(n)
        stack.extend(n.all_input_nodes)
    copies: dict[str, Any] = {}

    def module_copy(target: str) -> Any:
        if target not in copies:
            copies[target] = copy.deepcopy(gm.get_submodule(target))
        return copies[target]

    env: dict[fx.Node, Any] = {}
    with torch.no_grad():
        for n in gm.graph.nodes:
            if n not in needed:
                continue
            args = fx.node.map_arg(n.args, lambda a: env[a])
            kwargs = fx.node.map_arg(n.kwargs, lambda a: env[a])
            if n.op == "get_attr":
                target = str(n.target)
                # read through a module copy when one exists (the copy may have updated its
                # own buffers while it ran, like a torch.ao observer does)
                owner, _, field = target.rpartition(".")
                if owner in copies:
                    env[n] = getattr(copies[owner], field)
                    continue
                obj: Any = gm
                for part in target.split("."):
                    obj = getattr(obj, part)
                env[n] = module_copy(target) if isinstance(obj, nn.Module) else obj
            elif n.op == "call_module":
                env[n] = module_copy(str(n.target))(*args, **kwargs)
            elif n.op == "call_function":
                env[n] = n.target(*args, **kwargs)  # type: ignore[operator]
            elif n.op == "call_method":
                self_obj, *rest = args
                env[n] = getattr(self_obj, str(n.target))(*rest, **kwargs)
    return [env[n] for n in want]
