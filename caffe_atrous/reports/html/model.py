"""What the picture shows, as plain data: boxes, arrows and their texts.

One box per layer, except in-place layers (a ReLU, BatchNorm or Scale that
writes its own input), which fold into the box of the layer they follow, as
Netscope draws them. A box knows the stride of its output in the converted
network (its colour), its change (the outline and the before -> after line)
and the text of its tooltip; an arrow knows its blob's spatial size before and
after. Nothing here needs Graphviz, so the tests can check it anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction

from ...analysis.shapes import infer_shapes
from ...analysis.strides import cumulative_strides
from ...pipeline.conversion import Result
from ...pipeline.loading import Loaded
from ...core.errors import AtrousError
from ...graph.records import LayerSpec
from ..text import change_pair, layer_changes

ARROW = " -> "


@dataclass
class Box:
    """One box: a layer with the in-place layers folded into it, or a network input (an
    ellipse); its output's stride in the converted network, its window or change, its tooltip."""

    id: str                               # the SVG element id, and the anchor links use
    name: str
    type: str
    stride: Fraction | None               # of its output, in the converted network
    geometry: str = ""                    # "k3 s2 p1 d1 -> k3 s1 p2 d2", or "k3 s1 p1 d1"
    changed: bool = False
    folded: list[str] = field(default_factory=list)     # types of the in-place layers in it
    tooltip: list[str] = field(default_factory=list)
    is_input: bool = False


@dataclass
class Arrow:
    """The blob `blob` from the box that writes it (`tail`) to one that reads it (`head`),
    both box ids, with its spatial size."""

    tail: str
    head: str
    blob: str
    size: str                             # "56x56", "14x14 -> 28x28" or ""


@dataclass
class Picture:
    """The converted network to draw: its boxes and arrows, and the box that shows each layer."""

    boxes: list[Box]
    arrows: list[Arrow]
    anchor: dict[str, str]                # layer name -> id of the box that shows it


def graphs(before: Loaded, result: Result, input_shape=None):
    """The deployed (TEST-phase) graphs before and after; both carry the input's line numbers
    (and --input-shape, which places fixed-size resizes as the conversion did)."""
    after = result.converted()
    return before.graph(input_shape), after.graph(input_shape)


def anchor_id(name: str, kind: str = "layer") -> str:
    """An id made of characters that are safe in a URL fragment and in XML."""
    return f"{kind}-" + re.sub(r"[^A-Za-z0-9_.-]", lambda m: f"~{ord(m.group()):x}", name)


def layer_source(text: str | None, line: int | None, limit: int = 40) -> list[str]:
    """The layer's block as written in the input file, starting at its line:
    every parameter, in the user's own words (no need to know each layer type).
    The braces are counted outside quoted strings and comments."""
    if not text or not line:
        return []
    lines = text.splitlines()[line - 1:]
    depth, out, opened = 0, [], False
    for raw in lines:
        out.append(raw.rstrip())
        code = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|#.*', "", raw)
        depth += code.count("{") - code.count("}")
        opened = opened or "{" in code
        if opened and depth <= 0:
            break
    if len(out) > limit:
        out = out[:limit] + ["  ..."]
    return out


def size_text(before, after) -> str:
    """'56x56' or '14x14 -> 28x28' for two blob shapes ('' when not spatial)."""
    def hw(shape):
        if shape is None or len(shape) != 4 or None in shape[2:]:
            return None
        return f"{shape[2]}x{shape[3]}"
    a, b = hw(before), hw(after)
    if a is None and b is None:
        return ""
    return a or "?" if a == b else f"{a or '?'}{ARROW}{b or '?'}"


def _largest(stride) -> Fraction | None:
    return None if stride is None else max(stride)


def is_in_place(layer: LayerSpec) -> bool:
    """A layer that writes its own input (ReLU, BatchNorm, Scale, ... in place)."""
    return bool(layer.tops) and all(t in layer.bottoms for t in layer.tops)


def _shapes(graph, input_shape):
    try:
        return infer_shapes(graph, input_shape=input_shape)
    except AtrousError:                   # sizes are optional in a picture
        return {}


def _new_box(layer: LayerSpec, stride, change: dict | None, text: str | None) -> Box:
    box = Box(anchor_id(layer.name), layer.name, layer.type, stride)
    if change is not None:
        before, after = change_pair(change)
        box.geometry, box.changed = f"{before}{ARROW}{after}", True
    elif layer.window is not None:
        box.geometry = layer.window.describe()
    box.tooltip = _describe(layer, change, text)
    return box


def _describe(layer: LayerSpec, change: dict | None, text: str | None) -> list[str]:
    """Tooltip lines of one layer: what it is, what happened to it, its source."""
    lines = [f"{layer.name} ({layer.type}): {', '.join(layer.bottoms) or '-'}{ARROW}"
             f"{', '.join(layer.tops) or '-'}"]
    if change is not None:
        before, after = change_pair(change)
        lines.append(f"changed: {before}{ARROW}{after}")
        lines += [f"  because {why}" for why in change["why"]]
    elif layer.window is not None:
        lines.append(f"unchanged: {layer.window.describe()}")
    source = layer_source(text, layer.line)
    if source:
        lines += [f"as written (line {layer.line}):"] + source
    return lines


def build(before: Loaded, result: Result, input_shape=None, text: str | None = None) -> Picture:
    """The picture of the converted network (TEST phase), with the original's sizes."""
    g0, g1 = graphs(before, result, input_shape)
    strides = cumulative_strides(g1)
    sh0, sh1 = _shapes(g0, input_shape), _shapes(g1, input_shape)
    changes = {c["name"]: c for c in layer_changes(result.plan)}
    boxes: list[Box] = []
    arrows: list[Arrow] = []
    anchor: dict[str, str] = {}
    host: dict[int, Box] = {}             # id(blob in g1) -> the box that writes it
    for blob0, blob1 in zip(g0.inputs, g1.inputs):
        if blob1.producer is None:
            box = Box(anchor_id(blob1.name, "input"), blob1.name, "input", _largest(strides.get(blob1)),
                      size_text(sh0.get(blob0), sh1.get(blob1)),
                      is_input=True, tooltip=[f"network input {blob1.name}"])
            boxes.append(box)
            host[id(blob1)] = box
    for l0, l1 in zip(g0.layers, g1.layers):
        bottoms0, bottoms1, tops1 = g0.bottoms(l0), g1.bottoms(l1), g1.tops(l1)
        target = host.get(id(bottoms1[0])) if bottoms1 else None
        if is_in_place(l1) and target is not None and not target.is_input \
                and l1.name not in changes:
            target.folded.append(l1.type)
            target.tooltip += ["", *_describe(l1, None, text)]
        else:
            target = _new_box(l1, _largest(strides.get(tops1[0])) if tops1 else None,
                              changes.get(l1.name), text)
            boxes.append(target)
            for b0, b1 in zip(bottoms0, bottoms1):
                tail = host.get(id(b1))
                if tail is not None:
                    arrows.append(Arrow(tail.id, target.id, b1.name,
                                        size_text(sh0.get(b0), sh1.get(b1))))
        anchor[l1.name] = target.id
        for blob in tops1:
            host[id(blob)] = target
    return Picture(boxes, arrows, anchor)
