"""Cumulative strides: how far apart, in input pixels, a blob's positions are.

A blob's stride is a (height, width) pair of exact numbers: ints, and
Fractions where a Deconvolution or an Interp makes it fractional (smaller than 1,
or 3/2); the walk keeps whole values as ints, which it multiplies and divides
many times faster than Fractions; None means the blob has no spatial layout
(the output of an InnerProduct, a global pooling, a Flatten, ...). What each
layer does to the grid is said in grids.py.

The network's OUTPUT STRIDE is the stride of the deepest map it computes: the
largest stride of any spatial blob, except the bins of a pyramid-pooling branch
that is resized back onto the grid it left (PSPNet's 1/2/3/6 bins), and counted
in the pixels of the image a scale of an image pyramid reads (DeepLab v2 runs
its backbone on the image at 0.5 too). It is not the stride of a final
upsampling: FCN-8s is at output stride 32, and its output `score`, after the
Deconvolutions, at stride 1 (`final_strides`).

"Removing" a layer's stride means running it with stride 1: `removals` maps a
layer index to the per-axis factor taken out of its stride.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..graph.records import DataShapes
from ..graph.records import LayerSpec
from ..graph.graph import Blob, Graph
from ..core.window import Pair
from .grids import NON_SPATIAL, Geometry, Stride, geometry, is_resampler

if TYPE_CHECKING:               # fractions (and decimal) load when a stride is fractional
    from .grids import Number
ONE: Stride = (1, 1)

__all__ = ["NON_SPATIAL", "own_stride", "cumulative_strides", "output_stride",
           "network_output_stride", "strides_and_output_stride", "removals_for_output_stride", "removals_from_layer",
           "reachable_output_strides", "final_strides", "removed_factor", "fmt_stride"]


def own_stride(layer: LayerSpec) -> Pair:
    """The stride a downsampling layer applies ((1, 1) for every other layer)."""
    if layer.window is None or layer.is_deconv:
        return (1, 1)
    return layer.window.stride


def _exact(value):
    """An int where a Fraction is whole."""
    return value if type(value) is int or value.denominator != 1 else int(value)


def _div(a, b):
    """a / b exactly: an int where it divides, else a Fraction."""
    if type(a) is int and type(b) is int:
        q, r = divmod(a, b)
        if r == 0:
            return q
    from fractions import Fraction
    return _exact(Fraction(a) / b)


def _mul(a: Stride, b) -> Stride:
    return (_exact(a[0] * b[0]), _exact(a[1] * b[1]))


def _rel(stride: Stride, frame: Stride) -> Stride:
    if frame == ONE:
        return stride
    return (_div(stride[0], frame[0]), _div(stride[1], frame[1]))


class _Pass:
    """One walk's result: every blob's stride, the scale of the image it is computed
    from, and the strides removed."""

    __slots__ = ("strides", "frames", "removals")

    def __init__(self):
        self.strides: dict[Blob, Stride | None] = {}
        self.frames: dict[Blob, Stride] = {}
        self.removals: dict[int, Pair] = {}


def _sources(graph: Graph, layer: LayerSpec, out: _Pass) -> None:
    source = layer.params if isinstance(layer.params, DataShapes) else DataShapes()
    for i, blob in enumerate(graph.tops(layer)):
        shape = source.shape(i)
        out.strides[blob] = ONE if shape is None or len(shape) == 4 else None
        out.frames[blob] = ONE


def _propagate(graph: Graph, decide: Callable[[LayerSpec, Stride], Pair],
               is_global: Callable[[LayerSpec], bool] | None = None,
               original: dict[Blob, Stride | None] | None = None) -> _Pass:
    """One walk in graph order. `decide(layer, incoming stride in its scale's pixels)`
    says which stride a layer loses; the poolings of pyramid branches are never
    decided: they keep their bins (`original`: the strides before any removal)."""
    is_global = is_global or (lambda layer: layer.is_global_pool)
    geo = geometry(graph)
    out = _Pass()
    for blob in graph.inputs:
        if blob.producer is None:
            out.strides[blob] = ONE if blob.shape is None or len(blob.shape) == 4 else None
            out.frames[blob] = ONE
    for layer in graph.layers:
        if not layer.bottoms:
            _sources(graph, layer, out)
            continue
        bottoms = graph.bottoms(layer)
        x = next((b for b in bottoms if out.strides.get(b) is not None), bottoms[0])
        first, frame = out.strides.get(x), out.frames.get(x, ONE)
        result = first
        if first is None or layer.type in NON_SPATIAL or is_global(layer):
            result = None
        elif layer.index in geo.bins:
            result = _mul((original or out.strides)[x] or first, layer.window.stride)
        elif is_resampler(layer):
            result, frame = _resample(geo, layer, out, first, frame)
            r = decide(layer, _rel(first, frame))
            if r != (1, 1):                   # a zoom that follows its input (rewrite/regrid.py)
                out.removals[layer.index] = r
                result = (_div(result[0], r[0]), _div(result[1], r[1]))
        elif layer.window is not None:
            r = decide(layer, _rel(first, frame))
            if r != (1, 1):
                out.removals[layer.index] = r
            s = layer.window.stride
            result = (_div(first[0] * s[0], r[0]), _div(first[1] * s[1], r[1]))
        for blob in graph.tops(layer):
            out.strides[blob] = result
            out.frames[blob] = frame
    return out


def _resample(geo: Geometry, layer: LayerSpec, out: _Pass, first: Stride, frame: Stride):
    """(stride, scale) of a resampler's output: on its anchor's grid, or scaled; one that
    reads an image starts a scale of its own."""
    anchor = geo.anchors.get(layer.index)
    if anchor is not None and out.strides.get(anchor) is not None:
        return out.strides[anchor], out.frames.get(anchor, ONE)
    result = _mul(first, geo.scales.get(layer.index, ONE))
    return result, (result if _rel(first, frame) == ONE else frame)


def cumulative_strides(graph: Graph, removals: dict[int, Pair] | None = None,
                       made_global: set[int] = frozenset()) -> dict[Blob, Stride | None]:
    """Every blob's stride once the given strides are removed (and the layers
    in `made_global` pool globally)."""
    return _after(graph, removals, made_global).strides


def _after(graph: Graph, removals: dict[int, Pair] | None,
           made_global: set[int] = frozenset()) -> _Pass:
    removals = removals or {}
    original = None
    if geometry(graph).bins and removals:
        original = _propagate(graph, lambda layer, s: (1, 1)).strides
    return _propagate(graph, lambda layer, s: removals.get(layer.index, (1, 1)),
                      lambda layer: layer.index in made_global or layer.is_global_pool, original)


def strides_in_scale(graph: Graph) -> dict[Blob, Stride | None]:
    """Every blob's stride in the pixels of the image its scale reads (an image
    pyramid's 0.5 branch counts in the pixels of the half-size image)."""
    p = _after(graph, None)
    return {b: None if s is None else _rel(s, p.frames.get(b, ONE)) for b, s in p.strides.items()}


def largest_stride(strides: dict[Blob, Stride | None]) -> Number:
    """The largest stride of any spatial blob (see network_output_stride for the
    network's output stride)."""
    values = [max(s) for s in strides.values() if s is not None]
    return max(values) if values else 1


def _deepest(graph: Graph, p: _Pass) -> Number:
    branch = geometry(graph).branch
    values = [max(_rel(s, p.frames.get(b, ONE))) for b, s in p.strides.items()
              if s is not None and b not in branch]
    return max(values) if values else 1


def strides_and_output_stride(graph: Graph, removals: dict[int, Pair] | None = None,
                              made_global: set[int] = frozenset()
                              ) -> tuple[dict[Blob, Stride | None], Number]:
    """cumulative_strides and network_output_stride from one walk."""
    p = _after(graph, removals, made_global)
    return p.strides, _deepest(graph, p)


def network_output_stride(graph: Graph, removals: dict[int, Pair] | None = None,
                          made_global: set[int] = frozenset()) -> Number:
    """The output stride (module docstring) once the given strides are removed."""
    return _deepest(graph, _after(graph, removals, made_global))


def removals_for_output_stride(graph: Graph, target: int) -> dict[int, Pair]:
    """Remove every stride that would take a blob's stride past `target`."""
    def decide(layer: LayerSpec, incoming: Stride) -> Pair:
        s = own_stride(layer)
        return tuple(s[a] if s[a] > 1 and incoming[a] * s[a] > target else 1 for a in (0, 1))
    return _propagate(graph, decide).removals


def removals_from_layer(graph: Graph, start_index: int) -> dict[int, Pair]:
    """Remove the stride of the layer at `start_index` and of every later layer."""
    def decide(layer: LayerSpec, incoming: Stride) -> Pair:
        s = own_stride(layer)
        return s if layer.index >= start_index and s != (1, 1) else (1, 1)
    return _propagate(graph, decide).removals


def reachable_output_strides(graph: Graph) -> list[int]:
    """The output strides `removals_for_output_stride` can produce for this graph."""
    p = _after(graph, None)
    branch = geometry(graph).branch
    candidates = {int(v) for b, s in p.strides.items() if s is not None and b not in branch
                  for v in [max(_rel(s, p.frames.get(b, ONE)))] if v.denominator == 1}
    return [n for n in sorted(candidates)
            if network_output_stride(graph, removals_for_output_stride(graph, n)) == n]


def final_strides(graph: Graph, strides: dict[Blob, Stride | None]) -> dict[str, Number]:
    """The strides of the network's spatial outputs (blobs no layer reads)."""
    return {b.name: max(s) for b in graph.blobs
            if not b.consumers and b.producer is not None and (s := strides.get(b)) is not None}


def removed_factor(before: Stride | None, after: Stride | None) -> Pair | None:
    """Per-axis factor by which a blob became denser: a whole number, or 1/f where it
    became f times coarser (None: not spatial, or no such clean factor)."""
    if before is None or after is None:
        return None
    f = (_div(before[0], after[0]), _div(before[1], after[1]))
    return f if all(type(v) is int or v.numerator == 1 for v in f) else None


def fmt_stride(value: Number) -> str:
    """A stride as text: an integer without a denominator (8), a fraction as one (1/2)."""
    return str(value.numerator) if value.denominator == 1 else str(value)
