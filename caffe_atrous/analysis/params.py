"""The shapes of every layer's parameter blobs, as Caffe would allocate them.

These are what a .caffemodel must supply, by layer name; the conversion must
leave every one of them unchanged.
"""

from __future__ import annotations

import math

from ..core.errors import AtrousError
from ..graph.records import Affine, ChannelWise
from ..graph.graph import Graph
from ..graph.kinds import BATCH_NORM, BIAS, PSP_BN, SCALE, kind_of
from .shapes import Shapes, blob_limit_text, fits_in_a_blob, fmt_shape

ParamShapes = dict[str, list[tuple[int, ...]]]


def _channels(layer, shape, axis: int = 1) -> int | None:
    if shape is None or len(shape) <= axis:
        return None
    return shape[axis]


def _held(blobs: list[tuple[int, ...]], graph: Graph, layer) -> list[tuple[int, ...]]:
    """The blobs, each of which Caffe must be able to hold."""
    for shape in blobs:
        if not fits_in_a_blob(shape):
            raise AtrousError(f"its parameter blob would be {fmt_shape(shape)}, "
                              f"{blob_limit_text(shape)}", file=graph.path, line=layer.line,
                              layer=layer.name)
    return blobs


def _window_blobs(layer, x) -> list | None:
    p = layer.params
    if layer.conv is not None:
        c = _channels(layer, x)
        if c is None:
            return None
        g, n, (kh, kw) = p.group, p.num_output, p.window.kernel   # checked in shapes.py
        w = (c, n // g, kh, kw) if layer.is_deconv else (n, c // g, kh, kw)
        return [w] + ([(n,)] if p.bias_term else [])
    if x is None or None in x[p.axis:]:                      # InnerProduct
        return None
    k, n = math.prod(x[p.axis:]), p.num_output
    return [(k, n) if p.transpose else (n, k)] + ([(n,)] if p.bias_term else [])


def _affine_blobs(layer, x, layout: str) -> list | None:
    """Scale/Bias with one bottom: blobs over the axes their parameters name."""
    p = layer.params if isinstance(layer.params, Affine) else Affine(bias_term=False)
    if x is None:
        return None
    axis = p.axis + len(x) if p.axis < 0 else p.axis
    end = len(x) if p.num_axes == -1 else axis + p.num_axes
    shape = tuple(x[axis:end])
    if None in shape:
        return None
    return [shape] + ([shape] if layout == SCALE and p.bias_term else [])


def _blobs(layer, x, n_bottoms: int) -> list | None:
    """The parameter blob shapes of one layer whose first input has shape `x`."""
    if layer.conv is not None or layer.ip is not None:
        return _window_blobs(layer, x)
    kind = kind_of(layer.type)
    layout = kind.weights if kind is not None else None
    if layout in (SCALE, BIAS):          # with a second bottom, that bottom is the factor
        return _affine_blobs(layer, x, layout) if n_bottoms == 1 else None
    c = _channels(layer, x)
    if layout is None or c is None:
        return None
    if layout == BATCH_NORM:
        return [(c,), (c,), (1,)]
    if layout == PSP_BN:
        return [(1, c, 1, 1)] * 4
    p = layer.params                     # CHANNEL: PReLU, Normalize
    shared = p.channel_shared if isinstance(p, ChannelWise) else layer.type == "Normalize"
    return [(1,) if shared else (c,)]


def has_params(layer) -> bool:
    """Whether a layer has parameter blobs (whatever its input's shape)."""
    kind = kind_of(layer.type)
    layout = kind.weights if kind is not None else None
    if layout in (SCALE, BIAS):
        return len(layer.bottoms) == 1
    return layer.conv is not None or layer.ip is not None or layout is not None


def param_shapes(graph: Graph, shapes: Shapes) -> ParamShapes:
    """Layer name -> the shapes of its parameter blobs (only layers that have
    some). A shape that cannot be known (unknown input size) is left out."""
    out: ParamShapes = {}
    for layer in graph.layers:
        bottoms = graph.bottoms(layer)
        x = shapes.get(bottoms[0]) if bottoms else None
        blobs = _blobs(layer, x, len(bottoms))
        if blobs:
            out[layer.name] = _held(blobs, graph, layer)
    return out
