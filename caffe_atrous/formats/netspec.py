"""Network-level reading and writing of NetParameter messages.

Reading each layer into a plain record is graph/reader.py's job; this module
reads the declared inputs and, the other way, `apply_patches` writes a list of MessagePatches back into a copy of the
NetParameter, keeping each field in the form the user wrote it (kernel_size vs
kernel_h/kernel_w, one value vs one per axis). Nothing else in caffe_atrous
writes into protobuf messages of layers. Message types come from the messages
themselves, so a network parsed with a fork's schema (--proto) works the same.
"""

from __future__ import annotations

from typing import NamedTuple

from ..core.errors import AtrousError
from ..core.window import Pair, Window
from .schema import enum_name, has

# The network message, for the rest of caffe_atrous an opaque handle that only
# this package looks into.
Net = object

__all__ = ["MessagePatch", "ConvHead", "apply_patches", "declared_inputs", "checked_dims"]


class ConvHead(NamedTuple):
    """An InnerProduct rewritten as a Convolution (--fc-to-conv): its geometry
    and outputs; bias_term and the fillers carry over."""

    window: Window
    num_output: int


class MessagePatch(NamedTuple):
    """Changes to write into one layer (None: leave the field alone)."""

    index: int
    window: Window | None = None
    global_pooling: bool = False
    clear_engine: bool = False
    spatial_scale: float | None = None
    param_str: str | None = None
    prior_step: dict[str, float] | None = None
    to_conv: ConvHead | None = None
    resize_to: Pair | None = None       # Interp height/width, Upsample upsample_h/_w
    zoom: Pair | None = None            # Interp (zoom_factor, shrink_factor)
    round_down: bool = False            # Pooling: round_mode FLOOR (a fork's ceil_mode: false)


# ----------------------------------------------------------------- reading --

def checked_dims(dims, what: str = "shape") -> tuple[int, ...]:
    """A declared input shape; Caffe refuses a dimension below 1."""
    dims = tuple(int(d) for d in dims)
    if any(d <= 0 for d in dims):
        raise AtrousError(f"{what} {'x'.join(map(str, dims))} has a dimension below 1; every "
                          "dimension must be 1 or more")
    return dims


def declared_inputs(net) -> list[tuple[str, tuple[int, ...] | None]]:
    """Network-level inputs (`input` with `input_shape` or `input_dim`), with shapes."""
    names = list(net.input)
    if not names:
        return []
    if net.input_shape:
        shapes = [checked_dims(s.dim, "input_shape") for s in net.input_shape]
        if len(shapes) == 1 and len(names) > 1:
            shapes = shapes * len(names)
    elif net.input_dim:
        dims = list(net.input_dim)
        if len(dims) != 4 * len(names):
            raise AtrousError(f"{len(names)} input(s) need {4 * len(names)} input_dim values, "
                              f"found {len(dims)}")
        shapes = [checked_dims(dims[4 * i:4 * i + 4], "input_dim") for i in range(len(names))]
    else:
        shapes = [None] * len(names)
    if len(shapes) != len(names):
        raise AtrousError(f"{len(names)} inputs but {len(shapes)} input_shape entries")
    return list(zip(names, shapes))


# ----------------------------------------------------------------- writing --

UINT32_MAX = 2**32 - 1        # stride, pad, dilation, kernel are uint32 in every caffe.proto


def _fits(name: str, value: Pair) -> None:
    big = max(value)
    if big > UINT32_MAX:
        raise AtrousError(f"{name} would become {big} after conversion, more than its field holds "
                          f"({UINT32_MAX}); check the values this layer's pad and dilation grew from")


def _set_repeated(p, name: str, value: Pair, keep_absent_if: int, explicit: bool) -> None:
    """Write a per-axis value into a repeated field (one value when axes agree); a
    default value stays written only where the layer had the field and the file writes
    defaults (`explicit`: PSPNet writes `stride: 1`, VGG files leave it out)."""
    _fits(name, value)
    present = len(getattr(p, name)) > 0
    del getattr(p, name)[:]
    if value[0] == value[1]:
        if (present and explicit) or value[0] != keep_absent_if:
            getattr(p, name).append(value[0])
    else:
        getattr(p, name).extend(value)


def _set_axes(p, name: str, value: Pair, default: int, repeated: bool, explicit: bool) -> None:
    """Write value into `name` or `name_h`/`name_w`, whichever form p uses."""
    h, w = f"{name}_h", f"{name}_w"
    _fits(name, value)
    if has(p, h) or has(p, w):
        setattr(p, h, value[0])
        setattr(p, w, value[1])
        return
    if repeated:
        _set_repeated(p, name, value, default, explicit)
        return
    if value[0] == value[1]:
        if (has(p, name) and explicit) or value[0] != default:
            setattr(p, name, value[0])
        else:
            p.ClearField(name)
    else:
        p.ClearField(name)
        setattr(p, h, value[0])
        setattr(p, w, value[1])


def _write_conv(p, w: Window, style: frozenset = frozenset()) -> None:
    _set_axes(p, "stride", w.stride, 1, True, "conv.stride" in style)
    _set_axes(p, "pad", w.pad, 0, True, "conv.pad" in style)
    # A dilation back at 1 keeps its line (`dilation: 1`): going the other way again
    # then writes it where it was, so that a round trip gives the file back.
    _set_repeated(p, "dilation", w.dilation, 1, True)


_DEFAULTS = (("conv", "convolution_param", "stride", 1), ("conv", "convolution_param", "pad", 0),
             ("pool", "pooling_param", "stride", 1), ("pool", "pooling_param", "pad", 0))


def _style(net) -> frozenset:
    """The window fields the file writes even at their default value ("conv.stride":
    some convolution says `stride: 1`), so that a value that returns to its default is
    written the way the file writes it."""
    out = set()
    for layer in net.layer:
        for kind, param, field, default in _DEFAULTS:
            if f"{kind}.{field}" in out or not has(layer, param):
                continue
            p = getattr(layer, param)
            value = getattr(p, field)
            if (list(value) == [default]) if param == "convolution_param" else \
                    (has(p, field) and value == default):
                out.add(f"{kind}.{field}")
    return frozenset(out)


def _write_pool(p, w: Window, style: frozenset = frozenset()) -> None:
    if has(p, "kernel_h") or has(p, "kernel_w") or w.kernel[0] != w.kernel[1]:
        p.ClearField("kernel_size")
        p.kernel_h, p.kernel_w = w.kernel
    else:
        p.kernel_size = w.kernel[0]
    _set_axes(p, "stride", w.stride, 1, False, "pool.stride" in style)
    _set_axes(p, "pad", w.pad, 0, False, "pool.pad" in style)


def _round_down(p) -> None:
    """A pooling whose output size rounds down: `ceil_mode: false` where the layer
    already says ceil_mode (a fork's, OpenCV's), else BVLC's `round_mode: FLOOR`."""
    fields = p.DESCRIPTOR.fields_by_name
    if has(p, "ceil_mode") or ("ceil_mode" in fields and "round_mode" not in fields):
        p.ceil_mode = False
    elif "round_mode" in fields:
        p.round_mode = fields["round_mode"].enum_type.values_by_name["FLOOR"].number
    else:
        raise AtrousError("this schema's pooling_param has neither round_mode nor ceil_mode, so "
                          "the pooling cannot round its size down as --align needs; convert "
                          "without --align, or with a caffe.proto that has round_mode")


def _write_head(layer, head: ConvHead) -> None:
    """InnerProduct -> Convolution: type, convolution_param from inner_product_param."""
    ip = layer.inner_product_param
    p = layer.convolution_param
    p.num_output = head.num_output
    if ip.HasField("bias_term"):
        p.bias_term = ip.bias_term
    for name in ("weight_filler", "bias_filler"):
        if ip.HasField(name):
            getattr(p, name).CopyFrom(getattr(ip, name))
    k = head.window.kernel
    if k[0] == k[1]:
        p.kernel_size.append(k[0])
    else:
        p.kernel_h, p.kernel_w = k
    _write_conv(p, head.window)
    layer.ClearField("inner_product_param")
    layer.type = "Convolution"


def apply_patches(net, patches: list[MessagePatch]):
    """A copy of `net` (V2) with every patch written in."""
    out = type(net)()
    out.CopyFrom(net)
    style = _style(net) if patches else frozenset()
    for e in patches:
        layer = out.layer[e.index]
        try:
            _apply(layer, e, style)
        except AtrousError as exc:
            raise AtrousError(exc.message, layer=layer.name) from None
    return out


def _apply(layer, e: MessagePatch, style: frozenset) -> None:
    """Write one edit into its layer (`style`: see _style)."""
    if e.to_conv is not None:
        _write_head(layer, e.to_conv)
    if e.window is not None:
        if has(layer, "convolution_param") or layer.type in ("Convolution", "Deconvolution"):
            _write_conv(layer.convolution_param, e.window, style)
        else:
            _write_pool(layer.pooling_param, e.window, style)
    if e.round_down:
        _round_down(layer.pooling_param)
    if e.global_pooling:
        p = layer.pooling_param
        for f in ("kernel_size", "kernel_h", "kernel_w", "stride", "stride_h", "stride_w",
                  "pad", "pad_h", "pad_w"):
            p.ClearField(f)
        p.global_pooling = True
    if e.clear_engine:
        layer.convolution_param.ClearField("engine")
    if e.spatial_scale is not None:
        pname = "psroi_pooling_param" if has(layer, "psroi_pooling_param") else "roi_pooling_param"
        getattr(layer, pname).spatial_scale = e.spatial_scale
    if e.param_str is not None:
        layer.python_param.param_str = e.param_str
    if e.prior_step:
        for k, v in e.prior_step.items():
            setattr(layer.prior_box_param, k, v)
    if e.resize_to is not None:
        _write_size(layer, e.resize_to)
    if e.zoom is not None:
        p = layer.interp_param
        for name, value in zip(("zoom_factor", "shrink_factor"), e.zoom):
            if value != getattr(p, name) or has(p, name):
                setattr(p, name, value)


def _write_size(layer, size: Pair) -> None:
    """A fixed output size, in the field pair the layer already uses."""
    if has(layer, "upsample_param"):
        layer.upsample_param.upsample_h, layer.upsample_param.upsample_w = size
    else:
        layer.interp_param.height, layer.interp_param.width = size


def net_name(net) -> str:
    """The `name` of the NetParameter `net`."""
    return net.name


def layer_names(net) -> list[str]:
    """The names of the layers of `net`, in order."""
    return [l.name for l in net.layer]


def layer_signature(net) -> list[tuple[str, str]]:
    """(name, type) of every layer, in order: what a conversion must keep."""
    return [(l.name, l.type) for l in net.layer]


def truncate_after(net, index: int):
    """Copy of `net` keeping layers 0..index."""
    out = type(net)()
    out.CopyFrom(net)
    kept = list(out.layer)[: index + 1]
    out.ClearField("layer")
    out.layer.extend(kept)
    return out
