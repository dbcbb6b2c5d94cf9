"""Blob shapes, computed with Caffe's own rules.

Shapes are tuples; an entry may be None where Caffe would only know it at run
time (the channels of a Data layer, the number of RoIs), and a whole shape is
None when a layer type is unknown to caffe_atrous. Convolution sizes round
down and pooling sizes round up (see window.py). Conflicting shapes (an
Eltwise of 28x28 and 27x27) raise an AtrousError naming the layer and both.
"""

from __future__ import annotations

import math
from typing import Callable

from ..errors import AtrousError
from ..formats.netspec import LayerSpec
from ..graph import Blob, Graph
from ..window import Window, conv_out, deconv_out, pool_out

Shape = tuple
Shapes = dict[Blob, "Shape | None"]

# Types whose (first) top has the shape of their first bottom.
SAME_SHAPE = {"ReLU", "PReLU", "ELU", "Sigmoid", "TanH", "AbsVal", "BNLL", "Power", "Exp", "Log",
              "Threshold", "Dropout", "LRN", "BatchNorm", "BN", "Scale", "Bias", "Softmax", "MVN",
              "Normalize", "Clip", "Swish", "Split", "ReLU6", "Mish"}
SCALAR_TOPS = {"SoftmaxWithLoss", "EuclideanLoss", "SigmoidCrossEntropyLoss", "HingeLoss",
               "InfogainLoss", "MultinomialLogisticLoss", "ContrastiveLoss", "Accuracy",
               "SmoothL1Loss", "MultiBoxLoss", "SegAccuracy"}


def _known(*shapes) -> bool:
    return all(s is not None for s in shapes)


def _spatial(layer: LayerSpec, shape: Shape) -> Shape:
    if len(shape) != 4:
        raise AtrousError(f"expects a 4-D (N, C, H, W) input, got {fmt_shape(shape)}",
                          layer=layer.name)
    return shape


def fmt_shape(shape: Shape | None) -> str:
    if shape is None:
        return "unknown"
    return "x".join("?" if d is None else str(d) for d in shape) or "scalar"


def _canon(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def _interp_size(p: dict, h: int, w: int) -> tuple[int, int]:
    """PSPNet/DeepLab Interp output size."""
    h_eff, w_eff = h + p["pad_beg"] + p["pad_end"], w + p["pad_beg"] + p["pad_end"]
    zoom, shrink = p["zoom_factor"], p["shrink_factor"]
    if p["height"] and p["width"]:
        return p["height"], p["width"]
    if shrink != 1 and zoom != 1:
        h, w = (h_eff - 1) // shrink + 1, (w_eff - 1) // shrink + 1
        return h + (h - 1) * (zoom - 1), w + (w - 1) * (zoom - 1)
    if shrink != 1:
        return (h_eff - 1) // shrink + 1, (w_eff - 1) // shrink + 1
    if zoom != 1:
        return h_eff + (h_eff - 1) * (zoom - 1), w_eff + (w_eff - 1) * (zoom - 1)
    return h_eff, w_eff


def _reshape(layer: LayerSpec, shape: Shape) -> Shape | None:
    spec, axis, num_axes = layer.attrs["reshape"], layer.attrs["axis"], layer.attrs["num_axes"]
    rank = len(shape)
    start = _canon(axis, rank + 1) if axis < 0 else axis
    end = rank if num_axes == -1 else start + num_axes
    head, mid, tail = shape[:start], shape[start:end], shape[end:]
    out = []
    for i, d in enumerate(spec):
        out.append(mid[i] if d == 0 and i < len(mid) else (None if d == -1 else d))
    if None in out and out.count(None) == 1 and _known(*mid) and None not in mid:
        total = math.prod(mid)
        rest = math.prod(d for d in out if d is not None)
        out[out.index(None)] = total // rest if rest else None
    return tuple(head) + tuple(out) + tuple(tail)


def _one(layer: LayerSpec, ins: list, window: Window | None, global_pool: bool) -> list:
    """Shapes of a layer's tops from its bottoms' shapes (None: unknown)."""
    t, a = layer.type, layer.attrs
    n_tops = len(layer.tops)
    if not layer.bottoms:
        if "shapes" in a:
            shapes = a["shapes"]
            return [tuple(shapes[min(i, len(shapes) - 1)]) if shapes else None for i in range(n_tops)]
        size = a.get("data_size")
        first = (a.get("batch"), None) + tuple(size) if size else None
        return [first] + [None] * (n_tops - 1)
    x = ins[0]
    if t in SCALAR_TOPS:
        return [()] * n_tops
    if t == "Silence":
        return []
    if layer.is_conv:
        if x is None:
            return [None] * n_tops
        n, _, h, w = _spatial(layer, x)
        f = deconv_out if layer.is_deconv else conv_out
        return [(n, a["num_output"], f(h, window, 0), f(w, window, 1))] * n_tops
    if layer.is_pool:
        if x is None:
            return [None] * n_tops
        n, c, h, w = _spatial(layer, x)
        if global_pool:
            return [(n, c, 1, 1)] * n_tops
        return [(n, c, pool_out(h, window, 0, a["ceil_mode"]),
                 pool_out(w, window, 1, a["ceil_mode"]))] * n_tops
    if a.get("ip"):
        if x is None:
            return [None]
        axis = _canon(a["axis"], len(x))
        return [tuple(x[:axis]) + (a["num_output"],)]
    if t == "Eltwise" or t == "Axpy":
        ref = ins[1] if t == "Axpy" and len(ins) > 1 else x
        if t == "Eltwise":
            known = [s for s in ins if s is not None]
            for s in known[1:]:
                if tuple(s) != tuple(known[0]) and None not in s and None not in known[0]:
                    raise AtrousError(f"its inputs have different shapes: "
                                      f"{', '.join(fmt_shape(s) for s in ins)}", layer=layer.name)
            ref = known[0] if len(known) == len(ins) else None
        return [ref]
    if t == "Concat":
        if not _known(*ins):
            return [None]
        axis = _canon(a["axis"], len(x))
        for s in ins[1:]:
            if len(s) != len(x) or any(s[i] != x[i] for i in range(len(x)) if i != axis):
                raise AtrousError(f"its inputs do not agree outside axis {axis}: "
                                  f"{', '.join(fmt_shape(s) for s in ins)}", layer=layer.name)
        total = None if any(s[axis] is None for s in ins) else sum(s[axis] for s in ins)
        return [tuple(x[:axis]) + (total,) + tuple(x[axis + 1:])]
    if t == "Slice":
        if x is None:
            return [None] * n_tops
        axis = _canon(a["axis"], len(x))
        points = list(a["slice_point"])
        dim = x[axis]
        if dim is None:
            return [None] * n_tops
        bounds = [0] + points + [dim] if points else [dim * i // n_tops for i in range(n_tops + 1)]
        return [tuple(x[:axis]) + (bounds[i + 1] - bounds[i],) + tuple(x[axis + 1:])
                for i in range(n_tops)]
    if t == "Split":
        return [x] * n_tops
    if x is None:
        return [None] * n_tops
    if t in SAME_SHAPE:
        return [x] + [None] * (n_tops - 1)
    if t == "Flatten":
        rank = len(x)
        start, end = _canon(a["axis"], rank), _canon(a["end_axis"], rank)
        mid = x[start:end + 1]
        flat = None if None in mid else math.prod(mid)
        return [tuple(x[:start]) + (flat,) + tuple(x[end + 1:])]
    if t == "Reshape":
        return [_reshape(layer, x)]
    if t == "Permute":
        order = list(a["order"])
        order += [i for i in range(len(x)) if i not in order]
        return [tuple(x[i] for i in order)]
    if t == "Crop":
        ref = ins[1] if len(ins) > 1 else None
        if ref is None:
            return [None]
        axis = _canon(a["crop_axis"], len(x))
        return [tuple(x[:axis]) + tuple(ref[axis:])]
    if "interp" in a:
        n, c, h, w = _spatial(layer, x)
        return [(n, c) + _interp_size(a["interp"], h, w)]
    if t == "ROIPooling" and len(ins) > 1:
        return [(ins[1][0] if ins[1] else None, x[1]) + tuple(a["pooled"])]
    if t == "PSROIPooling" and len(ins) > 1:
        g = a["group_size"]
        return [(ins[1][0] if ins[1] else None, a["output_dim"], g, g)]
    return [None] * n_tops


def infer_shapes(graph: Graph, window_of: Callable[[LayerSpec], Window | None] | None = None,
                 is_global: Callable[[LayerSpec], bool] | None = None,
                 input_shape: tuple[int, ...] | None = None) -> Shapes:
    """Every blob's shape. `window_of`/`is_global` override the layers' own
    geometry (to size a converted network); `input_shape` replaces the shape of
    the first network input."""
    window_of = window_of or (lambda l: l.window)
    is_global = is_global or (lambda l: bool(l.attrs.get("global_pooling")))
    shapes: Shapes = {}
    first_input = True
    for blob in graph.inputs:
        if blob.producer is None:
            shapes[blob] = tuple(input_shape) if input_shape and first_input else blob.shape
            first_input = False
    for layer in graph.layers:
        ins = [shapes.get(b) for b in graph.bottoms(layer)]
        try:
            outs = _one(layer, ins, window_of(layer), is_global(layer))
        except AtrousError as exc:
            raise AtrousError(exc.message, file=graph.path, line=layer.line, layer=layer.name) from None
        if not layer.bottoms and input_shape is not None and first_input and outs:
            outs = [tuple(input_shape)] + list(outs[1:])
            first_input = False
        for blob, s in zip(graph.tops(layer), outs):
            if s is not None and any(d is not None and d <= 0 for d in s):
                raise AtrousError(f"its output '{blob.name}' would be {fmt_shape(s)}: the input is too "
                                  "small for this network; give a larger --input-shape",
                                  file=graph.path, line=layer.line, layer=layer.name)
            shapes[blob] = s
    return shapes

