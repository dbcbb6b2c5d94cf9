"""From a LayerParameter message to the typed record of its parameters (records.py).

Which parameter field a layer uses comes from the schema itself, as Caffe's
net_spec derives it: layer type `X` reads the field whose message is
`XParameter` (Convolution -> convolution_param, Interp -> interp_param), plus
the few types that borrow another type's message (Deconvolution). A fork
type that uses a known message under another name (a "DepthwiseConvolution"
with convolution_param) is read by the field it sets. Each field has one
reader below; the readers apply the checks Caffe's layer setup makes
(CHECK_GT on kernel, stride, dilation, num_output), so a value Caffe would
abort on is an error here, naming the field and the value.

Works with any fork's schema: a field the schema lacks is simply absent.
"""

from __future__ import annotations

from typing import Callable

from ..core.errors import AtrousError
from ..core.window import Pair, Window
from . import records
from .kinds import DATA_TYPES
from ..formats.netspec import checked_dims
from ..formats.schema import enum_name, get, has

# Layer types that read another type's parameter message.
_BORROWED = {"Deconvolution": "convolution_param", "SoftmaxWithLoss": "softmax_param",
             "Normalize": "norm_param"}


def _positive(name: str, value: int) -> int:
    if value <= 0:
        raise AtrousError(f"{name} is {value}; Caffe requires {name} > 0: set it to 1 or more")
    return value


def _axes(p, field: str, repeated: bool, default: int | None, positive: bool = False,
          hw: str | None = None) -> Pair:
    """Per-axis (height, width) value of `field` or of its `hw`_h/`hw`_w form, with
    Caffe's checks (one form only; > 0 where Caffe requires it)."""
    hw = hw or field
    h, w = get(p, f"{hw}_h"), get(p, f"{hw}_w")
    values = list(getattr(p, field)) if repeated else ([getattr(p, field)] if has(p, field) else [])
    if (h is not None or w is not None) and values:
        raise AtrousError(f"sets both {field} and {hw}_h/{hw}_w; Caffe accepts one or the "
                          "other: keep one")
    if h is not None or w is not None:
        if h is None or w is None:
            raise AtrousError(f"{hw}_h and {hw}_w must be given together")
        pair = (h, w)
    elif not values:
        if default is None:
            raise AtrousError(f"no {field} given")
        pair = (default, default)
    elif len(values) <= 2:
        pair = (values[0], values[-1])
    else:
        raise AtrousError(f"{len(values)} values for {field}: only 2-D (height, width) networks "
                          "are supported")
    if positive:
        for name, v in zip((f"{hw}_h", f"{hw}_w") if h is not None else (field, field), pair):
            _positive(name, v)
    return pair


def _conv(layer, p) -> records.Conv:
    if get(p, "axis", 1) != 1:
        raise AtrousError("convolution_param.axis other than 1 is not supported")
    if any(has(p, n) for n in ("hole", "hole_h", "hole_w")):
        raise AtrousError("DeepLab v1 `hole` in a V2 file: write it as `dilation`")
    window = Window(kernel=_axes(p, "kernel_size", True, None, True, hw="kernel"),
                    stride=_axes(p, "stride", True, 1, True),
                    pad=_axes(p, "pad", True, 0),
                    dilation=_axes(p, "dilation", True, 1, True))
    num_output, group = _positive("num_output", p.num_output), _positive("group", p.group)
    if num_output % group:
        raise AtrousError(f"group is {group} but num_output {num_output} does not divide by it; "
                          "Caffe requires num_output to be a multiple of group: fix one of them")
    return records.Conv(window=window, num_output=num_output, group=group, bias_term=p.bias_term,
                      engine=enum_name(p, "engine") if "engine" in p.DESCRIPTOR.fields_by_name
                      else "DEFAULT", deconv="Deconvolution" in layer.type)


def _pool(layer, p) -> records.Pool:
    if has(p, "ceil_mode"):
        ceil = p.ceil_mode
    else:
        ceil = not has(p, "round_mode") or enum_name(p, "round_mode") == "CEIL"
    window = None
    if get(p, "global_pooling", False):
        if any(has(p, n) for n in ("kernel_size", "kernel_h", "kernel_w")):
            raise AtrousError("global_pooling: true with a kernel size; Caffe refuses it: "
                              "remove the kernel size")
    else:
        window = Window(kernel=_axes(p, "kernel_size", False, None, True, hw="kernel"),
                        stride=_axes(p, "stride", False, 1, True),
                        pad=_axes(p, "pad", False, 0))
        _pool_pad(p, window)
    return records.Pool(method=enum_name(p, "pool"), window=window, ceil_mode=ceil)


def _pool_pad(p, window: Window) -> None:
    """Caffe's pooling setup: padding only for MAX and AVE, and pad < kernel."""
    if window.pad == (0, 0):
        return
    if enum_name(p, "pool") not in ("MAX", "AVE"):
        raise AtrousError(f"pad {window.pad[0]} with pool: {enum_name(p, 'pool')}; Caffe pads only "
                          "MAX and AVE pooling: remove the pad")
    hw = has(p, "pad_h") or has(p, "pad_w")
    for axis, name in enumerate(("pad_h", "pad_w") if hw else ("pad", "pad")):
        pad, kernel = window.pad[axis], window.kernel[axis]
        if pad >= kernel:
            raise AtrousError(f"{name} is {pad}, not smaller than the kernel ({kernel}); Caffe "
                              f"requires pad < kernel: set {name} to at most {kernel - 1}")


def _inner_product(layer, p) -> records.InnerProduct:
    return records.InnerProduct(num_output=_positive("num_output", p.num_output),
                              bias_term=p.bias_term, axis=p.axis, transpose=get(p, "transpose", False))


def _interp(layer, p) -> records.Resize:
    return records.Resize(height=p.height, width=p.width,
                        zoom_factor=_positive("zoom_factor", p.zoom_factor),
                        shrink_factor=_positive("shrink_factor", p.shrink_factor),
                        pad_beg=p.pad_beg, pad_end=p.pad_end)


def _upsample(layer, p) -> records.Upsample:
    """SegNet's UpsampleLayer setup: upsample_h and upsample_w together, else
    scale or scale_h and scale_w (each > 1); pad_out only with a scale of 2."""
    h, w = get(p, "upsample_h"), get(p, "upsample_w")
    if (h is None) != (w is None):
        raise AtrousError("upsample_h and upsample_w must be given together")
    if h is not None:
        for name, v in (("upsample_h", h), ("upsample_w", w)):
            if v <= 1:
                raise AtrousError(f"{name} is {v}; Caffe requires {name} > 1")
        return records.Upsample(size=(h, w))
    sh, sw = get(p, "scale_h"), get(p, "scale_w")
    if (sh is None) != (sw is None) or (sh is not None and has(p, "scale")):
        raise AtrousError("give scale, or scale_h and scale_w together, or upsample_h and "
                          "upsample_w")
    scale = (sh, sw) if sh is not None else (p.scale, p.scale)
    for name, v in zip(("scale_h", "scale_w") if sh is not None else ("scale", "scale"), scale):
        if v <= 1:
            raise AtrousError(f"{name} is {v}; Caffe requires {name} > 1")
    pad_out = (bool(get(p, "pad_out_h", False)), bool(get(p, "pad_out_w", False)))
    if any(pad and s != 2 for pad, s in zip(pad_out, scale)):
        raise AtrousError("pad_out_h/pad_out_w need a scale of 2 on that axis; Caffe refuses "
                          "other scales: use upsample_h/upsample_w")
    return records.Upsample(scale=scale, pad_out=pad_out)


def _roi(layer, p) -> records.RoiPool:
    return records.RoiPool(spatial_scale=p.spatial_scale, pooled=(p.pooled_h, p.pooled_w))


def _psroi(layer, p) -> records.RoiPool:
    return records.RoiPool(spatial_scale=p.spatial_scale, output_dim=p.output_dim,
                         group_size=p.group_size)


def _prior_box(layer, p) -> records.PriorBox:
    return records.PriorBox(tuple((n, getattr(p, n)) for n in ("step", "step_h", "step_w")
                                if has(p, n)))


def _python(layer, p) -> records.PythonLayer:
    return records.PythonLayer(module=p.module, layer=p.layer, param_str=p.param_str)


def _crop(layer, p) -> records.Crop:
    return records.Crop(axis=p.axis, offset=tuple(p.offset))


def _axis_or_legacy(p, legacy: str) -> int:
    """Concat/Slice `axis`, or the legacy `concat_dim`/`slice_dim` when only it is set."""
    return p.axis if has(p, "axis") or not has(p, legacy) else getattr(p, legacy)


def _input(layer, p) -> records.DataShapes:
    return records.DataShapes(tuple(checked_dims(s.dim) for s in p.shape))


def _dummy(layer, p) -> records.DataShapes:
    shapes = tuple(checked_dims(s.dim) for s in p.shape)
    return records.DataShapes(shapes or tuple(zip(p.num, p.channels, p.height, p.width)))


def _data(layer) -> records.DataShapes:
    """Data layers: (batch, channels unknown, crop or resize size) when the file says."""
    tp = layer.transform_param
    crop_h = get(tp, "crop_h", 0) or tp.crop_size
    crop_w = get(tp, "crop_w", 0) or tp.crop_size
    # PSPNet, DeepLab v2: crop_height and crop_width, both set, win over crop_size
    if get(tp, "crop_height", 0) and get(tp, "crop_width", 0):
        crop_h, crop_w = tp.crop_height, tp.crop_width
    batch, size = None, None
    for pname in ("data_param", "image_data_param", "memory_data_param", "window_data_param",
                  "dense_image_data_param"):
        if has(layer, pname):
            batch = getattr(layer, pname).batch_size or None
    dense = get(layer, "dense_image_data_param")      # SegNet/ENet: its own crop, then resize
    if crop_h and crop_w:
        size = (crop_h, crop_w)
    elif dense is not None and dense.crop_height and dense.crop_width:
        size = (dense.crop_height, dense.crop_width)
    elif dense is not None and dense.new_height and dense.new_width:
        size = (dense.new_height, dense.new_width)
    elif has(layer, "image_data_param") and layer.image_data_param.new_height:
        size = (layer.image_data_param.new_height, layer.image_data_param.new_width)
    elif has(layer, "memory_data_param"):
        size = (layer.memory_data_param.height, layer.memory_data_param.width)
    if not size:
        return records.DataShapes()
    return records.DataShapes(((batch, None) + size,) + (None,) * (len(layer.top) - 1))


# Parameter field -> reader. The one place that says which facts are read.
READERS: dict[str, Callable] = {
    "convolution_param": _conv,
    "pooling_param": _pool,
    "inner_product_param": _inner_product,
    "interp_param": _interp,
    "upsample_param": _upsample,
    "roi_pooling_param": _roi,
    "psroi_pooling_param": _psroi,
    "prior_box_param": _prior_box,
    "python_param": _python,
    "crop_param": _crop,
    "concat_param": lambda layer, p: records.Axis(_axis_or_legacy(p, "concat_dim")),
    "slice_param": lambda layer, p: records.Slice(_axis_or_legacy(p, "slice_dim"),
                                                tuple(p.slice_point)),
    "softmax_param": lambda layer, p: records.Axis(p.axis),
    "eltwise_param": lambda layer, p: records.Eltwise(enum_name(p, "operation")),
    "flatten_param": lambda layer, p: records.Flatten(p.axis, p.end_axis),
    "reshape_param": lambda layer, p: records.Reshape(tuple(int(d) for d in p.shape.dim), p.axis,
                                                    p.num_axes),
    "permute_param": lambda layer, p: records.Permute(tuple(p.order)),
    "scale_param": lambda layer, p: records.Affine(p.axis, p.num_axes, p.bias_term),
    "bias_param": lambda layer, p: records.Affine(p.axis, p.num_axes),
    "prelu_param": lambda layer, p: records.ChannelWise(p.channel_shared),
    "norm_param": lambda layer, p: records.ChannelWise(p.channel_shared),
    "input_param": _input,
    "dummy_data_param": _dummy,
}


def type_fields(layer_descriptor) -> dict[str, str]:
    """Layer type -> its parameter field, derived from the schema (XParameter -> X)."""
    table = {}
    for fd in layer_descriptor.fields:
        message = fd.message_type
        if message is not None and message.name.endswith("Parameter") and fd.name.endswith("_param"):
            table.setdefault(message.name[: -len("Parameter")], fd.name)
    for type_, field in _BORROWED.items():
        if field in layer_descriptor.fields_by_name:
            table[type_] = field
    return table


# Keyed by the descriptor itself, not id(): a schema (--proto) can be released and
# another one's descriptor could then reuse the id.
_TYPE_FIELDS: dict[object, dict[str, str]] = {}


def _field_for(layer) -> str | None:
    """The parameter field that describes this layer, or None."""
    desc = layer.DESCRIPTOR
    table = _TYPE_FIELDS.get(desc)
    if table is None:
        table = _TYPE_FIELDS[desc] = type_fields(desc)
    field = table.get(layer.type)
    if field in READERS:
        return field
    return next((fd.name for fd, _ in layer.ListFields() if fd.name in READERS), None)


def read_params(layer) -> records.LayerParams | None:
    """The typed record of a LayerParameter's parameters (None: type name only)."""
    if layer.type in DATA_TYPES and layer.type not in ("Input", "DummyData"):
        return _data(layer)
    field = _field_for(layer)
    if field is None:
        return None
    try:
        return READERS[field](layer, getattr(layer, field))
    except AtrousError as exc:
        raise AtrousError(f"{field}: {exc.message}") from None
