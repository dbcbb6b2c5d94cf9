"""The boundary between protobuf messages and plain Python.

`read_layers` turns each LayerParameter into a LayerSpec: name, type, blobs,
phases and the typed record of its parameters (facts.py, read by layers.py).
`apply_edits` writes a list of LayerEdits back into a copy of the
NetParameter, keeping each field in the form the user wrote it (kernel_size vs
kernel_h/kernel_w, one value vs one per axis). Nothing else in caffe_atrous
touches protobuf messages of layers. Message types come from the messages
themselves, so a network parsed with a fork's schema (--proto) works the same.
"""

from __future__ import annotations

from typing import NamedTuple

from ..errors import AtrousError
from ..window import Pair, Window
from . import facts
from .layers import DATA_TYPES, checked_dims, read_params
from .schema import enum_name, has

# The network message, for the rest of caffe_atrous an opaque handle that only
# this package looks into.
Net = object

PHASES = ("TRAIN", "TEST")
__all__ = ["DATA_TYPES", "PHASES", "LayerSpec", "LayerEdit", "ConvHead", "read_layers",
           "apply_edits"]


class LayerSpec:
    """One layer as plain data: what the file says (the first eight fields, which
    equality compares) and typed views of its parameters, set once since every
    analysis loop reads them. (A plain class: importing dataclasses costs a tenth
    of a conversion.)"""

    FIELDS = ("index", "name", "type", "bottoms", "tops", "phases", "line", "params")
    __slots__ = FIELDS + ("conv", "pool", "ip", "resize", "upsample", "window", "is_deconv",
                          "is_global_pool")

    def __init__(self, index: int, name: str, type: str, bottoms: tuple[str, ...],
                 tops: tuple[str, ...], phases: frozenset[str], line: int | None = None,
                 params: facts.LayerParams | None = None):
        self.index, self.name, self.type = index, name, type
        self.bottoms, self.tops, self.phases = bottoms, tops, phases
        self.line, self.params = line, params
        p = params
        self.conv: facts.Conv | None = p if isinstance(p, facts.Conv) else None  # (de)convolution
        self.pool: facts.Pool | None = p if isinstance(p, facts.Pool) else None
        self.ip: facts.InnerProduct | None = p if isinstance(p, facts.InnerProduct) else None
        self.resize: facts.Resize | None = p if isinstance(p, facts.Resize) else None
        self.upsample: facts.Upsample | None = p if isinstance(p, facts.Upsample) else None
        # Sliding-window geometry of a convolution, deconvolution or local pooling.
        self.window: Window | None = \
            p.window if self.conv is not None or self.pool is not None else None
        self.is_deconv = self.conv is not None and self.conv.deconv
        self.is_global_pool = self.pool is not None and self.pool.is_global

    def _values(self) -> tuple:
        return tuple(getattr(self, f) for f in LayerSpec.FIELDS)

    def __eq__(self, other) -> bool:
        return type(other) is LayerSpec and self._values() == other._values()

    __hash__ = None                              # mutable, compared by value

    def __repr__(self) -> str:
        return "LayerSpec(" + ", ".join(f"{f}={getattr(self, f)!r}" for f in LayerSpec.FIELDS) + ")"

    def replace(self, **changes) -> LayerSpec:
        """A copy with some of the first eight fields changed."""
        return LayerSpec(**{**dict(zip(LayerSpec.FIELDS, self._values())), **changes})


class ConvHead(NamedTuple):
    """An InnerProduct rewritten as a Convolution (--fc-to-conv): its geometry
    and outputs; bias_term and the fillers carry over."""

    window: Window
    num_output: int


class LayerEdit(NamedTuple):
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


# ----------------------------------------------------------------- reading --

def _rule_matches(rule, phase: str, state) -> bool:
    """Caffe's StateMeetsRule for a net state of the given phase."""
    if rule.HasField("phase") and enum_name(rule, "phase") != phase:
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


_ALL_PHASES = frozenset(PHASES)


def _phases(layer, state) -> frozenset[str]:
    if not layer.include and not layer.exclude:
        return _ALL_PHASES
    if layer.include and layer.exclude:
        raise AtrousError("a layer may have include rules or exclude rules, not both",
                          layer=layer.name)
    if layer.include:
        return frozenset(p for p in PHASES if any(_rule_matches(r, p, state) for r in layer.include))
    return frozenset(p for p in PHASES if not any(_rule_matches(r, p, state) for r in layer.exclude))


def read_layers(net, lines: list[int] | None = None, path: str | None = None) -> list[LayerSpec]:
    """Plain LayerSpecs for a V2 NetParameter, in file order."""
    if getattr(net, "layers", None):
        raise AtrousError("internal: V1 layers must be upgraded before reading")
    specs = []
    state = net.state
    for i, layer in enumerate(net.layer):
        line = lines[i] if lines and i < len(lines) else None
        name = layer.name
        try:
            if not name:
                raise AtrousError(f"layer number {i + 1} has no name; give it one")
            spec = LayerSpec(i, name, layer.type, tuple(layer.bottom), tuple(layer.top),
                             _phases(layer, state), line, read_params(layer))
        except AtrousError as exc:
            raise exc.located(path, line, name or None) from None
        specs.append(spec)
    return specs


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


def _set_repeated(p, name: str, value: Pair, keep_absent_if: int) -> None:
    """Write a per-axis value into a repeated field (one value when axes agree)."""
    _fits(name, value)
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
    _fits(name, value)
    if has(p, h) or has(p, w):
        setattr(p, h, value[0])
        setattr(p, w, value[1])
        return
    if repeated:
        _set_repeated(p, name, value, default)
        return
    if value[0] == value[1]:
        if has(p, name) or value[0] != default:
            setattr(p, name, value[0])
    else:
        p.ClearField(name)
        setattr(p, h, value[0])
        setattr(p, w, value[1])


def _write_conv(p, w: Window) -> None:
    _set_axes(p, "stride", w.stride, 1, repeated=True)
    _set_axes(p, "pad", w.pad, 0, repeated=True)
    _set_repeated(p, "dilation", w.dilation, 1)


def _write_pool(p, w: Window) -> None:
    if has(p, "kernel_h") or has(p, "kernel_w") or w.kernel[0] != w.kernel[1]:
        p.ClearField("kernel_size")
        p.kernel_h, p.kernel_w = w.kernel
    else:
        p.kernel_size = w.kernel[0]
    _set_axes(p, "stride", w.stride, 1, repeated=False)
    _set_axes(p, "pad", w.pad, 0, repeated=False)


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


def apply_edits(net, edits: list[LayerEdit]):
    """Return a copy of `net` (V2) with every edit written in."""
    out = type(net)()
    out.CopyFrom(net)
    for e in edits:
        layer = out.layer[e.index]
        try:
            _apply(layer, e)
        except AtrousError as exc:
            raise AtrousError(exc.message, layer=layer.name) from None
    return out


def _apply(layer, e: LayerEdit) -> None:
    """Write one edit into its layer."""
    if e.to_conv is not None:
        _write_head(layer, e.to_conv)
    if e.window is not None:
        if has(layer, "convolution_param") or layer.type in ("Convolution", "Deconvolution"):
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
        pname = "psroi_pooling_param" if has(layer, "psroi_pooling_param") else "roi_pooling_param"
        getattr(layer, pname).spatial_scale = e.spatial_scale
    if e.param_str is not None:
        layer.python_param.param_str = e.param_str
    if e.prior_step:
        for k, v in e.prior_step.items():
            setattr(layer.prior_box_param, k, v)
    if e.resize_to is not None:
        _write_size(layer, e.resize_to)


def _write_size(layer, size: Pair) -> None:
    """A fixed output size, in the field pair the layer already uses."""
    if has(layer, "upsample_param"):
        layer.upsample_param.upsample_h, layer.upsample_param.upsample_w = size
    else:
        layer.interp_param.height, layer.interp_param.width = size


def net_name(net) -> str:
    return net.name


def layer_names(net) -> list[str]:
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
