"""The shapes of every layer's parameter blobs, as Caffe would allocate them.

These are what a .caffemodel must supply, by layer name; the conversion must
leave every one of them unchanged.
"""

from __future__ import annotations

import math

from ..errors import AtrousError
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
        a, t = layer.attrs, layer.type
        bottoms = graph.bottoms(layer)
        x = shapes.get(bottoms[0]) if bottoms else None
        blobs: list[tuple[int, ...]] | None = None
        if layer.is_conv:
            c = _channels(layer, x)
            if c is None:
                continue
            g, n, (kh, kw) = a["group"], a["num_output"], layer.window.kernel
            if c % g or n % g:
                raise AtrousError(f"{c} input channels and num_output {n} must both divide by "
                                  f"group {g}", file=graph.path, line=layer.line, layer=layer.name)
            w = (c, n // g, kh, kw) if layer.is_deconv else (n, c // g, kh, kw)
            blobs = [w] + ([(n,)] if a["bias_term"] else [])
        elif a.get("ip"):
            if x is None or None in x[a["axis"]:]:
                continue
            k = math.prod(x[a["axis"]:])
            n = a["num_output"]
            blobs = [(k, n) if a["transpose"] else (n, k)] + ([(n,)] if a["bias_term"] else [])
        elif t == "BatchNorm":
            c = _channels(layer, x)
            blobs = None if c is None else [(c,), (c,), (1,)]
        elif t == "BN":
            c = _channels(layer, x)
            blobs = None if c is None else [(1, c, 1, 1)] * 4
        elif t in ("Scale", "Bias") and len(bottoms) == 1:
            if x is None:
                continue
            axis = a["axis"] + len(x) if a["axis"] < 0 else a["axis"]
            end = len(x) if a["num_axes"] == -1 else axis + a["num_axes"]
            shape = tuple(x[axis:end])
            if None in shape:
                continue
            blobs = [shape] + ([shape] if t == "Scale" and a["bias_term"] else [])
        elif t in ("PReLU", "Normalize"):
            c = _channels(layer, x)
            if c is None:
                continue
            blobs = [(1,) if a["channel_shared"] else (c,)]
        if blobs:
            out[layer.name] = blobs
    return out
