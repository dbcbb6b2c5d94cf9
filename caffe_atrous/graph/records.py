"""What caffe_atrous knows about a layer's parameters, as small frozen records.

graph/reader.py fills one of these from each layer's message; the rest of
caffe_atrous asks typed questions of them (`layer.conv.group`,
`layer.pool.is_global`) and never sees protobuf. A layer whose type has no
record here has `params` None: it is known by its type name alone.

The records are NamedTuples: defining a frozen dataclass costs about seven
times as much, and every run of the command line imports this module.
"""

from __future__ import annotations

from typing import NamedTuple

from ..core.window import Pair, Window

Shape = tuple


class Conv(NamedTuple):
    """Convolution, Deconvolution and fork types that use convolution_param."""

    window: Window
    num_output: int
    group: int = 1
    bias_term: bool = True
    engine: str = "DEFAULT"
    deconv: bool = False


class Pool(NamedTuple):
    """Pooling; `window` is None for a global pooling."""

    method: str
    window: Window | None
    ceil_mode: bool = True

    @property
    def is_global(self) -> bool:
        """Whether the pooling covers its whole input (global_pooling)."""
        return self.window is None


class InnerProduct(NamedTuple):
    """InnerProduct: `num_output` outputs from the axes from `axis` on; `transpose` stores
    the weights as (inputs, outputs)."""

    num_output: int
    bias_term: bool = True
    axis: int = 1
    transpose: bool = False


class Resize(NamedTuple):
    """PSPNet/DeepLab Interp: a fixed size, or zoom/shrink factors, with padding."""

    height: int = 0
    width: int = 0
    zoom_factor: int = 1
    shrink_factor: int = 1
    pad_beg: int = 0
    pad_end: int = 0

    @property
    def fixed(self) -> bool:
        """Whether both `height` and `width` are set: a fixed output size, which the factors
        then do not change."""
        return bool(self.height and self.width)


class Upsample(NamedTuple):
    """SegNet/ENet Upsample (max-unpooling with the mask of a pooling): a scale
    per axis, or an explicit output size (`size`, from upsample_h/upsample_w),
    and the deprecated pad_out_h/_w (output one smaller than scale x input)."""

    scale: Pair = (2, 2)
    size: Pair | None = None
    pad_out: tuple[bool, bool] = (False, False)

    @property
    def fixed(self) -> bool:
        """Whether an explicit output `size` is given, which `scale` then does not change."""
        return self.size is not None


class RoiPool(NamedTuple):
    """ROIPooling (pooled size) and PSROIPooling (output_dim x group x group)."""

    spatial_scale: float
    pooled: Pair | None = None
    output_dim: int | None = None
    group_size: int | None = None


class PriorBox(NamedTuple):
    """SSD PriorBox: the steps it sets, as ((field, value), ...)."""

    steps: tuple[tuple[str, float], ...] = ()


class PythonLayer(NamedTuple):
    """Python: the `module` and `layer` (class) it runs, and the `param_str` it is given."""

    module: str
    layer: str
    param_str: str = ""


class Crop(NamedTuple):
    """Crop: the axes from `axis` on cut to the size of the second bottom, at `offset`
    (a single one for all those axes, or one each; none: 0)."""

    axis: int = 2
    offset: tuple[int, ...] = ()


class Axis(NamedTuple):
    """Layers whose only geometric fact is an axis: Concat, Softmax."""

    axis: int = 1


class Slice(NamedTuple):
    """Slice: the input cut along `axis` at `points`, or without points into equal parts,
    one per top."""

    axis: int = 1
    points: tuple[int, ...] = ()


class Eltwise(NamedTuple):
    """Eltwise: `operation` (PROD, SUM or MAX) over inputs of one shape."""

    operation: str = "SUM"


class Flatten(NamedTuple):
    """Flatten: the axes `axis` to `end_axis` (both included) made one."""

    axis: int = 1
    end_axis: int = -1


class Reshape(NamedTuple):
    """Reshape: the axes [axis, axis + num_axes) (num_axes -1: to the end) become `shape`,
    where 0 keeps the input's dimension and -1 is inferred."""

    shape: Shape = ()
    axis: int = 0
    num_axes: int = -1


class Permute(NamedTuple):
    """SSD Permute: the output's axes as input axes in `order`; the axes it does not name
    follow in their order."""

    order: tuple[int, ...] = ()


class Affine(NamedTuple):
    """Scale and Bias: parameters over axes [axis, axis + num_axes)."""

    axis: int = 1
    num_axes: int = 1
    bias_term: bool = False


class ChannelWise(NamedTuple):
    """PReLU and SSD's Normalize: one parameter per channel, or one in all."""

    channel_shared: bool = False


class DataShapes(NamedTuple):
    """A layer that makes network inputs: one shape per top (None: unknown;
    an entry of a shape may be None, such as a data layer's channels)."""

    shapes: tuple[Shape | None, ...] = ()

    def shape(self, index: int) -> Shape | None:
        """The shape of top `index` (tops past the last shape given take that one), or None
        when no shape is given."""
        if not self.shapes:
            return None
        return self.shapes[min(index, len(self.shapes) - 1)]


LayerParams = (Conv | Pool | InnerProduct | Resize | Upsample | RoiPool | PriorBox | PythonLayer
               | Crop | Axis | Slice | Eltwise | Flatten | Reshape | Permute | Affine | ChannelWise
               | DataShapes)


PHASES = ("TRAIN", "TEST")


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
                 params: LayerParams | None = None):
        self.index, self.name, self.type = index, name, type
        self.bottoms, self.tops, self.phases = bottoms, tops, phases
        self.line, self.params = line, params
        p = params
        self.conv: Conv | None = p if isinstance(p, Conv) else None  # (de)convolution
        self.pool: Pool | None = p if isinstance(p, Pool) else None
        self.ip: InnerProduct | None = p if isinstance(p, InnerProduct) else None
        self.resize: Resize | None = p if isinstance(p, Resize) else None
        self.upsample: Upsample | None = p if isinstance(p, Upsample) else None
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
