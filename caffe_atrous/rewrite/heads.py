"""Classifier heads as convolutions (--fc-to-conv), as FCN and DeepLab v1 did.

An InnerProduct that reads a spatial map computes one window of the size of
that map. As a Convolution with that kernel, dilated by the factor m by which
its input became denser, it computes the same window at every position:

    fc6 InnerProduct 4096 on pool5 7x7x512 (x4 denser)
        ->  Convolution 4096, kernel 7, dilation 4, pad 12 (default: "same")
                                                    pad 0  (--exact: FCN)
    at the network's own stride (m = 1): kernel 7, pad 0 in both (FCN's net surgery)
    fc7, fc8 InnerProduct after it  ->  Convolution kernel 1

With decimation (s, c), DeepLab-LargeFOV's initialisation: the first head layer
keeps every s-th tap per axis (dilation x s) and every c-th output; the next
layers keep the matching inputs, and every c-th output except the last layer.

    fc6 7x7 d4 (s=3, c=4)  ->  3x3 d12 pad 12, 1024 outputs; fc7 1x1 1024

The weights follow (weights.py): the blob (N, C*k*k) is the blob (N, C, k, k)
with the same values in the same order; `Head` says how it is read.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ..graph.records import LayerSpec
from ..graph.graph import Blob, Graph
from ..graph.kinds import SCALAR, types_where
from ..core.window import Pair, Window, fmt_pair
from .dilate import EXACT

# Layers a head's output may pass through and stay a head (per position); losses.
ELEMENTWISE = types_where(per_position=True)
LOSSES = types_where(shape=SCALAR)


class Head(NamedTuple):
    """One InnerProduct that becomes a Convolution, and how its stored blobs map
    to the convolution's: weight (N0, C0*kh*kw) (transposed: (C0*kh*kw, N0)) is
    read as (N0, C0, kh, kw), then every `out_step`-th output, `in_step`-th input
    and `taps`-th tap per axis are kept; the bias keeps every `out_step`-th."""

    window: Window                  # the convolution's geometry
    num_output: int                 # after decimation
    kernel0: Pair                   # the map size the InnerProduct covered
    channels0: int                  # its input channels (before decimation)
    num_output0: int
    bias_term: bool = True
    transpose: bool = False
    taps: int = 1
    out_step: int = 1
    in_step: int = 1

    def stored_shapes(self) -> list[tuple[int, ...]]:
        """The blob shapes of the InnerProduct, as the caffemodel holds them."""
        k = self.channels0 * self.kernel0[0] * self.kernel0[1]
        weight = (k, self.num_output0) if self.transpose else (self.num_output0, k)
        return [weight] + ([(self.num_output0,)] if self.bias_term else [])


class Reach(NamedTuple):
    """What flows out of a converted head: the factor its first layer read, and
    the output step of the layer that wrote it."""

    m: Pair
    out_step: int


def _same_pad(window: Window) -> tuple[Pair, list[str]]:
    pad, notes = [], []
    for a in (0, 1):
        span = window.dilation[a] * (window.kernel[a] - 1)
        pad.append(span // 2)
        if span % 2:
            notes.append(f"kernel {window.kernel[a]} with dilation {window.dilation[a]} has no "
                         f"centre: pad {span // 2} makes its output one smaller than its input")
    return tuple(pad), notes


def _feeds_head(graph: Graph, blob: Blob) -> bool:
    """Does `blob` reach another InnerProduct through elementwise layers?"""
    for layer in blob.consumers:
        if layer.ip is not None:
            return True
        if layer.type in ELEMENTWISE and any(_feeds_head(graph, t) for t in graph.tops(layer)):
            return True
    return False


def _decimation(ctx, layer: LayerSpec, first: bool, kernel: Pair, feeds: bool,
                reach: Reach | None) -> tuple[int, int, int]:
    """(taps, out_step, in_step) of one head layer, checked."""
    s, c = ctx.decimate or (1, 1)
    taps = s if first else 1
    for a in (0, 1):
        if kernel[a] > 1 and (kernel[a] - 1) % taps:
            raise ctx.fail(layer, f"--decimate {s},{c}: kernel {fmt_pair(kernel)} cannot keep "
                             f"1 tap in {s} (kernel - 1 must divide by {s}); choose a "
                             "decimation that divides it")
    out_step = c if feeds else 1
    if layer.ip.num_output % out_step:
        raise ctx.fail(layer, f"--decimate {s},{c}: num_output {layer.ip.num_output} does not "
                         f"divide by {c}; choose a channel step that divides it")
    return taps, out_step, (reach.out_step if reach else 1)


def decide_head(ctx, layer: LayerSpec, x: Blob, reach: Reach | None
                ) -> tuple[Head, Reach, list[str]]:
    """The Head for an InnerProduct reading `x` (a spatial map, or a head's
    output), what flows out of it, and notes for a warning."""
    ip, g = layer.ip, ctx.graph
    if ip.axis not in (1, -3) and not (ip.axis == -1 and reach is not None):
        raise ctx.fail(layer, f"inner_product_param.axis is {ip.axis}: only an InnerProduct "
                         "over axis 1 (all of C, H, W) can become a convolution; drop the head "
                         "with --truncate-after, or convert without --fc-to-conv")
    if ip.transpose and not ctx.weights_follow:
        raise ctx.fail(layer, "transpose: true: as a convolution its weights must be "
                         "transposed, so there is no caffemodel to match; give --weights "
                         "IN.caffemodel and --weights-out OUT.caffemodel to write one")
    shape = ctx.shapes0.get(x)
    if reach is None and (shape is None or len(shape) != 4 or None in shape[1:]):
        raise ctx.fail(layer, f"the size of '{x.name}' is unknown, so the kernel that covers "
                         "it is too; give --input-shape N,C,H,W")
    if reach is not None and (shape is None or None in shape[1:]):
        raise ctx.fail(layer, "its input size is unknown; give --input-shape N,C,H,W")
    kernel0 = tuple(shape[2:]) if reach is None else (1, 1)
    channels0 = shape[1] if reach is None else math.prod(shape[1:])
    m = ctx.factor(x) if reach is None else reach.m
    feeds = any(_feeds_head(g, t) for t in g.tops(layer))
    taps, out_step, in_step = _decimation(ctx, layer, reach is None, kernel0, feeds, reach)
    kernel = tuple((k - 1) // taps + 1 for k in kernel0)
    dil = tuple(m[a] * taps if kernel[a] > 1 else 1 for a in (0, 1))
    window, notes = Window(kernel=kernel, dilation=dil), []
    if ctx.mode != EXACT and max(dil) > 1:     # undilated: FCN's net surgery, pad 0
        pad, notes = _same_pad(window)
        window = window.replace(pad=pad)
    head = Head(window, ip.num_output // out_step, kernel0, channels0, ip.num_output,
                ip.bias_term, ip.transpose, taps, out_step, in_step)
    return head, Reach(m, out_step), notes


def reasons(head: Head) -> list[str]:
    """The reasons of a head's change, for the report: the Convolution it becomes and, when
    decimated, which taps, outputs and inputs it keeps (1 in n)."""
    out = [f"InnerProduct -> Convolution {head.window.describe()}, {head.num_output} outputs"]
    kept = [f"1 {what} in {n}" for what, n in (("tap", head.taps), ("output", head.out_step),
                                                ("input", head.in_step)) if n > 1]
    if kept:
        out.append(f"decimated, keeps {', '.join(kept)} (DeepLab-LargeFOV's initialisation)")
    return out


def follow(layer: LayerSpec) -> tuple[bool, list[str]]:
    """A layer that reads a head's output: elementwise layers (and a Softmax over
    channels) pass it on (True); a loss now sees a map; anything else should be
    checked (warnings)."""
    if layer.type in ELEMENTWISE or (layer.type == "Softmax" and layer.params.axis in (1, -3)):
        return True, []
    if layer.type in LOSSES:
        return False, [f"{layer.type} reads a classifier that is now a convolution: it gets an "
                "(N, K, H, W) map, so its labels must be a map of that size too"]
    return False, [f"{layer.type} reads a classifier that is now a convolution and gets an "
            "(N, K, H, W) map instead of (N, K): check it"]
