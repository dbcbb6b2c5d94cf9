"""Resamplers, pyramid poolings and unknown layer types (the grids of analysis/grids.py).

    pyramid pooling 60x60/60 over a x2 denser map  ->  120x120/120: keeps its 1 bin
    Interp height/width 60 = the size of 'conv5_3' ->  the new size of 'conv5_3'
    Interp with two bottoms                         ->  unchanged: it follows at run time
    Upsample (scale) over a denser blob             ->  unchanged, warning (like Deconvolution)
    a type caffe_atrous does not know, where the conversion changes the stride around it
                                                    ->  warning; an error with --exact
                                                        unless --assume-same-grid TYPE

`follow_sizes` runs once the windows are decided: it sizes the converted network,
gives the anchored resamplers their anchor's new size and checks that every
pyramid pooling kept its number of bins.
"""

from __future__ import annotations

import math

from ..analysis import grids
from ..analysis.shapes import fmt_shape
from ..analysis.strides import removed_factor
from ..core.errors import AtrousError
from ..graph.records import Resize
from ..graph.records import LayerSpec
from ..graph.graph import Graph
from ..core.window import Pair, Window, fmt_density, fmt_pair, pool_out
from .dilate import EXACT
from .rules import Decision, RuleContext


def bin_pooling(ctx: RuleContext, layer: LayerSpec, m: Pair, r: Pair) -> Decision:
    """A pyramid pooling over a map m times denser keeps its number of bins: a
    kernel (= stride) of ceil(size / bins) on the denser map, whose size is
    (size - 1) * m + 1 with Caffe's rounding at aligned inputs. Without sizes,
    kernel, stride and pad are scaled by m.

        conv5_3_pool1 AVE 60/60 (1 bin) over conv5_3 60x60 -> 119x119  ->  119/119
        conv5_3_pool6 AVE 10/10 (6 bins)                                ->  20/20
        conv5_3_pool6 AVE 10/10 over a x2 coarser map (30x30)            ->  5/5
    """
    if m == (1, 1):
        return Decision()
    w, x = layer.window, ctx.graph.bottoms(layer)[0]
    shape = ctx.shapes0.get(x)
    if shape is None or len(shape) != 4 or None in shape[2:] or w.kernel != w.stride \
            or w.pad != (0, 0):
        scaled = [tuple(v * f for v, f in zip(pair, m)) for pair in (w.kernel, w.stride, w.pad)]
        if any(v != int(v) for pair in scaled for v in pair) or min(scaled[0]) < 1:
            raise ctx.fail(layer, f"pyramid pooling over '{x.name}', now {fmt_density(m)}: its "
                           f"kernel {fmt_pair(w.kernel)}, stride and pad do not scale to whole "
                           "numbers; give --input-shape so that its bins can be sized")
        k, s, p = (tuple(int(v) for v in pair) for pair in scaled)
        new = Window(kernel=k, stride=s, pad=p, dilation=w.dilation)
    else:
        bins = tuple(pool_out(shape[2 + a], w, a, layer.pool.ceil_mode) for a in (0, 1))
        size = tuple(math.floor((shape[2 + a] - 1) * m[a]) + 1 for a in (0, 1))
        kernel = tuple(-(-size[a] // bins[a]) for a in (0, 1))
        new = Window(kernel=kernel, stride=kernel)
    return Decision(after=new, reasons=[f"pyramid pooling over '{x.name}', now {fmt_density(m)}: "
                                        f"{new.describe()} keeps its bins"])


def zooms_that_follow(g: Graph, s0: dict, s1: dict) -> dict[int, Pair]:
    """Interps that resize by a factor (zoom_factor, shrink_factor) to the image (or
    finer), not onto another blob's grid, and read a blob the conversion made denser
    or coarser: their factors follow, so that a final resize to the image stays one. Layer index -> 1/m, read by strides.py as the factor by which
    the output's stride is divided (m: the factor of the input; see `zoom`)."""
    geo, out = grids.geometry(g), {}
    for layer in g.layers:
        p = layer.resize
        if p is None or p.fixed or layer.index in geo.anchors or len(layer.bottoms) != 1:
            continue
        x, y = g.bottoms(layer)[0], g.tops(layer)[0]
        if s0.get(y) is None or max(s0[y]) > 1:
            continue                  # not a resize to the image: it follows its input's grid
        m = removed_factor(s0.get(x), s1.get(x))
        if m is None or m == (1, 1) or m[0] != m[1] or _zoom(p, m[0]) is None:
            continue
        from fractions import Fraction      # only networks whose grid changes get here
        out[layer.index] = (1 / Fraction(m[0]), 1 / Fraction(m[1]))
    return out


def _zoom(p: Resize, m) -> Pair | None:
    """(zoom_factor, shrink_factor) that resize a map m times denser to the same
    output: the zoom divided by m, else the shrink multiplied by it (None: neither
    is whole)."""
    from fractions import Fraction
    z, s = Fraction(p.zoom_factor) / m, Fraction(p.shrink_factor) * m
    if z.denominator == 1 and z >= 1:
        return (int(z), p.shrink_factor)
    if s.denominator == 1 and s >= 1:
        return (p.zoom_factor, int(s))
    return None


def zoom(ctx: RuleContext, layer: LayerSpec, m: Pair, r: Pair) -> Decision:
    """An Interp by a factor over a denser or coarser map keeps its output where it
    was (zooms_that_follow chose it); other Interps are named (rules.resize).

        conv6_interp zoom_factor 8 over a x2 coarser map  ->  zoom_factor 16
        conv6_interp zoom_factor 8 over a x2 denser map   ->  zoom_factor 4
    """
    p = layer.resize
    new = _zoom(p, m[0])
    old = (p.zoom_factor, p.shrink_factor)
    what = " and ".join(f"{name} {a} -> {b}" for name, a, b in
                        zip(("zoom_factor", "shrink_factor"), old, new) if a != b)
    d = Decision(zoom=(old, new), reasons=[
        f"{what}: it reads a {fmt_density(m)} map and keeps its output where it was"])
    x, y = ctx.graph.bottoms(layer)[0], ctx.graph.tops(layer)[0]
    before, out = ctx.shapes0.get(x), ctx.shapes0.get(y)
    if before is not None and out is not None and None not in before[2:] + out[2:]:
        size = math.floor((before[2] - 1) * m[0]) + 1           # the map it will read
        got = (size - 1) * new[0] // new[1] + 1
        if got != out[2]:
            d.warnings.append(f"zoomed x{new[0]}/{new[1]}, the {size}x{size} map it will read "
                              f"gives {got}x{got}, not {out[2]}x{out[3]} as before: Caffe's "
                              "Interp fits only inputs whose size is a multiple of the output "
                              "stride plus 1")
    return d


def anchored(ctx: RuleContext, layer: LayerSpec, m: Pair, r: Pair) -> Decision:
    """A resampler back onto a blob's grid: a fixed size follows in `follow_sizes`."""
    return Decision()


def upsample(ctx: RuleContext, layer: LayerSpec, m: Pair, r: Pair) -> Decision:
    """An Upsample over a denser blob upsamples the dense map: named.

        Upsample x2 on a x2 denser blob  ->  unchanged, warning
    """
    if m == (1, 1):
        return Decision()
    x = ctx.graph.bottoms(layer)[0]
    return Decision(warnings=[
        f"Upsample reads '{x.name}', now {fmt_density(m)}: it upsamples the dense map, so "
        f"its output is x{fmt_pair(m)} larger than before and not exact; check what follows it"])


def _downstream_changes(ctx: RuleContext, layer: LayerSpec) -> bool:
    """Whether a stride is removed after `layer` (what its assumed grid decided)."""
    seen, todo = set(), list(ctx.graph.tops(layer))
    while todo:
        blob = todo.pop()
        for consumer in blob.consumers:
            if consumer.index in ctx.removals:
                return True
            if consumer.index not in seen:
                seen.add(consumer.index)
                todo.extend(ctx.graph.tops(consumer))
    return False


def unknown_type(ctx: RuleContext, layer: LayerSpec, assumed) -> Decision | None:
    """A layer of a type caffe_atrous does not know is taken to keep its input's grid;
    where that matters (its input became denser, or a stride after it is removed)
    it is named, and --exact refuses it unless the user vouches for the type."""
    bottoms = ctx.graph.bottoms(layer)
    if grids.is_known(layer, assumed) or not bottoms or ctx.s0.get(bottoms[0]) is None:
        return None
    m = ctx.factor(bottoms[0])
    if (m is None or m == (1, 1)) and not _downstream_changes(ctx, layer):
        return None
    what = f"unknown type '{layer.type}': assumed to keep its input's grid"
    if ctx.mode == EXACT:
        raise ctx.fail(layer, f"{what}, which --exact does not take on trust; if it does, say "
                         f"so with --assume-same-grid {layer.type}")
    return Decision(warnings=[what])


def _sizing_graph(g: Graph, follow: dict[int, LayerSpec]) -> Graph:
    """`g` with each anchored resampler in `follow` sized from its anchor (as an Interp
    with a second bottom), so that sizes can be computed after conversion."""
    geo = grids.geometry(g)
    layers = [l.replace(bottoms=(l.bottoms[0], geo.anchors[l.index].name), params=Resize())
              if l.index in follow else l for l in g.layers]
    inputs = [(b.name, b.shape) for b in g.inputs if b.producer is None]
    return Graph(layers, g.phase, inputs, g.path, g.multi_phase, g.input_shape)


def sizing_graph(ctx: RuleContext) -> tuple[Graph, dict[int, LayerSpec]]:
    """(the graph to size the converted network with, the fixed-size resamplers in it
    that follow a grid that grows, by index); the graph is the phase's own when none do."""
    g, geo = ctx.graph, grids.geometry(ctx.graph)
    by_index = {l.index: l for l in g.layers}
    follow = {i: by_index[i] for i in geo.anchors if grids.fixed_size(by_index[i]) is not None
              and ctx.factor(geo.anchors[i]) not in (None, (1, 1))}
    return (_sizing_graph(g, follow) if follow else g), follow


def follow_sizes(ctx: RuleContext, sizing: Graph, follow: dict[int, LayerSpec],
                 shapes: dict, windows: dict) -> tuple[dict, dict]:
    """({layer index: (old size, new size)} of the resamplers that follow a grid,
    {layer index: window} of the pyramid poolings whose kernel the sizes the converted
    network computes (`shapes` of `sizing`) correct); an error when a pyramid pooling
    cannot keep its bins."""
    resized = {l.index: l for l in sizing.layers}
    sizes = {}
    for i, layer in follow.items():
        new = shapes.get(sizing.tops(resized[i])[0])
        if new is not None and None not in new[2:]:
            sizes[i] = (grids.fixed_size(layer), tuple(new[2:]))
    by_index = {l.index: l for l in ctx.graph.layers}
    rebinned = {}
    for i in sorted(grids.geometry(ctx.graph).bins):
        w = _keep_bins(ctx, by_index[i], sizing.bottoms(resized[i])[0], shapes,
                       windows.get(i, by_index[i].window))
        if w is not None:
            rebinned[i] = w
    return sizes, rebinned


def _keep_bins(ctx: RuleContext, layer: LayerSpec, x, shapes: dict, w: Window) -> Window | None:
    """The window that keeps a pyramid pooling's bins over the size its input has in
    the converted network, when it is not `w` (None: `w` keeps them)."""
    g = ctx.graph
    before, size = ctx.shapes0.get(g.tops(layer)[0]), shapes.get(x)
    if before is None or size is None or None in size[2:] or None in before[2:]:
        return None
    bins = before[2:]
    got = tuple(pool_out(size[2 + a], w, a, layer.pool.ceil_mode) for a in (0, 1))
    if got == bins:
        return None
    kernel = tuple(-(-size[2 + a] // bins[a]) for a in (0, 1))
    new = Window(kernel=kernel, stride=kernel)
    if tuple(pool_out(size[2 + a], new, a, layer.pool.ceil_mode) for a in (0, 1)) != bins:
        raise AtrousError(f"pyramid pooling: over its input, now {fmt_shape(size[2:])}, no "
                          f"kernel gives the {fmt_shape(bins)} bins the network has; convert "
                          "at another output stride", file=g.path, line=layer.line,
                          layer=layer.name)
    return new
