"""The one rule for what makes a converted layer differ from the exact conversion.

With the exact rule (atrous-rules.md) the converted network's output at every
m-th position equals the original's. A layer breaks that when

    a convolution's dilation/pad differ from the exact rule's (the seed
        convention's own dilation, a multi-grid rate, a hand edit);
    a pooling with kernel > 1 reads a denser blob (Caffe pooling has no
        dilation), or its kernel changed (2x2/2 -> 3x3/1; a pyramid pooling
        scaled with its map);
    a global pooling averages a denser map (squeeze-and-excitation, pool5);
    a Deconvolution, Interp or Crop reads a denser blob (its geometry counts
        pixels of the original resolution);
    a branch re-padded to "same" so a join's inputs meet (joins.py), or
        every layer with --align (align.py): its pad differs from both
        conventions';
    a classifier made a convolution (heads.py) with "same" padding (its
        windows are centred on each position, not starting there) or
        decimated (DeepLab-LargeFOV: other taps, other dilation).

The planner (to fill Plan.inexact) and verify (to explain a comparison) both
ask `inexact_reason`, so they cannot disagree.
"""

from __future__ import annotations

from ..graph.records import Crop
from ..graph.records import LayerSpec
from ..core.window import Pair, Window, fmt_density, fmt_pair, map_word
from .dilate import EXACT, SEED, dilate_conv


def removed_stride(before: Window, after: Window) -> Pair:
    """Per-axis factor taken out of a layer's own stride (1/f where f was put back)."""
    def ratio(a: int, b: int):
        if a % b == 0:
            return a // b
        from fractions import Fraction
        return Fraction(a, b)
    return tuple(ratio(before.stride[a], max(after.stride[a], 1)) for a in (0, 1))


def _conv(layer: LayerSpec, after: Window, m: Pair) -> str | None:
    w0 = layer.window
    r = removed_stride(w0, after)
    exact, notes = dilate_conv(w0, m, r, EXACT)
    if after == exact:
        return notes[0] if notes else None
    seed_w = dilate_conv(w0, m, r, SEED)[0]
    if after.pad != seed_w.pad and after.dilation == seed_w.dilation:
        return (f"re-padded to 'same' (pad {fmt_pair(after.pad)}: a join's branches, or "
                f"--align), where the exact rule gives dilation {fmt_pair(exact.dilation)}, pad "
                f"{fmt_pair(exact.pad)}")
    seed = " (the seed convention)" if after == seed_w else ""
    return (f"dilation {fmt_pair(after.dilation)}, pad {fmt_pair(after.pad)} where the exact rule "
            f"gives dilation {fmt_pair(exact.dilation)}, pad {fmt_pair(exact.pad)}{seed}")


def _head(after: Window | None, m: Pair) -> str | None:
    """An InnerProduct over a map, made a convolution: exact with dilation m, pad 0."""
    if after is None:
        return None
    dil = tuple(m[a] if after.kernel[a] > 1 else 1 for a in (0, 1))
    if after.dilation != dil:
        return (f"classifier made a convolution with dilation {fmt_pair(after.dilation)} where "
                f"its input is {fmt_density(m)}: decimated (DeepLab-LargeFOV), not the "
                "same function")
    if after.pad != (0, 0):
        return (f"classifier made a convolution with pad {fmt_pair(after.pad)} ('same'): its "
                "windows are centred on each position (--exact gives pad 0, the original "
                "classifier at every sampled position)")
    return None


def _pool(layer: LayerSpec, after: Window | None, made_global: bool, m: Pair) -> str | None:
    dense, w0 = m != (1, 1), layer.window
    if (made_global or layer.is_global_pool) and dense:
        return (f"global {layer.pool.method} pooling over a {fmt_density(m)} blob pools the "
                f"{map_word(m)} map, not the original positions")
    if w0 is None or after is None:
        return None
    if dense and after.kernel == tuple(k * f for k, f in zip(w0.kernel, m)) \
            and after.stride == tuple(k * f for k, f in zip(w0.stride, m)):
        return (f"pyramid pooling {fmt_pair(w0.kernel)} scaled to {fmt_pair(after.kernel)} over a "
                f"{fmt_density(m)} blob: its bins pool the {map_word(m)} map, not the original "
                "positions")
    if after.kernel != w0.kernel:
        return (f"pooling {fmt_pair(w0.kernel)} became {fmt_pair(after.kernel)} (DeepLab/SSD "
                "convention; --exact gives it stride 1 instead)")
    if after.pad != w0.pad:
        return (f"pooling re-padded from {fmt_pair(w0.pad)} to 'same' (pad {fmt_pair(after.pad)}: "
                "a join's branches, or --align)")
    if dense and w0.kernel != (1, 1):
        return (f"pooling {fmt_pair(w0.kernel)} over a {fmt_density(m)} blob (Caffe pooling "
                "has no dilation)")
    return None


def inexact_reason(layer: LayerSpec, after: Window | None, made_global: bool,
                   m: Pair | None) -> str | None:
    """Why `layer`, converted to window `after` (global when `made_global`) and
    reading a blob m times denser, is not the exact conversion; None when it is."""
    if m is None:
        return None
    if layer.ip is not None:
        return _head(after, m)
    if layer.conv is not None and not layer.is_deconv:
        return _conv(layer, after, m) if after is not None else None
    if layer.pool is not None:
        return _pool(layer, after, made_global, m)
    if m == (1, 1):
        return None
    if layer.is_deconv or layer.resize is not None:
        return f"{layer.type} over a {fmt_density(m)} blob"
    if isinstance(layer.params, Crop):
        return f"Crop over a {fmt_density(m)} blob: its offset counts original pixels"
    return None
