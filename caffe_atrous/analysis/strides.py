"""Cumulative strides: how far apart, in input pixels, a blob's positions are.

A blob's stride is a (height, width) pair of Fractions (a Deconvolution or an
Interp can make it smaller than 1); None means the blob has no spatial layout
(the output of an InnerProduct, a global pooling, a Flatten, ...).

"Removing" a layer's stride means running it with stride 1: `removals` maps a
layer index to the per-axis factor taken out of its stride.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Callable

from ..formats.facts import Source
from ..formats.netspec import LayerSpec
from ..graph import Blob, Graph
from ..window import Pair

Stride = tuple[Fraction, Fraction]
ONE: Stride = (Fraction(1), Fraction(1))

# Layer types whose tops have no spatial layout relative to the image.
NON_SPATIAL = {"InnerProduct", "Flatten", "Reshape", "Permute", "PriorBox", "ROIPooling",
               "PSROIPooling", "DetectionOutput", "Python", "SoftmaxWithLoss", "Accuracy",
               "EuclideanLoss", "SigmoidCrossEntropyLoss", "MultiBoxLoss", "SmoothL1Loss",
               "SmoothL1LossOHEM", "SegAccuracy", "ArgMax", "Reduction", "Embed",
               "BoxAnnotatorOHEM", "Silence"}


def own_stride(layer: LayerSpec) -> Pair:
    """The stride a downsampling layer applies ((1, 1) for every other layer)."""
    if layer.window is None or layer.is_deconv:
        return (1, 1)
    return layer.window.stride


def _propagate(graph: Graph, decide: Callable[[LayerSpec, Stride], Pair],
               is_global: Callable[[LayerSpec], bool] | None = None
               ) -> tuple[dict[Blob, Stride | None], dict[int, Pair]]:
    is_global = is_global or (lambda layer: layer.is_global_pool)
    strides: dict[Blob, Stride | None] = {}
    removals: dict[int, Pair] = {}
    for blob in graph.inputs:
        if blob.producer is None:
            strides[blob] = ONE if blob.shape is None or len(blob.shape) == 4 else None
    for layer in graph.layers:
        ins = [strides.get(b) for b in graph.bottoms(layer)]
        spatial = [s for s in ins if s is not None]
        first = ins[0] if ins else None
        if not layer.bottoms:
            source = layer.params if isinstance(layer.params, Source) else Source()
            outs = [ONE if source.shape(i) is None or len(source.shape(i)) == 4 else None
                    for i in range(len(layer.tops))]
            for blob, s in zip(graph.tops(layer), outs):
                strides[blob] = s
            continue
        if first is None:
            first = spatial[0] if spatial else None
        out: Stride | None = first
        if first is None or layer.type in NON_SPATIAL or is_global(layer):
            out = None
        elif layer.window is not None:
            s = layer.window.stride
            if layer.is_deconv:
                out = (first[0] / s[0], first[1] / s[1])
            else:
                r = decide(layer, first)
                if r != (1, 1):
                    removals[layer.index] = r
                out = (first[0] * s[0] / r[0], first[1] * s[1] / r[1])
        elif layer.resize is not None:
            p = layer.resize
            if not (p.height or p.width):
                f = Fraction(p.shrink_factor, p.zoom_factor)
                out = (first[0] * f, first[1] * f)
        for blob in graph.tops(layer):
            strides[blob] = out
    return strides, removals


def cumulative_strides(graph: Graph, removals: dict[int, Pair] | None = None,
                       made_global: set[int] = frozenset()) -> dict[Blob, Stride | None]:
    """Every blob's stride once the given strides are removed (and the layers
    in `made_global` pool globally)."""
    removals = removals or {}
    strides, _ = _propagate(graph, lambda layer, s: removals.get(layer.index, (1, 1)),
                            lambda layer: layer.index in made_global or layer.is_global_pool)
    return strides


def output_stride(strides: dict[Blob, Stride | None]) -> Fraction:
    """The network's output stride: the largest stride of any spatial blob."""
    values = [max(s) for s in strides.values() if s is not None]
    return max(values) if values else Fraction(1)


def removals_for_output_stride(graph: Graph, target: int) -> dict[int, Pair]:
    """Remove every stride that would take a blob's stride past `target`."""
    def decide(layer: LayerSpec, incoming: Stride) -> Pair:
        s = own_stride(layer)
        return tuple(s[a] if s[a] > 1 and incoming[a] * s[a] > target else 1 for a in (0, 1))
    return _propagate(graph, decide)[1]


def removals_from_layer(graph: Graph, start_index: int) -> dict[int, Pair]:
    """Remove the stride of the layer at `start_index` and of every later layer."""
    def decide(layer: LayerSpec, incoming: Stride) -> Pair:
        s = own_stride(layer)
        return s if layer.index >= start_index and s != (1, 1) else (1, 1)
    return _propagate(graph, decide)[1]


def reachable_output_strides(graph: Graph) -> list[int]:
    """The output strides `removals_for_output_stride` can produce for this graph."""
    original = cumulative_strides(graph)
    candidates = {int(max(s)) for s in original.values()
                  if s is not None and max(s).denominator == 1}
    reachable = []
    for n in sorted(candidates):
        got = output_stride(cumulative_strides(graph, removals_for_output_stride(graph, n)))
        if got == n:
            reachable.append(n)
    return reachable


def removed_factor(before: Stride | None, after: Stride | None) -> Pair | None:
    """Per-axis factor by which a blob became denser (None: not spatial)."""
    if before is None or after is None:
        return None
    f = (before[0] / after[0], before[1] / after[1])
    return (int(f[0]), int(f[1])) if all(x.denominator == 1 for x in f) else None


def fmt_stride(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else str(value)
