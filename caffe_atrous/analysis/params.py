"""The shapes of every layer's parameter blobs, as Caffe would allocate them.

These are what a .caffemodel must supply, by layer name; the conversion must
leave every one of them unchanged.
"""

from __future__ import annotations

import math

from ..errors import AtrousError
from ..formats.facts import Affine, ChannelWise
from ..graph import Graph
from .shapes import Shapes

ParamShapes = dict[str, list[tuple[int, ...]]]


def _channels(layer, shape, axis: int = 1) -> int | None:
    if shape is None or len(shape) <= axis:
        return None
    return shape[axis]


def param_shapes(graph: Graph, shapes: Shapes) -> ParamShapes:
    """Layer name -> the shapes of its parameter blobs (only layers that have
    some). A shape that cannot be known (unknown input size) is left out."""
    out: ParamShapes = {}
    for layer in graph.layers:
        t, p = layer.type, layer.params
        bottoms = graph.bottoms(layer)
        x = shapes.get(bottoms[0]) if bottoms else None
        blobs: list[tuple[int, ...]] | None = None
        if layer.conv is not None:
            c = _channels(layer, x)
            if c is None:
                continue
            g, n, (kh, kw) = p.group, p.num_output, p.window.kernel
            if c % g or n % g:
                raise AtrousError(f"{c} input channels and num_output {n} must both divide by "
                                  f"group {g}", file=graph.path, line=layer.line, layer=layer.name)
            w = (c, n // g, kh, kw) if layer.is_deconv else (n, c // g, kh, kw)
            blobs = [w] + ([(n,)] if p.bias_term else [])
        elif layer.ip is not None:
            if x is None or None in x[p.axis:]:
                continue
            k, n = math.prod(x[p.axis:]), p.num_output
            blobs = [(k, n) if p.transpose else (n, k)] + ([(n,)] if p.bias_term else [])
        elif t == "BatchNorm":
            c = _channels(layer, x)
            blobs = None if c is None else [(c,), (c,), (1,)]
        elif t == "BN":
            c = _channels(layer, x)
            blobs = None if c is None else [(1, c, 1, 1)] * 4
        elif t in ("Scale", "Bias") and len(bottoms) == 1:
            p = p if isinstance(p, Affine) else Affine(bias_term=False)
            if x is None:
                continue
            axis = p.axis + len(x) if p.axis < 0 else p.axis
            end = len(x) if p.num_axes == -1 else axis + p.num_axes
            shape = tuple(x[axis:end])
            if None in shape:
                continue
            blobs = [shape] + ([shape] if t == "Scale" and p.bias_term else [])
        elif t in ("PReLU", "Normalize"):
            c = _channels(layer, x)
            if c is None:
                continue
            shared = p.channel_shared if isinstance(p, ChannelWise) else t == "Normalize"
            blobs = [(1,) if shared else (c,)]
        if blobs:
            out[layer.name] = blobs
    return out
