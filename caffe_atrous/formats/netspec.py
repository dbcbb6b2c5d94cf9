"""The boundary between protobuf messages and plain Python.

`read_layers` turns each LayerParameter into a LayerSpec: name, type, blobs,
phases and the typed facts the analysis needs (window geometry, pooling mode,
scales, ...). `apply_edits` writes a list of LayerEdits back into a copy of the
NetParameter, keeping each field in the form the user wrote it (kernel_size vs
kernel_h/kernel_w, one value vs one per axis). Nothing else in caffe_atrous
touches protobuf messages of layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import AtrousError
from ..window import Pair, Window
from . import caffe_pb2

# The network message, for the rest of caffe_atrous an opaque handle that only
# this package looks into.
Net = caffe_pb2.NetParameter

PHASES = ("TRAIN", "TEST")

# Layer types that read nothing and produce network inputs.
DATA_TYPES = {"Data", "ImageData", "ImageSegData", "AnnotatedData", "DummyData", "HDF5Data",
              "MemoryData", "WindowData", "VideoData", "Input"}


@dataclass
class LayerSpec:
    """One layer as plain data."""

    index: int
    name: str
    type: str
    bottoms: tuple[str, ...]
    tops: tuple[str, ...]
    phases: frozenset[str]
    line: int | None = None
    window: Window | None = None           # convolution, deconvolution, local pooling
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def is_conv(self) -> bool:
        return self.attrs.get("conv") is not None

    @property
    def is_deconv(self) -> bool:
        return self.attrs.get("conv") == "deconv"

    @property
    def is_pool(self) -> bool:
        return "pool" in self.attrs


@dataclass
class LayerEdit:
    """Changes to write into one layer (None: leave the field alone)."""

    index: int
    window: Window | None = None
    global_pooling: bool = False
    clear_engine: bool = False
    spatial_scale: float | None = None
    param_str: str | None = None
    prior_step: dict[str, float] | None = None


# ----------------------------------------------------------------- reading --

def _rule_matches(rule: caffe_pb2.NetStateRule, phase: str, state: caffe_pb2.NetState) -> bool:
    """Caffe's StateMeetsRule for a net state of the given phase."""
    if rule.HasField("phase") and caffe_pb2.Phase.Name(rule.phase) != phase:
        return False
    if rule.HasField("min_level") and state.level < rule.min_level:
        return False
    if rule.HasField("max_level") and state.level > rule.max_level:
        return False
    stages = set(state.stage)
    if any(s not in stages for s in rule.stage):
        return False
    if any(s in stages for s in rule.not_stage):
        return False
    return True


def _phases(layer: caffe_pb2.LayerParameter, state: caffe_pb2.NetState) -> frozenset[str]:
    if layer.include and layer.exclude:
        raise AtrousError("a layer may have include rules or exclude rules, not both",
                          layer=layer.name)
    if layer.include:
        return frozenset(p for p in PHASES if any(_rule_matches(r, p, state) for r in layer.include))
    return frozenset(p for p in PHASES if not any(_rule_matches(r, p, state) for r in layer.exclude))


def _axes(name: str, values, h: int | None, w: int | None, default: int | None) -> Pair:
    """Per-axis value from `values` (one or two numbers) or the _h/_w pair."""
    if h is not None or w is not None:
        if h is None or w is None:
            raise AtrousError(f"{name}_h and {name}_w must be given together")
        return (h, w)
    values = list(values)
    if not values:
        if default is None:
            raise AtrousError(f"no {name} given")
        return (default, default)
    if len(values) == 1:
        return (values[0], values[0])
    if len(values) == 2:
        return (values[0], values[1])
    raise AtrousError(f"{len(values)} values for {name}: only 2-D (height, width) networks "
                      "are supported")


def _opt(msg, name: str):
    return getattr(msg, name) if msg.HasField(name) else None


def _conv_window(p: caffe_pb2.ConvolutionParameter) -> Window:
    if p.axis != 1:
        raise AtrousError("convolution_param.axis other than 1 is not supported")
    if p.HasField("hole") or p.HasField("hole_h") or p.HasField("hole_w"):
        raise AtrousError("DeepLab v1 `hole` in a V2 file: write it as `dilation`")
    return Window(
        kernel=_axes("kernel", p.kernel_size, _opt(p, "kernel_h"), _opt(p, "kernel_w"), None),
        stride=_axes("stride", p.stride, _opt(p, "stride_h"), _opt(p, "stride_w"), 1),
        pad=_axes("pad", p.pad, _opt(p, "pad_h"), _opt(p, "pad_w"), 0),
        dilation=_axes("dilation", p.dilation, None, None, 1),
    )


def _pool_window(p: caffe_pb2.PoolingParameter) -> Window:
    single = lambda n: [getattr(p, n)] if p.HasField(n) else []  # noqa: E731
    stride = single("stride") or [1]
    return Window(
        kernel=_axes("kernel", single("kernel_size"), _opt(p, "kernel_h"), _opt(p, "kernel_w"), None),
        stride=_axes("stride", stride, _opt(p, "stride_h"), _opt(p, "stride_w"), 1),
        pad=_axes("pad", single("pad"), _opt(p, "pad_h"), _opt(p, "pad_w"), 0),
    )


def _shape(shape: caffe_pb2.BlobShape) -> tuple[int, ...]:
    return tuple(int(d) for d in shape.dim)


def _read_attrs(layer: caffe_pb2.LayerParameter, spec: LayerSpec) -> None:
    a = spec.attrs
    t = layer.type
    if layer.HasField("convolution_param") or t in ("Convolution", "Deconvolution"):
        p = layer.convolution_param
        a["conv"] = "deconv" if "Deconvolution" in t else "conv"
        spec.window = _conv_window(p)
        a.update(num_output=p.num_output, group=p.group, bias_term=p.bias_term,
                 engine=caffe_pb2.ConvolutionParameter.Engine.Name(p.engine))
    if t == "Pooling" or layer.HasField("pooling_param"):
        p = layer.pooling_param
        a["pool"] = caffe_pb2.PoolingParameter.PoolMethod.Name(p.pool)
        a["global_pooling"] = p.global_pooling
        if p.HasField("ceil_mode"):
            a["ceil_mode"] = p.ceil_mode
        else:
            a["ceil_mode"] = p.round_mode == caffe_pb2.PoolingParameter.CEIL
        if not p.global_pooling:
            spec.window = _pool_window(p)
    if t == "InnerProduct" or layer.HasField("inner_product_param"):
        p = layer.inner_product_param
        a.update(ip=True, num_output=p.num_output, bias_term=p.bias_term, axis=p.axis,
                 transpose=p.transpose)
    if layer.HasField("roi_pooling_param"):
        p = layer.roi_pooling_param
        a.update(spatial_scale=p.spatial_scale, pooled=(p.pooled_h, p.pooled_w))
    if layer.HasField("psroi_pooling_param"):
        p = layer.psroi_pooling_param
        a.update(spatial_scale=p.spatial_scale, output_dim=p.output_dim, group_size=p.group_size)
    if layer.HasField("python_param"):
        p = layer.python_param
        a.update(param_str=p.param_str, module=p.module, python_layer=p.layer)
    if layer.HasField("prior_box_param"):
        p = layer.prior_box_param
        a["prior_step"] = {n: getattr(p, n) for n in ("step", "step_h", "step_w") if p.HasField(n)}
    if layer.HasField("interp_param"):
        p = layer.interp_param
        a["interp"] = {n: getattr(p, n) for n in ("height", "width", "zoom_factor",
                                                  "shrink_factor", "pad_beg", "pad_end")}
    if layer.HasField("crop_param") or t == "Crop":
        a.update(crop_axis=layer.crop_param.axis, crop_offset=tuple(layer.crop_param.offset))
    if t == "Concat":
        p = layer.concat_param
        a["axis"] = p.axis if p.HasField("axis") or not p.HasField("concat_dim") else p.concat_dim
    if t == "Slice":
        p = layer.slice_param
        a["axis"] = p.axis if p.HasField("axis") or not p.HasField("slice_dim") else p.slice_dim
        a["slice_point"] = tuple(p.slice_point)
    if t == "Eltwise":
        a["operation"] = caffe_pb2.EltwiseParameter.EltwiseOp.Name(layer.eltwise_param.operation)
    if t == "Flatten":
        a.update(axis=layer.flatten_param.axis, end_axis=layer.flatten_param.end_axis)
    if t == "Reshape":
        p = layer.reshape_param
        a.update(reshape=_shape(p.shape), axis=p.axis, num_axes=p.num_axes)
    if t == "Permute":
        a["order"] = tuple(layer.permute_param.order)
    if t in ("Softmax", "SoftmaxWithLoss"):
        a["axis"] = layer.softmax_param.axis
    if t in ("Scale", "Bias"):
        p = layer.scale_param if t == "Scale" else layer.bias_param
        a.update(axis=p.axis, num_axes=p.num_axes, bias_term=getattr(p, "bias_term", False))
    if t == "PReLU":
        a["channel_shared"] = layer.prelu_param.channel_shared
    if t == "Normalize":
        a["channel_shared"] = layer.norm_param.channel_shared
    if t == "Input":
        a["shapes"] = [_shape(s) for s in layer.input_param.shape]
    if t == "DummyData":
        p = layer.dummy_data_param
        a["shapes"] = [_shape(s) for s in p.shape] or [
            (n, c, h, w) for n, c, h, w in zip(p.num, p.channels, p.height, p.width)]
    if t in DATA_TYPES and t not in ("Input", "DummyData"):
        tp = layer.transform_param
        crop_h = tp.crop_h or tp.crop_size
        crop_w = tp.crop_w or tp.crop_size
        batch = None
        for pname in ("data_param", "image_data_param", "memory_data_param", "window_data_param"):
            if layer.HasField(pname):
                batch = getattr(layer, pname).batch_size or None
        size = None
        if crop_h and crop_w:
            size = (crop_h, crop_w)
        elif layer.HasField("image_data_param") and layer.image_data_param.new_height:
            size = (layer.image_data_param.new_height, layer.image_data_param.new_width)
        elif layer.HasField("memory_data_param"):
            p = layer.memory_data_param
            size = (p.height, p.width)
        a.update(data_size=size, batch=batch)


def read_layers(net: caffe_pb2.NetParameter, lines: list[int] | None = None) -> list[LayerSpec]:
    """Plain LayerSpecs for a V2 NetParameter, in file order."""
    if net.layers:
        raise AtrousError("internal: V1 layers must be upgraded before reading")
    specs = []
    state = net.state
    for i, layer in enumerate(net.layer):
        line = lines[i] if lines and i < len(lines) else None
        spec = LayerSpec(index=i, name=layer.name, type=layer.type, bottoms=tuple(layer.bottom),
                         tops=tuple(layer.top), phases=frozenset(), line=line)
        try:
            if not layer.name:
                raise AtrousError(f"layer number {i + 1} has no name; give it one")
            spec.phases = _phases(layer, state)
            _read_attrs(layer, spec)
        except AtrousError as exc:
            raise AtrousError(exc.message, line=line, layer=layer.name or None) from None
        specs.append(spec)
    return specs


def net_inputs(net: caffe_pb2.NetParameter) -> list[tuple[str, tuple[int, ...] | None]]:
    """Network-level inputs (`input` with `input_shape` or `input_dim`)."""
    names = list(net.input)
    if not names:
        return []
    if net.input_shape:
        shapes = [_shape(s) for s in net.input_shape]
        if len(shapes) == 1 and len(names) > 1:
            shapes = shapes * len(names)
    elif net.input_dim:
        dims = list(net.input_dim)
        if len(dims) != 4 * len(names):
            raise AtrousError(f"{len(names)} input(s) need {4 * len(names)} input_dim values, "
                              f"found {len(dims)}")
        shapes = [tuple(dims[4 * i:4 * i + 4]) for i in range(len(names))]
    else:
        shapes = [None] * len(names)
    if len(shapes) != len(names):
        raise AtrousError(f"{len(names)} inputs but {len(shapes)} input_shape entries")
    return list(zip(names, shapes))


# ----------------------------------------------------------------- writing --

def _set_repeated(p, name: str, value: Pair, keep_absent_if: int) -> None:
    """Write a per-axis value into a repeated field (one value when axes agree)."""
    present = len(getattr(p, name)) > 0
    del getattr(p, name)[:]
    if value[0] == value[1]:
        if present or value[0] != keep_absent_if:
            getattr(p, name).append(value[0])
    else:
        getattr(p, name).extend(value)


def _set_axes(p, name: str, value: Pair, default: int, repeated: bool) -> None:
    """Write value into `name` or `name_h`/`name_w`, whichever form p uses."""
    h, w = f"{name}_h", f"{name}_w"
    if p.HasField(h) or p.HasField(w):
        setattr(p, h, value[0])
        setattr(p, w, value[1])
        return
    if repeated:
        _set_repeated(p, name, value, default)
        return
    if value[0] == value[1]:
        if p.HasField(name) or value[0] != default:
            setattr(p, name, value[0])
    else:
        p.ClearField(name)
        setattr(p, h, value[0])
        setattr(p, w, value[1])


def _write_conv(p: caffe_pb2.ConvolutionParameter, w: Window) -> None:
    _set_axes(p, "stride", w.stride, 1, repeated=True)
    _set_axes(p, "pad", w.pad, 0, repeated=True)
    _set_repeated(p, "dilation", w.dilation, 1)


def _write_pool(p: caffe_pb2.PoolingParameter, w: Window) -> None:
    if p.HasField("kernel_h") or p.HasField("kernel_w") or w.kernel[0] != w.kernel[1]:
        p.ClearField("kernel_size")
        p.kernel_h, p.kernel_w = w.kernel
    else:
        p.kernel_size = w.kernel[0]
    _set_axes(p, "stride", w.stride, 1, repeated=False)
    _set_axes(p, "pad", w.pad, 0, repeated=False)


def apply_edits(net: caffe_pb2.NetParameter, edits: list[LayerEdit]) -> caffe_pb2.NetParameter:
    """Return a copy of `net` (V2) with every edit written in."""
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net)
    for e in edits:
        layer = out.layer[e.index]
        if e.window is not None:
            if layer.HasField("convolution_param") or layer.type in ("Convolution", "Deconvolution"):
                _write_conv(layer.convolution_param, e.window)
            else:
                _write_pool(layer.pooling_param, e.window)
        if e.global_pooling:
            p = layer.pooling_param
            for f in ("kernel_size", "kernel_h", "kernel_w", "stride", "stride_h", "stride_w",
                      "pad", "pad_h", "pad_w"):
                p.ClearField(f)
            p.global_pooling = True
        if e.clear_engine:
            layer.convolution_param.ClearField("engine")
        if e.spatial_scale is not None:
            pname = "psroi_pooling_param" if layer.HasField("psroi_pooling_param") else "roi_pooling_param"
            getattr(layer, pname).spatial_scale = e.spatial_scale
        if e.param_str is not None:
            layer.python_param.param_str = e.param_str
        if e.prior_step:
            for k, v in e.prior_step.items():
                setattr(layer.prior_box_param, k, v)
    return out


def net_name(net: caffe_pb2.NetParameter) -> str:
    return net.name


def layer_names(net: caffe_pb2.NetParameter) -> list[str]:
    return [l.name for l in net.layer]


def layer_signature(net: caffe_pb2.NetParameter) -> list[tuple[str, str]]:
    """(name, type) of every layer, in order: what a conversion must keep."""
    return [(l.name, l.type) for l in net.layer]


def truncate_after(net: caffe_pb2.NetParameter, index: int) -> caffe_pb2.NetParameter:
    """Copy of `net` keeping layers 0..index."""
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net)
    kept = list(out.layer)[: index + 1]
    out.ClearField("layer")
    out.layer.extend(kept)
    return out
