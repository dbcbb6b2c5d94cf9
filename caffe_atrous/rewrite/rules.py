"""One rule per layer kind: what the conversion does to it, as a Decision.

Every rule is a pure function of the layer and of the context of its phase
(`RuleContext`: the strides before and after, the strides removed, the original
shapes). It returns a Decision (the new geometry or parameters, the reasons,
the warnings) or raises an AtrousError that names the layer and what to do.
Whether the result is exact is not decided here: see exactness.py.
"""

from __future__ import annotations

import re

from ..analysis import strides as st
from ..core.errors import AtrousError
from ..graph.records import Crop, PriorBox, PythonLayer, RoiPool
from ..graph.records import LayerSpec
from ..graph.graph import Blob, Graph
from ..core.window import (Pair, Window, coarser_by, fmt_density, fmt_pair, fmt_times,
                           is_denser, map_word, pool_out)
from . import heads
from .changes import LayerChange
from .dilate import EXACT, SEED, CannotFollow, dilate_conv, unstride_pool

_FEAT_STRIDE = re.compile(r"""(['"]?feat_stride['"]?\s*:\s*)(\d+)""")


class RuleContext:
    """What the rules of one phase read: strides before (s0) and after (s1) the
    removals, the removals themselves, the original shapes, the heads made global."""

    def __init__(self, graph: Graph, mode: str, s0: dict, s1: dict, removals: dict[int, Pair],
                 shapes0: dict, *, fc_to_conv: bool = False, decimate: Pair | None = None,
                 weights_follow: bool = False):
        self.graph = graph
        self.mode = mode
        self.s0, self.s1 = s0, s1
        self.removals = removals
        self.shapes0 = shapes0
        self.made_global: set[int] = set()
        self.fc_to_conv = fc_to_conv
        self.decimate = decimate
        self.weights_follow = weights_follow        # --weights-out rewrites the caffemodel
        self.heads: dict = {}                       # Blob -> heads.Reach (the plan fills it)
        self.notes: list[str] = []                  # said, but nothing to warn about
        self.levels: dict = {}      # Blob -> dilation level, after a pyramid pooling's join

    def factor(self, blob: Blob) -> Pair | None:
        """Per-axis factor by which `blob` became denser (None: not spatial)."""
        return st.removed_factor(self.s0.get(blob), self.s1.get(blob))

    def fail(self, layer: LayerSpec, message: str) -> AtrousError:
        """An AtrousError with `message`, located at `layer` (file, line, name), for the caller
        to raise."""
        return AtrousError(message, file=self.graph.path, line=layer.line, layer=layer.name)


class Decision(LayerChange):
    """What a rule decided for one layer: the change, and what the planner needs to know."""

    __slots__ = ("warnings", "undilated_pool", "head_out")

    def __init__(self, *, warnings: list[str] | None = None, undilated_pool: bool = False,
                 head_out: heads.Reach | None = None, **edits):
        super().__init__(**edits)
        self.warnings = [] if warnings is None else warnings
        self.undilated_pool = undilated_pool    # kernel > 1 over a denser blob (joins.py)
        self.head_out = head_out                # its tops carry a converted head's output

    @property
    def changes(self) -> bool:
        """Whether the layer changes: a rule that changes something says why (`reasons`)."""
        return bool(self.reasons)


def covers_whole_map(ctx: RuleContext, layer: LayerSpec) -> bool:
    """A pooling that reduced a denser blob to 1x1 (ResNet's pool5) must become global.

        pool5 AVE 7x7/1 on 7x7  ->  global_pooling: true   (the map is now 28x28)
    """
    bottoms = ctx.graph.bottoms(layer)
    if layer.pool is None or layer.window is None or not bottoms:
        return False
    x = bottoms[0]
    m, shape = ctx.factor(x), ctx.shapes0.get(x)
    if m is None or m == (1, 1) or shape is None or len(shape) != 4 or None in shape[2:]:
        return False
    w, ceil = layer.window, layer.pool.ceil_mode
    return (pool_out(shape[2], w, 0, ceil), pool_out(shape[3], w, 1, ceil)) == (1, 1) \
        and shape[2:] != (1, 1)


def _on_the_dense_map(w: Window, level: int) -> bool:
    """A convolution with a kernel larger than 1, in the head after a pyramid pooling,
    whose dilation is below its input's level (PSPNet's 3x3 conv5_4, dilation 1, after
    a stage at level 4): it was defined on the dense map, not carried over from the
    classifier."""
    return any(w.kernel[a] > 1 and w.dilation[a] < level for a in (0, 1))


def _stride_reason(w: Window, r: Pair) -> str:
    if is_denser(r):
        return f"stride {fmt_pair(w.stride)} removed"
    return f"stride x{fmt_pair(coarser_by(r))} put back (a coarser output stride)"


def convolution(ctx: RuleContext, layer: LayerSpec, m: Pair, r: Pair) -> Decision:
    """Dilation and pad follow the denser input; a removed stride becomes 1. The
    other way, a stride put back multiplies the stride and a coarser input divides
    dilation and pad.

        conv 3x3 s2 p1 (r=2)          ->  s1 d2 p2 (seed) / s1 d1 p1 (exact)
        conv 3x3 s1 p1 on a x2 blob   ->  d2 p2
        conv 3x3 s1 d2 p2 (r=1/2)     ->  s2 d1 p1 (seed) / s2 d2 p2 (exact)
        conv 3x3 d4 p4 on a x2 coarser blob  ->  d2 p2
    """
    w = layer.window
    level = ctx.levels.get(ctx.graph.bottoms(layer)[0], 1)
    if m != (1, 1) and r == (1, 1) and _on_the_dense_map(w, level):
        return Decision(warnings=[f"kernel {fmt_pair(w.kernel)} with dilation "
                                  f"{fmt_pair(w.dilation)} works on the dense map itself (its "
                                  f"input's dilation level is {level}): it keeps its dilation, so "
                                  f"it now sees a {map_word(m)} map (not exact)"])
    try:
        new, notes = dilate_conv(w, m, r, ctx.mode)
    except CannotFollow as exc:
        raise ctx.fail(layer, f"{exc}; ask for an output stride this dilation divides into, "
                         "or keep the network's own") from None
    if ctx.mode == EXACT:                # its only notes: a dilation 1 over a coarser map,
        notes = []                       # which exactness.py names among what is not exact
    d = Decision(warnings=notes)
    if new == w:
        return d
    d.after = new
    if r != (1, 1):
        d.reasons.append(_stride_reason(w, r))
    if m != (1, 1) and w.kernel != (1, 1) and (new.dilation, new.pad) != (w.dilation, w.pad):
        d.reasons.append(f"reads a {fmt_density(m)} blob: dilation and pad {fmt_times(m)}")
    if new != dilate_conv(w, m, r, EXACT)[0]:
        d.reasons.append("takes the new dilation itself (seed convention)" if
                         is_denser(r) else "gives up its dilation (seed convention)")
    if layer.conv.engine == "CUDNN" and max(new.dilation) > 1:
        d.clear_engine = True
        d.reasons.append("engine CUDNN removed (cuDNN has no dilated convolution in Caffe)")
    return d


def _global_warning(layer: LayerSpec, x: Blob, m: Pair) -> str:
    return (f"global {layer.pool.method} pooling over '{x.name}', now {fmt_density(m)}: it "
            f"pools the {map_word(m)} map, not the original positions (not exact)")


def pooling(ctx: RuleContext, layer: LayerSpec, m: Pair, r: Pair) -> Decision:
    """Caffe pooling has no dilation: over a denser blob it is kept and named
    (refused with --exact); a removed stride becomes 1.

        pool 2x2 s2 (r=2)   ->  3x3 s1 p1 (seed, DeepLab/SSD) / 2x2 s1 (exact)
        pool 7x7 covering the map  ->  global (see covers_whole_map)
    """
    x = ctx.graph.bottoms(layer)[0]
    dense, w = m != (1, 1), layer.window
    if layer.index in ctx.made_global or (w is None and dense):
        d = Decision(warnings=[_global_warning(layer, x, m)])
        if layer.index in ctx.made_global:
            shape = ctx.shapes0[x]
            d.make_global = True
            d.reasons.append(f"covered the whole {shape[2]}x{shape[3]} map: now global")
        return d
    d = Decision()
    if w is None:
        return d
    if dense and w.kernel != (1, 1):
        coarser = not is_denser(m)
        msg = (f"pooling {w.kernel[0]}x{w.kernel[1]} reads '{x.name}', now {fmt_density(m)}; "
               + ("a pooling with stride 1 has no exact coarser form" if coarser else
                  "Caffe pooling has no dilation") + ", so this cannot be exact")
        if ctx.mode == EXACT:
            other = "a smaller" if coarser else "a larger"
            raise ctx.fail(layer, msg + f": convert at {other} output stride, or without "
                             "--exact (the layer is then kept and named in a warning)")
        d.warnings.append(msg)
        d.undilated_pool = True
    if r != (1, 1):
        d.after = unstride_pool(w, r, ctx.mode)
        d.reasons.append(_stride_reason(w, r))
        if d.after.kernel != w.kernel:
            d.reasons.append("2x2 pooling becomes 3x3 with pad 1 (DeepLab/SSD convention)")
    return d


def inner_product(ctx: RuleContext, layer: LayerSpec, m: Pair, r: Pair) -> Decision:
    """A classifier over a map that grows cannot keep its weights: refused;
    with --fc-to-conv it becomes a convolution (heads.py).

        fc6 (InnerProduct on pool5 7x7)  ->  error naming --truncate-after and --fc-to-conv
    """
    x = ctx.graph.bottoms(layer)[0]
    if ctx.fc_to_conv:
        return head_decision(ctx, layer, x, None)
    if m == (1, 1):
        return Decision()
    before = ctx.shapes0.get(x)
    if before is not None and len(before) == 4 and None not in before[2:]:
        grows = (f"grows from {before[2]}x{before[3]} to about "
                 f"{before[2] * m[0]}x{before[3] * m[1]}")
    else:
        grows = (f"becomes {fmt_density(m)} (give --input-shape to let caffe_atrous check "
                 "whether a pooling before it covers the whole map)")
    raise ctx.fail(layer, f"InnerProduct reads '{x.name}', whose spatial size {grows}, so its "
                     "weights would no longer fit; make it a convolution with --fc-to-conv, "
                     "drop the classifier head with --truncate-after LAYER (the last layer to "
                     "keep), or convert at a larger output stride")


def head_decision(ctx: RuleContext, layer: LayerSpec, x: Blob, reach) -> Decision:
    """An InnerProduct reading a spatial map, or a converted head's output."""
    head, out, notes = heads.decide_head(ctx, layer, x, reach)
    return Decision(head=head, head_out=out, warnings=notes, reasons=heads.reasons(head))


def after_head(ctx: RuleContext, layer: LayerSpec, reach) -> Decision:
    """A layer reading a converted head's output (heads.follow)."""
    x = ctx.graph.bottoms(layer)[0]
    if layer.ip is not None:
        return head_decision(ctx, layer, x, reach)
    passes, warnings = heads.follow(layer)
    return Decision(warnings=warnings, head_out=reach if passes else None)


def deconvolution(ctx: RuleContext, layer: LayerSpec, m: Pair, r: Pair) -> Decision:
    """An upsampling head over a denser blob upsamples the dense map: named.

        deconv x2 on a x2 denser blob  ->  unchanged, warning
    """
    if m == (1, 1) or layer.window.kernel == (1, 1):
        return Decision()
    x = ctx.graph.bottoms(layer)[0]
    return Decision(warnings=[
        f"Deconvolution reads '{x.name}', now {fmt_density(m)}: it upsamples the dense map, "
        f"so its output is x{fmt_pair(m)} larger than before and not exact; check what follows it"])


def roi_pooling(ctx: RuleContext, layer: LayerSpec, m: Pair, r: Pair) -> Decision:
    """RoIs are in image pixels: spatial_scale follows the denser features.

        PSROIPooling spatial_scale 0.0625 on a x2 blob  ->  0.125
    """
    if m == (1, 1):
        return Decision()
    if m[0] != m[1]:
        raise ctx.fail(layer, f"spatial_scale cannot follow a factor that differs per axis ({m})")
    old = layer.params.spatial_scale
    return Decision(spatial_scale=(old, old * m[0]),
                    reasons=[f"spatial_scale x{m[0]}: its features are x{m[0]} denser"])


def prior_box(ctx: RuleContext, layer: LayerSpec, m: Pair, r: Pair) -> Decision:
    """SSD PriorBox steps are feature-map strides in pixels: divided by the factor.

        PriorBox step 16 on a x2 blob  ->  step 8
    """
    if m == (1, 1) or not layer.params.steps:
        return Decision()
    new = {}
    for k, v in layer.params.steps:
        if k == "step" and m[0] != m[1]:
            raise ctx.fail(layer, "step cannot follow a factor that differs per axis; use "
                             "step_h/step_w")
        new[k] = (v, v / (m[0] if k in ("step", "step_h") else m[1]))
    return Decision(prior_step=new,
                    reasons=["prior step divided by " + "x".join(map(str, sorted(set(m))))])


def feat_stride(ctx: RuleContext, layer: LayerSpec, factors: list) -> Decision:
    """A Python proposal layer's `feat_stride` in param_str is divided by the factor.

        param_str "'feat_stride': 16" on a x2 blob  ->  "'feat_stride': 8"
    """
    text = layer.params.param_str
    match = _FEAT_STRIDE.search(text)
    m = next((f for f in factors if f is not None), None)  # its score input is often reshaped
    if match is None or m is None or m == (1, 1):
        return Decision()
    old = int(match.group(2))
    if m[0] != m[1] or old % m[0]:
        return Decision(warnings=[f"param_str feat_stride {old} does not divide by the factor "
                                  f"{m}: set it by hand"])
    new_text = text[:match.start(2)] + str(old // m[0]) + text[match.end(2):]
    return Decision(param_str=(text, new_text), reasons=[f"feat_stride {old} -> {old // m[0]}"])


def crop(ctx: RuleContext, layer: LayerSpec, m: Pair, r: Pair) -> Decision:
    """Crop offsets count pixels of the original resolution: named.

        Crop offset 19 over x2 denser blobs  ->  unchanged, warning
    """
    if m == (1, 1):
        return Decision()
    return Decision(warnings=[f"Crop reads blobs that are now {fmt_density(m)}; its offset "
                              f"{list(layer.params.offset) or [0]} counts pixels of the original "
                              "resolution: check it"])


def resize(ctx: RuleContext, layer: LayerSpec, m: Pair, r: Pair) -> Decision:
    """Interp sizes are in pixels of its input: named.

        Interp height 65 over a x2 denser blob  ->  unchanged, warning
    """
    if m == (1, 1):
        return Decision()
    x, p = ctx.graph.bottoms(layer)[0], layer.resize
    what = f"its fixed output size {p.height}x{p.width}" if p.fixed else "its zoom/shrink factors"
    return Decision(warnings=[f"Interp reads '{x.name}', now {fmt_density(m)}; {what} may no "
                              "longer give the resolution you want: check it"])


def rule_for(layer: LayerSpec):
    """The rule that decides `layer` (given its first input's factor), or None."""
    if layer.conv is not None:
        return deconvolution if layer.is_deconv else convolution
    if layer.pool is not None:
        return pooling
    if layer.ip is not None:
        return inner_product
    if layer.resize is not None:
        return resize
    return {RoiPool: roi_pooling, PriorBox: prior_box, Crop: crop}.get(type(layer.params))


def is_proposal(layer: LayerSpec) -> bool:
    """Whether `layer` is a Python proposal layer: a `feat_stride` in its param_str, which
    `feat_stride` rescales."""
    return isinstance(layer.params, PythonLayer) and bool(_FEAT_STRIDE.search(layer.params.param_str))


__all__ = ["RuleContext", "Decision", "SEED", "EXACT", "rule_for", "is_proposal", "feat_stride",
           "covers_whole_map", "after_head"]
