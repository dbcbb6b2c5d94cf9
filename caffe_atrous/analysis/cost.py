"""What a network costs and sees: multiply-accumulates, activation memory and
receptive fields, per blob and per layer.

Multiply-accumulates count convolutions, deconvolutions and inner products
(the published figures for ResNet-50's 3.8-4.1 G count the same); activation
memory counts every top blob a layer writes (in-place layers reuse theirs), as
float32.
"""

from __future__ import annotations

import math

from ..graph.graph import Graph
from .shapes import Shapes
from .strides import cumulative_strides


def layer_macs(graph: Graph, shapes: Shapes) -> dict[str, int | None]:
    """Multiply-accumulates of each layer (0 for layers without weights)."""
    out: dict[str, int | None] = {}
    for layer in graph.layers:
        bottoms, tops = graph.bottoms(layer), graph.tops(layer)
        x = shapes.get(bottoms[0]) if bottoms else None
        y = shapes.get(tops[0]) if tops else None
        conv, ip = layer.conv, layer.ip
        macs: int | None = 0
        if conv is not None:
            if x is None or y is None or None in x or None in y:
                macs = None
            else:
                kh, kw = conv.window.kernel
                if conv.deconv:
                    macs = math.prod(x) * (conv.num_output // conv.group) * kh * kw
                else:
                    macs = math.prod(y) * (x[1] // conv.group) * kh * kw
        elif ip is not None:
            if x is None or None in x:
                macs = None
            else:
                macs = math.prod(x) * ip.num_output      # N * K * num_output
        out[layer.name] = macs
    return out


def activation_bytes(graph: Graph, shapes: Shapes) -> dict[str, int | None]:
    """Bytes of the new top blobs each layer writes (in-place tops count 0)."""
    out: dict[str, int | None] = {}
    for layer in graph.layers:
        total: int | None = 0
        for blob in graph.tops(layer):
            if blob.name in layer.bottoms:
                continue
            s = shapes.get(blob)
            if s is None or None in s:
                total = None
                break
            total += 4 * math.prod(s)
        out[layer.name] = total
    return out


def receptive_fields(graph: Graph, strides=None) -> dict[int, int | None]:
    """Receptive field (input pixels, height axis) of every blob, keyed by id(blob);
    None after a global pooling or a non-spatial layer."""
    strides = strides if strides is not None else cumulative_strides(graph)
    rf: dict[int, int | None] = {id(b): 1 for b in graph.inputs}
    for layer in graph.layers:
        bottoms = graph.bottoms(layer)
        ins = [rf.get(id(b)) for b in bottoms]
        known = [v for v in ins if v is not None]
        base = max(known) if known else (1 if not bottoms else None)
        for blob in graph.tops(layer):
            if strides.get(blob) is None or base is None:
                rf[id(blob)] = None
                continue
            grow = 0
            if layer.window is not None and not layer.is_deconv and bottoms:   # a source has none
                s = strides.get(bottoms[0])
                if s is not None:
                    grow = (layer.window.effective_kernel(0) - 1) * s[0]
            rf[id(blob)] = int(base + grow)
    return rf
