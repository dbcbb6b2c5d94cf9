"""Which grid of the image a layer's output lies on: the layer semantics behind strides.py.

A blob's grid is the set of image positions its cells stand for; its stride is
their spacing. The layer kinds, and what each does to the grid of its (first)
input:

    SAME_GRID (ReLU, BN, Scale, Concat, Eltwise, Crop, ...)   keeps it
    NON_SPATIAL (InnerProduct, losses, Flatten, ...)          leaves the image
    Convolution, Pooling with stride s                        stride x s
    Deconvolution with stride s, Upsample with scale s        stride / s
    Interp zoom z, shrink s                                   stride x s / z
    Interp with two bottoms and no size                       the grid of its second bottom
    a fixed size (Interp height/width, Upsample upsample_h/_w) that is the size of a
    blob upstream of it                                       back on that blob's grid
    any other fixed size                                      stride x (in - 1) / (out - 1)

Which types keep the grid or leave the image is graph/kinds.py's table. Every
other type is unknown: it is taken to keep its input's grid, and the planner
names it (rewrite/plan.py).

Two structures are read off the network once (`geometry`):

- a pyramid-pooling branch (PSPNet): poolings, then pointwise layers (1x1
  convolutions, BN, ReLU), then a resampler back onto the grid the branch left.
  Its blobs are bins, not a deeper map: they do not count for the output
  stride, and when the map grows its poolings grow with it and keep their bins;
- an image pyramid (DeepLab v2's 0.5 and 0.75 inputs): a resampler that reads an
  image (a blob no strided layer has touched) starts a scale of its own, and
  the strides of the layers below it count in that scale's pixels.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from ..core.errors import AtrousError
from ..graph.records import LayerSpec
from ..graph.graph import Blob, Graph
from ..graph.kinds import LEAVES, SAME, kind_of, types_where
from .shapes import infer_shapes

if TYPE_CHECKING:
    from fractions import Fraction
    Number = int | Fraction             # a stride: whole, or fractional after a resampler
Stride = tuple  # (height, width), two Numbers (see strides.py)

SAME_GRID = types_where(grid=SAME)
NON_SPATIAL = types_where(grid=LEAVES)


def is_resampler(layer: LayerSpec) -> bool:
    """Interp, Upsample, or a Deconvolution: layers that make the grid finer (or resize it)."""
    return layer.resize is not None or layer.upsample is not None or layer.is_deconv


def is_known(layer: LayerSpec, assumed=frozenset()) -> bool:
    """Whether caffe_atrous knows what `layer` does to the grid (`assumed`: types the
    user vouches keep it)."""
    return (not layer.bottoms or not layer.tops or layer.conv is not None or layer.pool is not None
            or layer.ip is not None or is_resampler(layer) or kind_of(layer.type) is not None or layer.type in assumed)


def fixed_size(layer: LayerSpec) -> tuple[int, int] | None:
    """The output size a resampler is given in the file, if any."""
    if layer.resize is not None and layer.resize.fixed:
        return (layer.resize.height, layer.resize.width)
    if layer.upsample is not None:
        return layer.upsample.size
    return None


class Geometry:
    """What the stride analysis reads off the network once.

    anchors  resampler layer index -> the blob whose grid its output is on
    scales   resampler layer index -> factor on its input's stride (no anchor)
    bins     indices of the poolings of pyramid branches
    branch   the blobs of pyramid branches (not counted for the output stride)
    """

    __slots__ = ("anchors", "scales", "bins", "branch")

    def __init__(self):
        self.anchors: dict[int, Blob] = {}
        self.scales: dict[int, Stride] = {}
        self.bins: set[int] = set()
        self.branch: set[Blob] = set()


def _upstream_blobs(graph: Graph, start: Blob):
    """Blobs upstream of `start` (itself first), nearest first."""
    seen, todo = set(), [start]
    while todo:
        blob = todo.pop(0)
        if id(blob) in seen:
            continue
        seen.add(id(blob))
        yield blob
        if blob.producer is not None:
            todo.extend(graph.bottoms(blob.producer))


def _scale(layer: LayerSpec, shapes: dict, x: Blob, y: Blob) -> Stride:
    from fractions import Fraction      # only networks that resample need it
    one = Fraction(1)
    if layer.is_deconv:
        s = layer.window.stride
        return (one / s[0], one / s[1])
    if layer.upsample is not None and not layer.upsample.fixed:
        s = layer.upsample.scale
        return (one / s[0], one / s[1])
    if layer.resize is not None and not layer.resize.fixed:
        f = Fraction(layer.resize.shrink_factor, layer.resize.zoom_factor)
        return (f, f)
    a, b = shapes.get(x), shapes.get(y)
    if a is None or b is None or None in a[2:] or None in b[2:]:
        return (one, one)
    return tuple(Fraction(i - 1, o - 1) if i > 1 and o > 1 else Fraction(i, o)
                 for i, o in zip(a[2:], b[2:]))


def _branch(graph: Graph, start: Blob, anchor: Blob):
    """(blobs, poolings) of a pyramid branch from `anchor` to `start`, or None when
    the path holds a layer with a spatial kernel that is not a pooling (a decoder)."""
    blobs, pools, todo = set(), set(), [start]
    while todo:
        blob = todo.pop()
        if blob is anchor or blob in blobs:
            continue
        layer = blob.producer
        if layer is None:
            return None                      # reached an input without meeting the anchor
        w = layer.window
        if layer.pool is not None and w is not None:
            pools.add(layer.index)
        elif (w is not None and w.kernel != (1, 1)) or is_resampler(layer) or \
                layer.is_global_pool:
            return None
        blobs.add(blob)
        todo.extend(graph.bottoms(layer))
    return (blobs, pools) if pools else None


def _analyse(graph: Graph) -> Geometry:
    geo = Geometry()
    resamplers = [l for l in graph.layers if is_resampler(l) and l.bottoms]
    shapes = {}
    if any(fixed_size(l) for l in resamplers):
        try:
            shapes = infer_shapes(graph)
        except AtrousError:          # sizes only refine the analysis; the planner reports it
            shapes = {}
    for layer in resamplers:
        x, y = graph.bottoms(layer)[0], graph.tops(layer)[0]
        size = fixed_size(layer)
        anchor = None
        if layer.resize is not None and len(layer.bottoms) > 1 and not layer.resize.fixed \
                and layer.resize.zoom_factor == layer.resize.shrink_factor == 1:
            anchor = graph.bottoms(layer)[1]
        elif size is not None:
            anchor = next((b for b in _upstream_blobs(graph, x) if (shapes.get(b) or ())[2:]
                           == size), None)
        if anchor is None:
            geo.scales[layer.index] = _scale(layer, shapes, x, y)
            continue
        geo.anchors[layer.index] = anchor
        found = _branch(graph, x, anchor)
        if found is not None:
            geo.branch |= found[0]
            geo.bins |= found[1]
    return geo


_CACHE: "weakref.WeakKeyDictionary[Graph, Geometry]" = weakref.WeakKeyDictionary()


def geometry(graph: Graph) -> Geometry:
    """The Geometry of a graph (computed once per graph)."""
    geo = _CACHE.get(graph)
    if geo is None:
        geo = _CACHE[graph] = _analyse(graph)
    return geo
