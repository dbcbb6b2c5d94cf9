"""One phase's decisions: the strides to remove, then one rule per layer.

    ctx      strides before and after, original shapes, heads made global
    decide   per layer: the proposal/join checks, then the rule of its kind
             (rules.py, heads.py for classifiers, regrid.py for pyramid
             poolings, resizes and unknown types)
    then     multi-grid rates, "same" padding where branches no longer meet,
             "same" padding everywhere with --align (align.py), resizes that
             follow a grid that grew, the size check, and what is not exact
             (exactness.py)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from ..analysis.grids import Number

from ..analysis import grids
from ..analysis import coarsen
from ..analysis import strides as st
from ..analysis.shapes import infer_shapes
from ..core.errors import ConversionWarning
from ..graph.records import LayerSpec
from ..graph.graph import Graph
from . import align, joins, regrid, rules
from .changes import LayerChange, Options
from .dilate import EXACT, SEED
from .exactness import inexact_reason
from .multigrid import apply_grid, grid_rates


class PhasePlan(NamedTuple):
    """The plan of one phase: the changes by layer index, the warnings, what is not exact,
    the output strides before and after, and the strides of the network's outputs (`final`)."""

    changes: dict[int, LayerChange]
    warnings: list[ConversionWarning]
    inexact: list[ConversionWarning]
    stride_before: Number
    stride_after: Number
    final: dict[str, Number]
    notes: list[str]


def _context(g: Graph, opts: Options) -> tuple[rules.RuleContext, Number, Number]:
    """Strides before and after the removals, original shapes, heads made global;
    and the output strides before and after."""
    s0, before = st.strides_and_output_stride(g)
    notes: list[str] = []
    if opts.from_layer is not None:
        start = g.layer(opts.from_layer)
        removals = st.removals_from_layer(g, start.index) if start else {}
    elif opts.output_stride > before:
        removals = coarsen.additions_for_output_stride(g, opts.output_stride)
        if opts.mode == EXACT:
            notes += _move_to_cheapest(g, removals)
    else:
        removals = st.removals_for_output_stride(g, opts.output_stride)
    s1, after = st.strides_and_output_stride(g, removals)
    zooms = regrid.zooms_that_follow(g, s0, s1)
    if zooms:
        removals = {**removals, **zooms}
        s1, after = st.strides_and_output_stride(g, removals)
    ctx = rules.RuleContext(g, opts.mode, s0, s1, removals,
                        infer_shapes(g, input_shape=opts.input_shape),
                        fc_to_conv=opts.fc_to_conv, decimate=opts.decimate,
                        weights_follow=opts.weights_follow)
    bins = grids.geometry(g).bins          # a pyramid pooling keeps its bins instead
    ctx.made_global = {l.index for l in g.layers if l.index not in bins
                       and rules.covers_whole_map(ctx, l)}
    if ctx.made_global:
        ctx.s1, after = st.strides_and_output_stride(g, removals, ctx.made_global)
    ctx.notes = notes
    ctx.levels = _head_levels(g)
    return ctx, before, after


def _head_levels(g: Graph) -> dict:
    """The dilation level (analysis/coarsen.py) of every blob at or after the join that
    gathers a pyramid pooling's branches: the head there is defined on the dense map."""
    geo = grids.geometry(g)
    back = {t for l in g.layers if l.index in geo.anchors and g.bottoms(l)[0] in geo.branch
            for t in g.tops(l)}                   # the branches resized back onto the map
    if not back:
        return {}
    levels, after = coarsen.levels(g)[0], set()
    for layer in g.layers:
        if any(b in after or b in back for b in g.bottoms(layer)):
            after.update(g.tops(layer))
    return {b: levels.get(b, 1) for b in after}


def _move_to_cheapest(g: Graph, removals: dict) -> list[str]:
    """--exact, coarser: each stride put back goes to the convolution above its rise
    where that stays exact (coarsen.cheapest_exact); what was chosen and why."""
    notes = []
    for rise, above in coarsen.cheapest_exact(g, removals).items():
        removals[above] = removals.pop(rise)
        notes.append(f"--exact: the stride goes back on '{_layer(g, above).name}', the "
                     f"convolution before '{_layer(g, rise).name}' (where the dilation rises): "
                     "a strided convolution computes its dense output at every sampled position, "
                     "and everything after it runs on the coarser map")
    return notes


def _rule_for(ctx: rules.RuleContext, layer: LayerSpec):
    geo = grids.geometry(ctx.graph)
    if layer.index in geo.bins:
        return regrid.bin_pooling
    if layer.index in geo.anchors:
        return regrid.anchored
    if layer.upsample is not None:
        return regrid.upsample
    if layer.index in ctx.removals and layer.resize is not None:
        return regrid.zoom
    return rules.rule_for(layer)


def _decide(ctx: rules.RuleContext, layer: LayerSpec, opts: Options) -> rules.Decision | None:
    factors = [ctx.factor(b) for b in ctx.graph.bottoms(layer)]
    if rules.is_proposal(layer):
        return rules.feat_stride(ctx, layer, factors)
    if layer.type in ("Eltwise", "Concat"):
        joins.check_factors(ctx, layer)
    reach = ctx.heads.get(ctx.graph.bottoms(layer)[0]) if factors else None
    if reach is not None:
        return rules.after_head(ctx, layer, reach)
    unknown = regrid.unknown_type(ctx, layer, frozenset(opts.assume_same_grid))
    if unknown is not None:
        return unknown
    rule = _rule_for(ctx, layer)
    if rule is None or not factors or factors[0] is None:
        return None
    return rule(ctx, layer, factors[0], ctx.removals.get(layer.index, (1, 1)))


def _record(layer: LayerSpec, d: rules.Decision) -> LayerChange:
    change = d.placed(layer)
    change.after = d.head.window if d.head else (d.after or layer.window)
    return change


def _decide_all(ctx: rules.RuleContext, opts: Options):
    """Every layer's decision: the changes, the warnings, the undilated poolings."""
    g = ctx.graph
    changes: dict[int, LayerChange] = {}
    warnings: list[ConversionWarning] = []
    undilated: set[int] = set()
    for layer in g.layers:
        d = _decide(ctx, layer, opts)
        if d is None:
            continue
        warnings += [ConversionWarning(layer.name, w) for w in d.warnings]
        if d.undilated_pool:
            undilated.add(layer.index)
        if d.head_out is not None:
            ctx.heads.update((t, d.head_out) for t in g.tops(layer))
        if d.changes:
            changes[layer.index] = _record(layer, d)
    return changes, warnings, undilated


def plan_phase(g: Graph, opts: Options) -> PhasePlan:
    """Plan the phase `g` with `opts`: decide every layer, then the multi-grid rates, the
    re-padding of branches, the resizes that follow a grid, the size check and what is not
    exact. Raises an AtrousError naming the layer where a rule or the size check refuses."""
    ctx, before, after = _context(g, opts)
    changes, warnings, undilated = _decide_all(ctx, opts)
    if opts.multi_grid:
        _multi_grid(ctx, changes, opts.multi_grid)
    windows = {i: c.after for i, c in changes.items()}
    fits = False                # the converted graph was sized without a clash
    if opts.mode == SEED:
        repadded, fits = _repad(ctx, changes, windows, opts.input_shape)
        warnings += repadded
    rounded: list[int] = []
    if opts.align:
        aligned, rounded = _align(ctx, changes, windows)
        warnings, fits = warnings + aligned, fits and not aligned
    sizing, follow = regrid.sizing_graph(ctx)
    sizing = align.rounded_down(sizing, rounded)
    bins = any(i in windows for i in grids.geometry(g).bins)
    if follow or bins or not fits:      # else the re-padding sized this very graph already
        shapes = joins.check_sizes(sizing, windows, ctx.made_global, undilated, opts.input_shape)
        if opts.align:
            align.check_classifiers(ctx, changes, sizing, shapes)
        if follow or bins:
            sizes, rebinned = regrid.follow_sizes(ctx, sizing, follow, shapes, windows)
            _follow_sizes(ctx, changes, sizes)
            for i, w in rebinned.items():
                windows[i] = changes[i].after = w
    inexact = []
    for layer in g.layers:
        bottoms = g.bottoms(layer)
        why = inexact_reason(layer, windows.get(layer.index, layer.window),
                             layer.index in ctx.made_global,
                             ctx.factor(bottoms[0]) if bottoms else None)
        if why:
            inexact.append(ConversionWarning(layer.name, why))
    return PhasePlan(changes, warnings, inexact, before, after, st.final_strides(g, ctx.s1),
                     ctx.notes)


def _follow_sizes(ctx: rules.RuleContext, changes: dict[int, LayerChange], sizes: dict) -> None:
    """Fixed-size resizes that return onto a grid that grew follow it (regrid.py)."""
    g = ctx.graph
    for i, (old, new) in sizes.items():
        if old != new:
            c = changes.setdefault(i, LayerChange(layer=_layer(g, i)))
            c.resize_to = (old, new)
            c.reasons.append(f"size {old[0]}x{old[1]} -> {new[0]}x{new[1]}: it resizes back onto "
                             f"'{grids.geometry(g).anchors[i].name}', whose size changed")


def _repad(ctx: rules.RuleContext, changes: dict[int, LayerChange], windows: dict,
           input_shape) -> tuple[list[ConversionWarning], bool]:
    """Branches whose sizes no longer meet at a join get "same" padding (joins.py);
    the warnings, and whether the graph now sizes without a clash."""
    g, out = ctx.graph, []
    done, fits = joins.repad_branches(g, windows, ctx.removals, ctx.made_global, input_shape)
    for join, repadded in done:
        for index, window in repadded.items():
            layer = _layer(g, index)
            c = changes.setdefault(index, _unchanged(layer))
            c.after = window
            c.reasons.append(f"'same' padding so the branches of '{join}' meet")
        names = joins.names([_layer(g, i).name for i in repadded])
        out.append(ConversionWarning(join, f"its branches no longer met after conversion: "
                                     f"{names} re-padded to 'same' (as published Inception "
                                     "backbones do; not exact)"))
    return out, fits


def _align(ctx: rules.RuleContext, changes: dict[int, LayerChange],
           windows: dict) -> tuple[list[ConversionWarning], list[int]]:
    """--align (align.py) on the decided windows: the warnings, the poolings that
    now round down."""
    g = ctx.graph
    done = align.align_phase(g, windows, ctx.made_global | set(grids.geometry(g).bins),
                             ctx.shapes0)
    return align.record(g, changes, windows, done), done.round_down


def _unchanged(layer: LayerSpec) -> LayerChange:
    """A change to fill in: the layer with its window as it is."""
    return LayerChange(layer=layer, before=layer.window, after=layer.window)


def _layer(g: Graph, index: int) -> LayerSpec:
    return next(l for l in g.layers if l.index == index)


def _multi_grid(ctx: rules.RuleContext, changes: dict[int, LayerChange], grid) -> None:
    """DeepLab v3: unit i of the last stage gets its rate times grid[i]."""
    g = ctx.graph

    def first(blobs):
        return ctx.factor(blobs[0]) if blobs else None

    rates = grid_rates(g, lambda l: first(g.bottoms(l)), lambda l: first(g.tops(l)), grid)
    for layer in g.layers:
        if layer.index in rates:
            c = changes.setdefault(layer.index, _unchanged(layer))
            c.after = apply_grid(c.after, rates[layer.index])
            c.reasons.append(f"multi-grid: rate x{rates[layer.index]}")
