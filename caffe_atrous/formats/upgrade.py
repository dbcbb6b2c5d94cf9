"""Upgrading legacy (V1 `layers`) networks to V2 `layer` form, as Caffe's
upgrade_net_proto_text does, plus DeepLab v1's `hole` spelling of dilation.

The upgrade returns notes for anything that has no V2 equivalent and had to be
dropped, so the command line can say so instead of losing it silently.
"""

from __future__ import annotations

from typing import NamedTuple

from ..core.errors import AtrousError, ConversionWarning
from .netspec import declared_inputs
from .schema import enum_name, has

# V1 enum name -> V2 type string (BVLC's table, plus DeepLab v1's types).
V1_TYPES = {
    "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL",
    "CONCAT": "Concat", "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution",
    "DATA": "Data", "DECONVOLUTION": "Deconvolution", "DROPOUT": "Dropout",
    "DUMMY_DATA": "DummyData", "EUCLIDEAN_LOSS": "EuclideanLoss", "ELTWISE": "Eltwise",
    "EXP": "Exp", "FLATTEN": "Flatten", "HDF5_DATA": "HDF5Data", "HDF5_OUTPUT": "HDF5Output",
    "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col", "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct", "LRN": "LRN",
    "MEMORY_DATA": "MemoryData", "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN", "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "SILENCE": "Silence",
    "SOFTMAX": "Softmax", "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split", "SLICE": "Slice",
    "TANH": "TanH", "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
    "IMAGE_SEG_DATA": "ImageSegData", "SEG_ACCURACY": "SegAccuracy", "INTERP": "Interp",
    "PADDING": "Padding", "MAT_WRITE": "MatWrite", "MAT_READ": "MatRead",
    "DENSE_CRF": "DenseCRF", "DOMINANT_CHANNEL": "DominantChannel",
    "BIAS_CHANNEL": "BiasChannel", "UNIQUE_LABEL": "UniqueLabel", "CENSOR_LABEL": "CensorLabel",
    "ADAPTIVE_BIAS_CHANNEL": "AdaptiveBiasChannel", "CHANNEL_AGGREGATOR": "ChannelAggregator",
    "IGNORE_OVERLAY": "IgnoreOverlay", "HISTOGRAM": "Histogram", "RELATIVE_ERROR": "RelativeError",
    "GAIN_CHANNEL": "GainChannel", "ONEHOT": "OneHot",
}

# Deprecated data-layer fields that Caffe moves into transform_param.
_TRANSFORM_FIELDS = ("scale", "mean_file", "crop_size", "mirror")
_DATA_PARAMS = ("data_param", "image_data_param", "window_data_param")

# V1 fields handled explicitly below; every other *_param is copied by name.
_HANDLED = {"bottom", "top", "name", "include", "exclude", "type", "blobs", "param",
            "blob_share_mode", "blobs_lr", "weight_decay", "loss_weight", "layer",
            "softmaxloss_param", "strict_dim"}


def hole_to_dilation(conv) -> bool:
    """Rewrite DeepLab v1's hole/hole_h/hole_w as dilation; True if it changed."""
    if not (has(conv, "hole") or has(conv, "hole_h") or has(conv, "hole_w")):
        return False
    h = conv.hole_h if has(conv, "hole_h") else conv.hole
    w = conv.hole_w if has(conv, "hole_w") else conv.hole
    if conv.dilation:
        raise AtrousError("convolution_param sets both `hole` and `dilation`; keep one")
    del conv.dilation[:]
    conv.dilation.extend([h] if h == w else [h, w])
    for name in ("hole", "hole_h", "hole_w"):
        conv.ClearField(name)
    if list(conv.dilation) == [1]:
        del conv.dilation[:]
    return True


def _upgrade_layer(v1, out, notes: list[ConversionWarning]) -> None:
    out.name = v1.name
    out.type = V1_TYPES.get(enum_name(v1, "type"), "")
    if not out.type:
        raise AtrousError("legacy layer without a type; give it one", layer=v1.name)
    out.bottom.extend(v1.bottom)
    out.top.extend(v1.top)
    out.include.extend(v1.include)
    out.exclude.extend(v1.exclude)
    out.blobs.extend(v1.blobs)
    out.loss_weight.extend(v1.loss_weight)
    n_specs = max(len(v1.param), len(v1.blob_share_mode), len(v1.blobs_lr), len(v1.weight_decay))
    for i in range(n_specs):
        spec = out.param.add()
        if i < len(v1.param) and v1.param[i]:
            spec.name = v1.param[i]
        if i < len(v1.blob_share_mode):
            spec.share_mode = v1.blob_share_mode[i]
        if i < len(v1.blobs_lr):
            spec.lr_mult = v1.blobs_lr[i]
        if i < len(v1.weight_decay):
            spec.decay_mult = v1.weight_decay[i]
    for fd, value in v1.ListFields():
        if fd.name in _HANDLED:
            continue
        getattr(out, fd.name).CopyFrom(value)
    if has(v1, "softmaxloss_param"):
        sl = v1.softmaxloss_param
        if sl.weight_source:
            raise AtrousError("softmaxloss_param.weight_source has no V2 equivalent; remove it "
                              "before converting", layer=v1.name)
        if sl.ignore_label:
            out.loss_param.ignore_label = sl.ignore_label[0]
    if has(v1, "strict_dim"):
        notes.append(ConversionWarning(v1.name, f"strict_dim: {str(v1.strict_dim).lower()} has no "
                                       "V2 equivalent and is left out (V2 Caffe checks blob "
                                       "shapes strictly)"))
    for pname in _DATA_PARAMS:
        if not has(out, pname):
            continue
        param = getattr(out, pname)
        for f in _TRANSFORM_FIELDS:
            if param.HasField(f):
                setattr(out.transform_param, f, getattr(param, f))
                param.ClearField(f)


class Upgraded(NamedTuple):
    """A V1 net made V2: the net, what could not be carried over, and for every V2
    layer the index of the V1 layer it came from (None: the Input layer made of the
    net's declared inputs)."""

    net: object
    notes: list[ConversionWarning]
    origin: list[int | None]


def upgrade_v1(net) -> Upgraded:
    """A V2 copy of a V1 net: `layers` become `layer`, inputs an Input layer."""
    out = type(net)()
    out.CopyFrom(net)
    out.ClearField("layers")
    notes: list[ConversionWarning] = []
    origin: list[int | None] = []
    if net.input:
        _inputs_to_layer(out)
        origin.append(None)
    origin.extend(range(len(net.layers)))
    for v1 in net.layers:
        try:
            _upgrade_layer(v1, out.layer.add(), notes)
        except AtrousError as exc:
            raise exc.located(layer=v1.name) from None
    for layer in out.layer:
        if has(layer, "convolution_param"):
            hole_to_dilation(layer.convolution_param)
    return Upgraded(out, notes, origin)


def _inputs_to_layer(net) -> None:
    """Move `input`/`input_dim`/`input_shape` into a leading Input layer, as Caffe does."""
    shapes = ([list(s.dim) for s in net.input_shape] if net.input_shape else
              [shape for _, shape in declared_inputs(net) if shape is not None])
    layer = net.layer.add(name="input", type="Input")
    layer.top.extend(net.input)
    for dims in shapes:
        layer.input_param.shape.add().dim.extend(dims)
    for name in ("input", "input_dim", "input_shape"):
        net.ClearField(name)
    layers = [layer] + list(net.layer)[:-1]
    net.ClearField("layer")
    net.layer.extend(layers)
