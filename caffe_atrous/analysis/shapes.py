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

from ..core.errors import AtrousError
from ..graph.records import (Crop, Flatten, Permute, Reshape, Resize, RoiPool, Slice, DataShapes,
                             Upsample)
from ..graph.records import LayerSpec
from ..graph.graph import Blob, Graph
from ..graph.kinds import SAME, SCALAR, types_where
from ..core.window import Window, conv_out, deconv_out, pool_out

Shape = tuple
Shapes = dict[Blob, "Shape | None"]

SAME_SHAPE = types_where(shape=SAME)
SCALAR_TOPS = types_where(shape=SCALAR)


INT_MAX = 2**31 - 1          # Caffe's Blob::Reshape: CHECK_LE(count, INT_MAX)


def fits_in_a_blob(shape: Shape) -> bool:
    """Caffe holds at most INT_MAX values in one blob (unknown entries count as 1)."""
    return math.prod(d for d in shape if d is not None) <= INT_MAX


def blob_limit_text(shape: Shape) -> str:
    """The error text for a blob of `shape` too large for Caffe: its number of values
    (unknown entries count as 1) against the INT_MAX a blob can hold."""
    n = math.prod(d for d in shape if d is not None)
    return (f"{n} values: more than the {INT_MAX} a Caffe blob can hold (Caffe aborts with "
            "\"blob size exceeds INT_MAX\"); check the sizes and num_output")


def _known(*shapes) -> bool:
    return all(s is not None for s in shapes)


def _spatial(layer: LayerSpec, shape: Shape) -> Shape:
    if len(shape) != 4:
        raise AtrousError(f"expects a 4-D (N, C, H, W) input, got {fmt_shape(shape)}",
                          layer=layer.name)
    return shape


def fmt_shape(shape: Shape | None) -> str:
    """A shape as text: 1x3x224x224, `?` for an unknown entry, "scalar" for (), "unknown"
    for None."""
    if shape is None:
        return "unknown"
    return "x".join("?" if d is None else str(d) for d in shape) or "scalar"


def _canon(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def _interp_size(p: Resize, h: int, w: int) -> tuple[int, int]:
    """PSPNet/DeepLab Interp output size."""
    h_eff, w_eff = h + p.pad_beg + p.pad_end, w + p.pad_beg + p.pad_end
    zoom, shrink = p.zoom_factor, p.shrink_factor
    if p.fixed:
        return p.height, p.width
    if shrink != 1 and zoom != 1:
        h, w = (h_eff - 1) // shrink + 1, (w_eff - 1) // shrink + 1
        return h + (h - 1) * (zoom - 1), w + (w - 1) * (zoom - 1)
    if shrink != 1:
        return (h_eff - 1) // shrink + 1, (w_eff - 1) // shrink + 1
    if zoom != 1:
        return h_eff + (h_eff - 1) * (zoom - 1), w_eff + (w_eff - 1) * (zoom - 1)
    return h_eff, w_eff


def _resize(layer: LayerSpec, ins: list, *_) -> list:
    """Interp: a fixed size, zoom/shrink factors, or (no size given, two bottoms)
    the size of its second bottom."""
    n, c, h, w = _spatial(layer, ins[0])
    p = layer.resize
    if len(ins) > 1 and not p.fixed and p.zoom_factor == p.shrink_factor == 1:
        return [None] if ins[1] is None else [(n, c) + tuple(_spatial(layer, ins[1])[2:])]
    return [(n, c) + _interp_size(p, h, w)]


def _upsample(layer: LayerSpec, ins: list, *_) -> list:
    """SegNet/ENet Upsample: upsample_h x upsample_w, else scale x input (minus pad_out)."""
    n, c, h, w = _spatial(layer, ins[0])
    p = layer.upsample
    if p.fixed:
        return [(n, c) + p.size]
    return [(n, c, h * p.scale[0] - p.pad_out[0], w * p.scale[1] - p.pad_out[1])]


def _reshape(p: Reshape, shape: Shape) -> Shape | None:
    rank = len(shape)
    start = _canon(p.axis, rank + 1) if p.axis < 0 else p.axis
    end = rank if p.num_axes == -1 else start + p.num_axes
    head, mid, tail = shape[:start], shape[start:end], shape[end:]
    out = []
    for i, d in enumerate(p.shape):
        out.append(mid[i] if d == 0 and i < len(mid) else (None if d == -1 else d))
    if None in out and out.count(None) == 1 and _known(*mid) and None not in mid:
        total = math.prod(mid)
        rest = math.prod(d for d in out if d is not None)
        out[out.index(None)] = total // rest if rest else None
    return tuple(head) + tuple(out) + tuple(tail)


# Each rule below: (layer, input shapes, window, global?) -> top shapes; inputs known
# where the rule needs them (see _one).

def _check_group(layer: LayerSpec, channels: int | None) -> None:
    """Caffe's convolution setup: the input channels divide by group."""
    g = layer.conv.group
    if channels is not None and channels % g:
        raise AtrousError(f"convolution_param: group is {g} but the {channels} input channels do "
                          "not divide by it; Caffe requires both the input channels and "
                          "num_output to be multiples of group: fix group or the layer before")


def _check_fits(layer: LayerSpec, window: Window, size: tuple) -> None:
    """The (dilated) kernel of a convolution or local pooling fits the padded input."""
    what = "convolution_param" if layer.conv is not None else "pooling_param"
    after = " after conversion" if window != layer.window else ""
    for axis in (0, 1):
        if size[axis] is None:
            continue
        extent = window.effective_kernel(axis) if layer.conv is not None else window.kernel[axis]
        room = size[axis] + 2 * window.pad[axis]
        if extent <= room:
            continue
        k, d = window.kernel[axis], window.dilation[axis]
        span = f"kernel_size {k} with dilation {d} spans {extent}" if d != 1 else f"kernel_size is {k}"
        raise AtrousError(f"{what}: {span}{after}, more than its {'x'.join(map(str, size))} "
                          f"input with pad {window.pad[axis]} ({room}); Caffe refuses a kernel "
                          "larger than the padded input: give a larger --input-shape, or a "
                          + ("smaller kernel" if layer.conv is not None else
                             "smaller kernel or global_pooling: true"))


def _window(layer: LayerSpec, ins: list, window: Window | None, global_pool: bool) -> list:
    n, c, h, w = _spatial(layer, ins[0])
    if layer.conv is not None:
        _check_group(layer, c)
        f = deconv_out if layer.is_deconv else conv_out
        c = layer.conv.num_output
    elif global_pool:
        return [(n, c, 1, 1)] * len(layer.tops)
    if not layer.is_deconv:
        _check_fits(layer, window, (h, w))
    if layer.pool is not None:
        ceil = layer.pool.ceil_mode
        return [(n, c, pool_out(h, window, 0, ceil), pool_out(w, window, 1, ceil))] * len(layer.tops)
    return [(n, c, f(h, window, 0), f(w, window, 1))] * len(layer.tops)


def _inner_product(layer: LayerSpec, ins: list, *_) -> list:
    x = ins[0]
    return [tuple(x[:_canon(layer.ip.axis, len(x))]) + (layer.ip.num_output,)]


def _eltwise(layer: LayerSpec, ins: list, *_) -> list:
    known = [s for s in ins if s is not None]
    for s in known[1:]:
        if tuple(s) != tuple(known[0]) and None not in s and None not in known[0]:
            raise AtrousError(f"its inputs have different shapes: "
                              f"{', '.join(fmt_shape(s) for s in ins)}", layer=layer.name)
    return [known[0] if len(known) == len(ins) else None]


def _concat(layer: LayerSpec, ins: list, *_) -> list:
    if not _known(*ins):
        return [None]
    x = ins[0]
    axis = _canon(layer.params.axis, len(x))
    for s in ins[1:]:
        if len(s) != len(x) or any(s[i] != x[i] for i in range(len(x)) if i != axis):
            raise AtrousError(f"its inputs do not agree outside axis {axis}: "
                              f"{', '.join(fmt_shape(s) for s in ins)}", layer=layer.name)
    total = None if any(s[axis] is None for s in ins) else sum(s[axis] for s in ins)
    return [tuple(x[:axis]) + (total,) + tuple(x[axis + 1:])]


def _slice(layer: LayerSpec, ins: list, *_) -> list:
    x, p, n = ins[0], layer.params, len(layer.tops)
    axis = _canon(p.axis, len(x))
    dim = x[axis]
    if dim is None:
        return [None] * n
    bounds = [0] + list(p.points) + [dim] if p.points else [dim * i // n for i in range(n + 1)]
    return [tuple(x[:axis]) + (bounds[i + 1] - bounds[i],) + tuple(x[axis + 1:]) for i in range(n)]


def _flatten(layer: LayerSpec, ins: list, *_) -> list:
    x, rank = ins[0], len(ins[0])
    start, end = _canon(layer.params.axis, rank), _canon(layer.params.end_axis, rank)
    mid = x[start:end + 1]
    return [tuple(x[:start]) + (None if None in mid else math.prod(mid),) + tuple(x[end + 1:])]


def _permute(layer: LayerSpec, ins: list, *_) -> list:
    x = ins[0]
    order = list(layer.params.order)
    order += [i for i in range(len(x)) if i not in order]
    return [tuple(x[i] for i in order)]


def _crop(layer: LayerSpec, ins: list, *_) -> list:
    ref = ins[1] if len(ins) > 1 else None
    if ref is None:
        return [None]
    x = ins[0]
    axis = _canon(layer.params.axis, len(x))
    return [tuple(x[:axis]) + tuple(ref[axis:])]


def _roi(layer: LayerSpec, ins: list, *_) -> list:
    p, rois = layer.params, (ins[1][0] if len(ins) > 1 and ins[1] else None)
    if len(ins) < 2:
        return [None]
    if layer.type == "PSROIPooling":
        return [(rois, p.output_dim, p.group_size, p.group_size)]
    return [(rois, ins[0][1]) + tuple(p.pooled)]


def _source(layer: LayerSpec, ins: list, *_) -> list:
    p = layer.params if isinstance(layer.params, DataShapes) else DataShapes()
    return [p.shape(i) for i in range(len(layer.tops))]


def _rule(layer: LayerSpec):
    """The shape rule of a layer and whether it needs its first input's shape."""
    t, p = layer.type, layer.params
    if not layer.bottoms:
        return _source, False
    if t in SCALAR_TOPS:
        return (lambda l, *_: [()] * len(l.tops)), False
    if t == "Silence":
        return (lambda *_: []), False
    if layer.conv is not None or layer.pool is not None:
        return _window, True
    if layer.ip is not None:
        return _inner_product, True
    if t in ("Eltwise", "Axpy"):
        return (_eltwise if t == "Eltwise" else lambda l, ins, *_: [ins[1] if len(ins) > 1 else None]), False
    if t == "Concat":
        return _concat, False
    if t == "Split":
        return (lambda l, ins, *_: [ins[0]] * len(l.tops)), False
    if t in SAME_SHAPE:
        return (lambda l, ins, *_: [ins[0]] + [None] * (len(l.tops) - 1)), True
    if layer.resize is not None:
        return _resize, True
    table = {Upsample: _upsample, Slice: _slice, Flatten: _flatten, Permute: _permute, Crop: _crop, RoiPool: _roi,
             Reshape: lambda l, ins, *_: [_reshape(l.params, ins[0])]}
    rule = table.get(type(p))
    return (rule, True) if rule else (None, True)


def _one(layer: LayerSpec, ins: list, window: Window | None, global_pool: bool) -> list:
    """Shapes of a layer's tops from its bottoms' shapes (None: unknown)."""
    rule, needs_input = _rule(layer)
    if rule is None or (needs_input and ins and ins[0] is None):
        return [None] * len(layer.tops)
    return rule(layer, ins, window, global_pool)


def infer_shapes(graph: Graph, window_of: Callable[[LayerSpec], Window | None] | None = None,
                 is_global: Callable[[LayerSpec], bool] | None = None,
                 input_shape: tuple[int, ...] | None = None) -> Shapes:
    """Every blob's shape. `window_of`/`is_global` override the layers' own
    geometry (to size a converted network); `input_shape` (by default the graph's
    own, from --input-shape) replaces the shape of the first network input."""
    if input_shape is None:
        input_shape = graph.input_shape
    window_of = window_of or (lambda l: l.window)
    is_global = is_global or (lambda l: l.is_global_pool)
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
            raise exc.located(graph.path, layer.line, layer.name) from None
        if not layer.bottoms and input_shape is not None and first_input and outs:
            outs = [tuple(input_shape)] + list(outs[1:])
            first_input = False
        for blob, s in zip(graph.tops(layer), outs):
            known = [d for d in s if d is not None] if s is not None else ()
            if known and min(known) <= 0:
                raise AtrousError(f"its output '{blob.name}' would be {fmt_shape(s)}: the input is too "
                                  "small for this network; give a larger --input-shape",
                                  file=graph.path, line=layer.line, layer=layer.name)
            if known and math.prod(known) > INT_MAX:
                raise AtrousError(f"its output '{blob.name}' would be {fmt_shape(s)}, "
                                  f"{blob_limit_text(s)}", file=graph.path, line=layer.line,
                                  layer=layer.name)
            shapes[blob] = s
    return shapes


def infer_converted(graph: Graph, windows: dict[int, Window], made_global: set[int],
                    input_shape: tuple[int, ...] | None = None) -> Shapes:
    """Every blob's shape once a conversion is applied: `windows` are the new
    windows by layer index, `made_global` the poolings made global."""
    return infer_shapes(graph, window_of=lambda l: windows.get(l.index, l.window),
                        is_global=lambda l: l.index in made_global or l.is_global_pool,
                        input_shape=input_shape)
