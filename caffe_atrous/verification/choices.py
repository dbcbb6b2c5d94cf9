"""What verify runs and compares when the user does not say: the input size (the
declared one where a head needs it, else moved to where Caffe's rounding agrees at every
stride) and the blob (the last both networks keep on the image's grid)."""

from __future__ import annotations

from ..analysis import grids
from ..analysis import strides as st
from ..core.errors import UsageError
from ..graph.graph import Graph
from ..graph.records import DataShapes, Reshape


def aligned(size: int, stride: int) -> bool:
    """Whether an input size suits a stride (k * stride + 1)."""
    return (size - 1) % stride == 0


def declared_shape(image) -> tuple | None:
    """The shape the network declares for its input blob, if any."""
    if image.producer is None:
        return image.shape
    source = image.producer.params
    index = list(image.producer.tops).index(image.name)
    return source.shape(index) if isinstance(source, DataShapes) else None


def size_fixed_by(graph: Graph) -> str | None:
    """The first layer whose parameters fix the input size the network runs at: an
    InnerProduct over a spatial map, a resize to a fixed size, a Reshape to fixed sizes."""
    strides = st.cumulative_strides(graph)
    for layer in graph.layers:
        bottoms = graph.bottoms(layer)
        spatial = bool(bottoms) and strides.get(bottoms[0]) is not None
        if (layer.ip is not None and spatial) or \
                (grids.is_resampler(layer) and grids.fixed_size(layer) is not None) or \
                (isinstance(layer.params, Reshape) and layer.params.shape
                 and -1 not in layer.params.shape and max(layer.params.shape) > 1):
            return layer.name
    return None


def choose_input(image, total: int, input_shape, fixed_by: str | None
                  ) -> tuple[tuple[int, ...], str]:
    """The given input shape; else the declared one, moved to the nearest total*k+1
    unless a layer (`fixed_by`) needs the declared size."""
    if input_shape is not None:
        return tuple(input_shape), ""
    declared = declared_shape(image)
    if declared is None or len(declared) != 4 or None in declared:
        raise UsageError("the network does not declare its input size; give --input-shape")
    _, c, h, w = declared
    if fixed_by is not None:
        return tuple(declared), f" (the declared size: '{fixed_by}' needs it)"
    h2 = total * max(1, round((h - 1) / total)) + 1
    w2 = total * max(1, round((w - 1) / total)) + 1
    note = "" if (h2, w2) == (h, w) else (
        f" (the declared {h}x{w} moved to {h2}x{w2} = {total}k+1, where Caffe's rounding agrees "
        "at every stride)")
    return (1, c, h2, w2), note


def off_grid(graph: Graph) -> set[str]:
    """Blobs that a default comparison leaves alone: at or after a resize that is not
    back onto a grid of the network (a zoom to the image size, which the conversion
    moves off the image's grid), and a pyramid pooling's bins with what they feed
    (their poolings average a denser map: inexact by construction)."""
    geo = grids.geometry(graph)
    out: set[str] = {b.name for b in geo.branch}
    for layer in graph.layers:
        bottoms = graph.bottoms(layer)
        free = grids.is_resampler(layer) and layer.index not in geo.anchors
        if free or any(b.name in out for b in bottoms):
            out.update(t.name for t in graph.tops(layer))
    return out


def choose_blob(orig: Graph, factors: dict, blob: str | None) -> str:
    """The blob asked for, or the last one both networks keep a spatial layout for."""
    names = {b.name for b in orig.blobs}
    if blob is None:
        off = off_grid(orig)
        candidates = [b.name for b in reversed(orig.blobs) if factors.get(b.name) is not None
                      and b.name not in off]
        if not candidates:
            raise UsageError("no blob keeps a spatial layout in both networks; name one with --blob")
        return candidates[0]
    if blob not in names:
        raise UsageError(f"--blob {blob}: the original network has no such blob")
    if factors.get(blob) is None:
        raise UsageError(f"--blob {blob}: this blob has no spatial layout in both networks "
                         "(it follows a global pooling or a classifier); choose an earlier one")
    return blob


def image_blob(orig: Graph, orig_path: str):
    """The network's one input blob (an error unless there is exactly one)."""
    images = [b for b in orig.inputs if b.producer is None or b.producer.type == "Input"]
    if len(images) != 1:
        raise UsageError("verify needs a network with one input blob (an `input` or Input layer); "
                         "found " + (", ".join(b.name for b in images) or "none"), file=orig_path)
    return images[0]
