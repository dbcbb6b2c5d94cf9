"""What caffe_atrous knows about a layer's parameters, as small frozen records.

formats/layers.py fills one of these from each layer's message; the rest of
caffe_atrous asks typed questions of them (`layer.conv.group`,
`layer.pool.is_global`) and never sees protobuf. A layer whose type has no
record here has `params` None: it is known by its type name alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..window import Pair, Window

Shape = tuple


@dataclass(frozen=True)
class Conv:
    """Convolution, Deconvolution and fork types that use convolution_param."""

    window: Window
    num_output: int
    group: int = 1
    bias_term: bool = True
    engine: str = "DEFAULT"
    deconv: bool = False


@dataclass(frozen=True)
class Pool:
    """Pooling; `window` is None for a global pooling."""

    method: str
    window: Window | None
    ceil_mode: bool = True

    @property
    def is_global(self) -> bool:
        return self.window is None


@dataclass(frozen=True)
class InnerProduct:
    num_output: int
    bias_term: bool = True
    axis: int = 1
    transpose: bool = False


@dataclass(frozen=True)
class Resize:
    """PSPNet/DeepLab Interp: a fixed size, or zoom/shrink factors, with padding."""

    height: int = 0
    width: int = 0
    zoom_factor: int = 1
    shrink_factor: int = 1
    pad_beg: int = 0
    pad_end: int = 0

    @property
    def fixed(self) -> bool:
        return bool(self.height and self.width)


@dataclass(frozen=True)
class RoiPool:
    """ROIPooling (pooled size) and PSROIPooling (output_dim x group x group)."""

    spatial_scale: float
    pooled: Pair | None = None
    output_dim: int | None = None
    group_size: int | None = None


@dataclass(frozen=True)
class PriorBox:
    """SSD PriorBox: the steps it sets, as ((field, value), ...)."""

    steps: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class PythonLayer:
    module: str
    layer: str
    param_str: str = ""


@dataclass(frozen=True)
class Crop:
    axis: int = 2
    offset: tuple[int, ...] = ()


@dataclass(frozen=True)
class Axis:
    """Layers whose only geometric fact is an axis: Concat, Softmax."""

    axis: int = 1


@dataclass(frozen=True)
class Slice:
    axis: int = 1
    points: tuple[int, ...] = ()


@dataclass(frozen=True)
class Eltwise:
    operation: str = "SUM"


@dataclass(frozen=True)
class Flatten:
    axis: int = 1
    end_axis: int = -1


@dataclass(frozen=True)
class Reshape:
    shape: Shape = ()
    axis: int = 0
    num_axes: int = -1


@dataclass(frozen=True)
class Permute:
    order: tuple[int, ...] = ()


@dataclass(frozen=True)
class Affine:
    """Scale and Bias: parameters over axes [axis, axis + num_axes)."""

    axis: int = 1
    num_axes: int = 1
    bias_term: bool = False


@dataclass(frozen=True)
class ChannelWise:
    """PReLU and SSD's Normalize: one parameter per channel, or one in all."""

    channel_shared: bool = False


@dataclass(frozen=True)
class Source:
    """A layer that makes network inputs: one shape per top (None: unknown;
    an entry of a shape may be None, such as a data layer's channels)."""

    shapes: tuple[Shape | None, ...] = ()

    def shape(self, index: int) -> Shape | None:
        if not self.shapes:
            return None
        return self.shapes[min(index, len(self.shapes) - 1)]


LayerParams = (Conv | Pool | InnerProduct | Resize | RoiPool | PriorBox | PythonLayer | Crop | Axis
               | Slice | Eltwise | Flatten | Reshape | Permute | Affine | ChannelWise | Source)
