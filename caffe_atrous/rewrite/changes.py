"""The plan as data: the options, one LayerChange per changed layer, the Plan.

Built by phase.py (one phase) and plan.py (all phases); read by pipeline/conversion.py,
the report and the command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from ..analysis.grids import Number

from ..analysis import strides as st
from ..core.errors import ConversionWarning
from ..formats.netspec import ConvHead, MessagePatch
from ..graph.records import LayerSpec
from ..core.window import Pair, Window
from .dilate import SEED
from .heads import Head


class Options(NamedTuple):
    """What to convert, and how: the conversion options as the planner takes them.

    output_stride     the output stride to reach (None when `from_layer` is given)
    from_layer        instead, remove the stride of this layer and of every later one
    mode              SEED (the default convention) or EXACT (function-preserving): dilate.py
    input_shape       N,C,H,W to reason with instead of the declared input (None: declared)
    multi_grid        DeepLab v3 rates of the last stage's units, times its rate (None: off)
    fc_to_conv        make every InnerProduct over a spatial map a Convolution (heads.py)
    decimate          with fc_to_conv, (S, C): the first head keeps every S-th tap, the
                      heads every C-th channel between them (None: all)
    weights_follow    --weights-out writes the caffemodel, so a head may change its weights'
                      layout (an InnerProduct with transpose: true)
    assume_same_grid  layer types unknown to caffe_atrous that the user vouches keep the grid
    """

    output_stride: int | None = 8
    from_layer: str | None = None
    mode: str = SEED
    input_shape: tuple[int, ...] | None = None
    multi_grid: tuple[int, ...] | None = None
    fc_to_conv: bool = False
    decimate: tuple[int, int] | None = None      # (taps, channels) of the heads
    weights_follow: bool = False                 # --weights-out writes the caffemodel
    assume_same_grid: tuple[str, ...] = ()       # layer types the user vouches keep the grid
    align: bool = False                          # "same" padding everywhere (align.py)


class LayerChange:
    """What the conversion does to one layer (None, False, empty: nothing), with the
    layer and the window it had. A rule's Decision is one too, before the planner
    places it on its layer. (Plain classes rather than dataclasses: importing
    dataclasses costs a tenth of a conversion.)"""

    FIELDS = ("after", "make_global", "clear_engine", "spatial_scale", "param_str", "prior_step",
              "head", "resize_to", "zoom", "round_down", "reasons")
    __slots__ = FIELDS + ("layer", "before")

    def __init__(self, after: Window | None = None, make_global: bool = False,
                 clear_engine: bool = False, spatial_scale: tuple[float, float] | None = None,
                 param_str: tuple[str, str] | None = None,
                 prior_step: dict[str, tuple[float, float]] | None = None,
                 head: Head | None = None, resize_to: tuple[Pair, Pair] | None = None,
                 zoom: tuple[Pair, Pair] | None = None, round_down: bool = False,
                 reasons: list[str] | None = None, *, layer: LayerSpec | None = None,
                 before: Window | None = None):
        self.after = after
        self.make_global = make_global
        self.clear_engine = clear_engine
        self.spatial_scale = spatial_scale
        self.param_str = param_str
        self.prior_step = prior_step
        self.head = head
        self.resize_to = resize_to
        self.zoom = zoom                        # Interp (zoom, shrink) before and after
        self.round_down = round_down            # a pooling's size rounds down (--align)
        self.reasons = [] if reasons is None else reasons
        self.layer = layer
        self.before = before

    def placed(self, layer: LayerSpec) -> LayerChange:
        """This change as the plan keeps it: on `layer`, with the window it had."""
        fields = {name: getattr(self, name) for name in LayerChange.FIELDS}
        return LayerChange(**fields, layer=layer, before=layer.window)

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in dict.fromkeys(type(self).__slots__
                                                                             + LayerChange.__slots__))
        return f"{type(self).__name__}({shown})"

    def patch(self) -> MessagePatch:
        """What to write into the layer's message (formats/netspec.py applies it)."""
        return MessagePatch(
            index=self.layer.index,
            window=self.after if self.after != self.before and self.head is None else None,
            to_conv=ConvHead(self.head.window, self.head.num_output) if self.head else None,
            global_pooling=self.make_global,
            clear_engine=self.clear_engine,
            spatial_scale=self.spatial_scale[1] if self.spatial_scale else None,
            param_str=self.param_str[1] if self.param_str else None,
            prior_step={k: v[1] for k, v in self.prior_step.items()} if self.prior_step else None,
            resize_to=self.resize_to[1] if self.resize_to else None,
            zoom=self.zoom[1] if self.zoom else None,
            round_down=self.round_down,
        )

    def key(self) -> tuple:
        """What the change does, for comparing the same layer across phases."""
        steps = None if self.prior_step is None else sorted(self.prior_step.items())
        return (self.after, self.make_global, self.clear_engine, self.spatial_scale,
                self.param_str, self.head, steps, self.resize_to, self.zoom, self.round_down)


class Plan:
    """The whole conversion: the changes by layer index, what to warn about, what
    is not exact, and the output strides before and after."""

    def __init__(self, changes: dict[int, LayerChange], warnings: list[ConversionWarning],
                 inexact: list[ConversionWarning], stride_before: Number,
                 stride_after: Number, final: dict[str, Number] | None = None,
                 notes: list[str] | None = None):
        self.changes = changes
        self.warnings = warnings
        self.inexact = inexact                  # why the new network is not function-preserving
        self.stride_before = stride_before
        self.stride_after = stride_after
        self.final = final or {}                # outputs' strides (TEST phase)
        self.notes = notes or []                # said, but nothing to warn about

    def ordered(self) -> list[LayerChange]:
        """The changes in layer order."""
        return [self.changes[i] for i in sorted(self.changes)]

    def heads(self) -> dict[str, Head]:
        """Layer name -> the Head of every InnerProduct that became a Convolution."""
        return {c.layer.name: c.head for c in self.ordered() if c.head is not None}

    def summary(self, by_output_stride: bool = True) -> str:
        """One line: what changed, or that the network already is at the asked stride;
        and the strides of outputs that differ from the output stride (upsampled)."""
        n, before = len(self.changes), st.fmt_stride(self.stride_before)
        outputs = "; ".join(f"its output '{name}' is at stride {st.fmt_stride(v)}"
                            for name, v in self.final.items() if v != self.stride_after)
        if by_output_stride and n == 0 and self.stride_before == self.stride_after:
            line = f"already at output stride {before}: nothing to change"
        else:
            line = (f"converted {n} layer{'s' if n != 1 else ''}: output stride {before} -> "
                    f"{st.fmt_stride(self.stride_after)}")
        return f"{line} ({outputs})" if outputs else line
