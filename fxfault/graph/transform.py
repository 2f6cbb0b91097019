"""The pass: capture the graph, match quantizers, insert the fault chains, verify, recompile.

Example::

    >>> import fxfault
    >>> from fxfault.testing import lsq_small_cnn
    >>> model = lsq_small_cnn()
    >>> faulty = fxfault.transform(model, ber=1e-3, seed=0)
    >>> [s.name for s in fxfault.sites(faulty)]
    ['conv1', 'conv2', 'fc']
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import fx, nn

from ..config import FaultConfig, load_config
from ..errors import ConfigError
from ..faults.plan import FaultPlan
from ..faults.site import BitFlip
from ..quantizers import MatchContext, SiteMatch, adapters
from .capture import capture
from .chains import SITES_MODULE, annotate, insert_chain, insert_plan, node_names, rewire_shared
from .diagnose import no_sites_error, warn_unrecognised
from .selection import Planned, fixed_faults, group_by_tensor, select
from .tracer import remove_dead_nodes
from .verify import verify_grid

__all__ = ["SITES_MODULE", "FaultPass", "transform"]


def transform(
    model: nn.Module,
    cfg: FaultConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    *,
    ber: float | str | None = None,
    seed: int | None = None,
    leaf_modules: Sequence[type] = (),
    check: bool = True,
    example_inputs: Any = None,
    strict: bool = False,
) -> fx.GraphModule:
    """Return a standalone copy of ``model`` with bit-flip faults after each weight quantizer.

    The graph starts with ``fxfault_pass`` (the pass clock) and, after every weight quantizer,
    holds ``<layer>_weight_quantize`` (quantized weight to integer codes),
    ``<layer>_weight_flip`` (a :class:`~fxfault.faults.BitFlip` site),
    ``<layer>_weight_dequantize`` (codes to float) and ``<layer>_weight_straight_through``
    (forward: the faulted weight; backward: the gradient of the clean quantized weight).

    :param model: the quantized model. It is never modified, called or written to.
    :param cfg: a :class:`FaultConfig`, a mapping of its fields, or a path to a JSON config.
    :param ber: overrides ``cfg.ber`` (numbers or numeric strings such as ``"1e-6"``).
    :param seed: overrides ``cfg.seed``.
    :param leaf_modules: module types to keep whole when tracing (also ``cfg.leaf_modules``).
    :param check: verify that each quantizer's output lies on the grid its adapter reads.
    :param example_inputs: inputs of one forward pass (a tensor or a tuple): they calibrate
        fxfault's own activation quantizer (``float_act_bits``), and let models that torch.fx
        cannot trace go through ``torch.export`` instead.
    :param strict: raise :class:`~fxfault.errors.CoverageError` instead of warning when a
        weight that a layer reads gets no site.
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
    if not isinstance(check, bool):
        raise TypeError(f"check must be True or False, got {check!r}")
    if not isinstance(strict, bool):
        raise TypeError(f"strict must be True or False, got {strict!r}")
    inputs = _as_inputs(example_inputs)
    return FaultPass(load_config(cfg, ber=ber, seed=seed), tuple(leaf_modules), check, inputs, strict).apply(model)


def _as_inputs(example_inputs: Any) -> tuple[Any, ...] | None:
    if example_inputs is None:
        return None
    if isinstance(example_inputs, torch.Tensor):
        return (example_inputs,)
    if isinstance(example_inputs, (tuple, list)):
        return tuple(example_inputs)
    raise TypeError(
        "example_inputs must be a tensor or a tuple of the forward's positional inputs, got "
        f"{type(example_inputs).__name__}"
    )


class FaultPass:
    """The transform as an object: settings in ``__init__``, the work in :meth:`apply`."""

    def __init__(self, cfg: FaultConfig, leaf_types: tuple[type, ...] = (), check: bool = True,
                 example_inputs: tuple[Any, ...] | None = None, strict: bool = False) -> None:
        self.cfg = cfg
        self.leaf_types = leaf_types
        self.check = check
        self.example_inputs = example_inputs
        self.strict = strict

    def apply(self, model: nn.Module) -> fx.GraphModule:
        cfg = self.cfg
        found = adapters()
        gm = capture(model, cfg, found, self.leaf_types)
        ctx = MatchContext(gm, gm.graph, cfg, self.example_inputs)
        matches = self._match(gm, model, ctx, found)
        chosen = select(cfg, group_by_tensor(matches, ctx))
        plan = FaultPlan(cfg.seed, cfg.mode, cfg.seed_list, cfg.count)
        pass_node = insert_plan(gm, plan)
        fixed = fixed_faults(cfg, [p.name for p in chosen])
        gm.add_submodule(SITES_MODULE, nn.Module())
        inserted: list[tuple[Planned, BitFlip, dict[str, fx.Node]]] = []
        for p in chosen:
            site = self._site(p, plan, fixed.get(p.name))
            target = f"{SITES_MODULE}.{node_names(site)['flip'][: -len('_flip')]}"
            gm.add_submodule(target, site)
            nodes = insert_chain(gm, p.first, site, target, pass_node)
            for other in p.others:
                rewire_shared(other, p.first, nodes)
            inserted.append((p, site, nodes))
        if cfg.count is not None:
            plan.count_members = [(s.name, s.numel * len(s.targeted_planes())) for _, s, _ in inserted]
            if cfg.count > plan.count_total_bits:
                raise ConfigError(
                    f"count={cfg.count} is larger than the {plan.count_total_bits} targeted bits "
                    "of the selected sites"
                )
        if self.check:
            for _, site, nodes in inserted:
                if "quantize" in nodes and "scale" in nodes:
                    q = nodes["quantize"].args[0]
                    verify_grid(gm, site.name, site.quantizer, site.qmin, site.qmax, site.bits,
                                q, nodes["scale"], nodes.get("zero_point"))  # type: ignore[arg-type]
        # sites follow the model's mode (GraphModule itself copies root.training)
        gm.train(model.training)
        remove_dead_nodes(gm.graph)
        annotate(gm.graph, gm)
        gm.graph.lint()
        gm.recompile()
        gm.meta["fxfault"] = {
            "config": cfg.to_dict(),
            "sites": [s.name for _, s, _ in inserted],
            "options": {"check": self.check, "strict": self.strict,
                        "leaf_modules": [f"{t.__module__}.{t.__qualname__}" for t in self.leaf_types]},
        }
        return gm

    def _match(self, gm: fx.GraphModule, model: nn.Module, ctx: MatchContext, found: list[Any]) -> list[SiteMatch]:
        matches: list[SiteMatch] = []
        for node in list(gm.graph.nodes):
            for a in found:
                m = a.match(node, ctx)
                if m is not None:
                    matches.append(m)
                    break
        warn_unrecognised(gm, {id(m.node) for m in matches} | {id(m.weight) for m in matches})
        if not matches:
            raise no_sites_error(gm, model, found)
        return matches

    def _encoding(self, m: SiteMatch, name: str) -> Any:
        """The config's encoding, or the one the stored bits have (a float site's format)."""
        asked = self.cfg.for_layer("encoding", name)
        if m.encoding is None:
            return asked
        if asked != "offset":
            raise ConfigError(
                f"site {name!r} stores {m.encoding.name} floats, whose bits are laid out by the "
                f"format itself; encoding={asked!r} does not apply to it (leave encoding out for it)"
            )
        return m.encoding

    def _site(self, p: Planned, plan: FaultPlan, fixed: list[tuple[int, int]] | None) -> BitFlip:
        cfg, m, name = self.cfg, p.first, p.name
        act = m.tensor == "activation"
        unit = cfg.for_layer("fault_unit", name)
        if unit == "value" and cfg.for_layer("bit_rates", name) is not None:
            raise ConfigError(
                f"site {name!r}: bit_rates set rates per bit position, which value-level faults "
                "(fault_unit='value') do not have; give pattern= for what a hit does instead"
            )
        site = BitFlip(
            name=name,
            layer=m.layer,
            quantizer=m.quantizer,
            tensor=m.tensor,
            bits=m.bits,
            qmin=m.qmin,
            qmax=m.qmax,
            shape=m.shape,
            plan=plan,
            ber=cfg.for_layer("act_ber" if act and cfg.act_ber is not None else "ber", name),
            bit_rates=cfg.for_layer("bit_rates", name),
            fault=cfg.for_layer("fault", name),
            encoding=self._encoding(m, name),
            gradient=cfg.for_layer("act_gradient" if act else "gradient", name),
            unit=unit,
            fraction=cfg.for_layer("value_fraction", name),
            pattern=cfg.for_layer("pattern", name),
            in_training=cfg.in_training,
            in_inference=cfg.in_inference,
            axis=m.axis,
            fixed=fixed,
            count_member=cfg.count is not None,
            cache=cfg.cache,
        )
        names = node_names(site)
        site.nodes = names if m.domain == "float" else {"flip": names["flip"]}
        return site
