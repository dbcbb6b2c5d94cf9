"""The conversion plan: what changes in which layer, and why.

`make_plan` looks at each phase's graph, chooses the strides to remove, and
asks one rule per layer kind (rules.py) what to do:

    Convolution    stride removed; dilation and pad scaled (dilate.py)
    Pooling        stride removed (2x2/2 -> 3x3/1 in the seed convention);
                   a pooling that covered the whole map becomes global
    InnerProduct   refused when its input would grow (weights would not fit)
    RoI pooling    spatial_scale, Python feat_stride, PriorBox step: rescaled
    Eltwise/Concat refused when inputs arrive with different factors (joins.py)
    Deconvolution, Interp, Crop over a denser blob: named in a warning

then applies multi-grid rates, sizes the result (joins.py) and records what
is not exact (exactness.py). The plan is plain data; `LayerChange.edit()`
turns a change into the formats-level LayerEdit written into a copy of the net.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from fractions import Fraction

from ..analysis import strides as st
from ..analysis.shapes import infer_shapes
from ..errors import AtrousError, ConversionWarning, UsageError
from ..formats.netspec import LayerEdit, LayerSpec
from ..graph import Graph
from ..window import Window
from . import joins, rules
from .dilate import EXACT, SEED
from .exactness import inexact_reason
from .multigrid import apply_grid, grid_rates


@dataclass
class Options:
    output_stride: int | None = 8
    from_layer: str | None = None
    mode: str = SEED
    input_shape: tuple[int, ...] | None = None
    multi_grid: tuple[int, ...] | None = None


@dataclass
class LayerChange:
    layer: LayerSpec
    before: Window | None = None
    after: Window | None = None
    make_global: bool = False
    clear_engine: bool = False
    spatial_scale: tuple[float, float] | None = None
    param_str: tuple[str, str] | None = None
    prior_step: dict[str, tuple[float, float]] | None = None
    reasons: list[str] = field(default_factory=list)

    def edit(self) -> LayerEdit:
        return LayerEdit(
            index=self.layer.index,
            window=self.after if self.after != self.before else None,
            global_pooling=self.make_global,
            clear_engine=self.clear_engine,
            spatial_scale=self.spatial_scale[1] if self.spatial_scale else None,
            param_str=self.param_str[1] if self.param_str else None,
            prior_step={k: v[1] for k, v in self.prior_step.items()} if self.prior_step else None,
        )

    def key(self) -> tuple:
        """What the change does, for comparing the same layer across phases."""
        return (self.after, self.make_global, self.clear_engine, self.spatial_scale,
                self.param_str, None if self.prior_step is None else sorted(self.prior_step.items()))


@dataclass
class Plan:
    changes: dict[int, LayerChange]
    warnings: list[ConversionWarning]
    inexact: list[ConversionWarning]        # why the new network is not function-preserving
    stride_before: Fraction
    stride_after: Fraction

    def ordered(self) -> list[LayerChange]:
        return [self.changes[i] for i in sorted(self.changes)]


@dataclass
class _PhasePlan:
    changes: dict[int, LayerChange]
    warnings: list[ConversionWarning]
    inexact: list[ConversionWarning]
    stride_before: Fraction
    stride_after: Fraction


def _facts(g: Graph, opts: Options) -> rules.Facts:
    """Strides before and after the removals, original shapes, heads made global."""
    if opts.from_layer is not None:
        start = g.layer(opts.from_layer)
        removals = st.removals_from_layer(g, start.index) if start else {}
    else:
        removals = st.removals_for_output_stride(g, opts.output_stride)
    s0 = st.cumulative_strides(g)
    facts = rules.Facts(g, opts.mode, s0, st.cumulative_strides(g, removals), removals,
                        infer_shapes(g, input_shape=opts.input_shape))
    facts.made_global = {l.index for l in g.layers if rules.covers_whole_map(facts, l)}
    if facts.made_global:
        facts.s1 = st.cumulative_strides(g, removals, facts.made_global)
    return facts


def _decide(facts: rules.Facts, layer: LayerSpec) -> rules.Decision | None:
    factors = [facts.factor(b) for b in facts.graph.bottoms(layer)]
    if rules.is_proposal(layer):
        return rules.feat_stride(facts, layer, factors)
    if layer.type in ("Eltwise", "Concat"):
        joins.check_factors(facts, layer)
    rule = rules.rule_for(layer)
    if rule is None or not factors or factors[0] is None:
        return None
    return rule(facts, layer, factors[0], facts.removals.get(layer.index, (1, 1)))


def _record(layer: LayerSpec, d: rules.Decision) -> LayerChange:
    change = LayerChange(layer, before=layer.window, after=d.after or layer.window)
    for f in fields(LayerChange):
        if f.name not in ("layer", "before", "after") and hasattr(d, f.name):
            setattr(change, f.name, getattr(d, f.name))
    return change


def _plan_phase(g: Graph, opts: Options) -> _PhasePlan:
    facts = _facts(g, opts)
    changes: dict[int, LayerChange] = {}
    warnings: list[ConversionWarning] = []
    undilated: set[int] = set()
    for layer in g.layers:
        d = _decide(facts, layer)
        if d is None:
            continue
        warnings += [ConversionWarning(layer.name, w) for w in d.warnings]
        if d.undilated_pool:
            undilated.add(layer.index)
        if d.changes:
            changes[layer.index] = _record(layer, d)
    if opts.multi_grid:
        _multi_grid(facts, changes, opts.multi_grid)
    windows = {i: c.after for i, c in changes.items()}
    joins.check_sizes(g, windows, facts.made_global, undilated, opts.input_shape)
    inexact = []
    for layer in g.layers:
        bottoms = g.bottoms(layer)
        why = inexact_reason(layer, windows.get(layer.index, layer.window),
                             layer.index in facts.made_global,
                             facts.factor(bottoms[0]) if bottoms else None)
        if why:
            inexact.append(ConversionWarning(layer.name, why))
    return _PhasePlan(changes, warnings, inexact, st.output_stride(facts.s0),
                      st.output_stride(facts.s1))


def _multi_grid(facts: rules.Facts, changes: dict[int, LayerChange], grid) -> None:
    """DeepLab v3: unit i of the last stage gets its rate times grid[i]."""
    g = facts.graph

    def first(blobs):
        return facts.factor(blobs[0]) if blobs else None

    rates = grid_rates(g, lambda l: first(g.bottoms(l)), lambda l: first(g.tops(l)), grid)
    for layer in g.layers:
        if layer.index in rates:
            c = changes.setdefault(layer.index, LayerChange(layer, layer.window, layer.window))
            c.after = apply_grid(c.after, rates[layer.index])
            c.reasons.append(f"multi-grid: rate x{rates[layer.index]}")


def _check_options(graphs: list[Graph], opts: Options) -> None:
    if opts.mode not in (EXACT, SEED):
        raise UsageError(f"unknown mode {opts.mode!r}")
    if opts.from_layer is not None:
        if not any(g.layer(opts.from_layer) for g in graphs):
            raise UsageError(f"--from {opts.from_layer}: no layer has that name")
    elif opts.output_stride is None or opts.output_stride < 1:
        raise UsageError("--output-stride must be a positive whole number")


def _merge(plans: list[_PhasePlan], graphs: list[Graph]) -> Plan:
    """One plan for all phases; a layer shared by two phases must change the same way."""
    out = Plan({}, [], [], Fraction(1), Fraction(1))
    for g, p in zip(graphs, plans):
        for i, c in p.changes.items():
            if i in out.changes and out.changes[i].key() != c.key():
                raise AtrousError("the TRAIN and TEST phases need different changes here; convert "
                                  "each phase's file separately", file=g.path, line=c.layer.line,
                                  layer=c.layer.name)
            out.changes.setdefault(i, c)
        out.warnings += [w for w in p.warnings if w not in out.warnings]
        out.inexact += [w for w in p.inexact if w not in out.inexact]
        out.stride_before = max(out.stride_before, p.stride_before)
        out.stride_after = max(out.stride_after, p.stride_after)
    return out


def make_plan(graphs: list[Graph], opts: Options) -> Plan:
    """Decide every change, for every phase; the phases must agree on shared layers."""
    _check_options(graphs, opts)
    plans = []
    for g in graphs:
        p = _plan_phase(g, opts)
        if opts.from_layer is None and p.stride_after != opts.output_stride:
            reach = st.reachable_output_strides(g)
            raise AtrousError(
                f"output stride {opts.output_stride} is not reachable for this network; reachable: "
                f"{', '.join(map(str, reach))}", file=g.path)
        plans.append(p)
    return _merge(plans, graphs)
