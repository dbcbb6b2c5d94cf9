"""Where strides go back when a dense network is made coarser.

A dilated network shows where it was made denser in its dilations: along the
trunk they rise (PSPNet's ResNet: 1, 2, 4 in stages 3, 4 and 5). A blob's LEVEL
is the dilation its part of the trunk works at (1 up to the first rise); its
natural stride, the one the classification network had, is its stride times its
level.

    rise   a convolution with a kernel larger than 1 whose dilation is a
           power-of-two multiple (2, 4, ...) of its input's level: the trunk gets
           denser there. In the seed convention this is the layer whose stride was
           removed. Not a rise: a convolution beside siblings of other dilations
           (an ASPP head), or one inside a residual unit whose shortcut is an
           identity (a multi-grid unit, or any unit but a stage's first: an identity
           cannot take a stride back).

For a target output stride D, every blob gets the stride min(natural, max(D,
stride)): each rise takes back the factor by which its output becomes coarser
than its input, and a join whose branches would then arrive at different strides
puts the difference on the nearest window layer of the lagging branch (the 1x1
projection shortcut). Strides put back are "removals" of 1/f (strides.py), so the
rest of the planner reads them as it reads removed ones: a blob f times coarser
has the factor 1/f.
"""

from __future__ import annotations

from ..core.window import Pair
from ..graph.graph import Blob, Graph
from ..graph.records import LayerSpec
from .strides import network_output_stride, strides_in_scale




def _dilation(layer: LayerSpec) -> int | None:
    """The dilation of a convolution with a kernel larger than 1 (None: not one)."""
    w = layer.window
    if layer.conv is None or layer.is_deconv or w is None:
        return None
    axes = [a for a in (0, 1) if w.kernel[a] > 1]
    return max(w.dilation[a] for a in axes) if axes else None


def _through_pointwise(graph: Graph, blob: Blob) -> Blob:
    """Walk up from `blob` through layers without a window (BN, Scale, ReLU, ...)."""
    for _ in range(64):
        layer = blob.producer
        if layer is None or layer.window is not None or len(layer.bottoms) != 1:
            return blob
        blob = graph.bottoms(layer)[0]
    return blob


def _join_after(graph: Graph, layer: LayerSpec) -> LayerSpec | None:
    """The first Eltwise or Concat on the single-consumer path from `layer`'s output."""
    blob = graph.tops(layer)[0]
    for _ in range(64):
        consumers = blob.consumers
        if len(consumers) != 1:
            return None
        nxt = consumers[0]
        if nxt.type in ("Eltwise", "Concat"):
            return nxt
        tops = graph.tops(nxt)
        if not tops:
            return None
        blob = tops[0]
    return None


def _upstream(graph: Graph, blob: Blob) -> set[Blob]:
    """Every blob `blob` is computed from (itself included)."""
    seen, todo = set(), [blob]
    while todo:
        b = todo.pop()
        if b in seen:
            continue
        seen.add(b)
        if b.producer is not None:
            todo.extend(graph.bottoms(b.producer))
    return seen


def _identity_shortcut(graph: Graph, layer: LayerSpec) -> bool:
    """Whether `layer` sits in a residual unit whose other branch starts, through
    layers without a window, from a blob `layer` itself is computed from."""
    join = _join_after(graph, layer)
    if join is None:
        return False
    mine = graph.tops(layer)[0]
    upstream = _upstream(graph, graph.bottoms(layer)[0])
    for b in graph.bottoms(join):
        if mine in _upstream(graph, b):
            continue                                   # the branch `layer` is on
        if _through_pointwise(graph, b) in upstream:
            return True
    return False


def _is_rise(graph: Graph, layer: LayerSpec, d: int, level: int) -> bool:
    if d <= level or d % level:
        return False
    step = d // level
    if step & (step - 1):
        return False                                       # not a power of two
    x = graph.bottoms(layer)[0]
    siblings = {_dilation(c) for c in x.consumers if c is not layer} - {None}
    if siblings - {d}:
        return False                                       # an ASPP branch
    return not _identity_shortcut(graph, layer)


def levels(graph: Graph) -> tuple[dict[Blob, int], dict[int, int]]:
    """(every blob's level, the rises: layer index -> the level it raises to)."""
    level: dict[Blob, int] = {b: 1 for b in graph.inputs}
    rises: dict[int, int] = {}
    for layer in graph.layers:
        bottoms = graph.bottoms(layer)
        lin = max((level.get(b, 1) for b in bottoms), default=1)
        lout = lin
        d = _dilation(layer)
        if d is not None and bottoms and _is_rise(graph, layer, d, lin):
            rises[layer.index] = lout = d
        for t in graph.tops(layer):
            level[t] = lout
    return level, rises


def _branch_layer(graph: Graph, blob: Blob) -> LayerSpec | None:
    """The window layer nearest above a join's input (through pointwise layers)."""
    top = _through_pointwise(graph, blob)
    layer = top.producer
    return layer if layer is not None and layer.window is not None else None


def _factor(n: int) -> Pair:
    from fractions import Fraction          # only coarser conversions need it
    return (Fraction(1, n), Fraction(1, n))


def cheapest_exact(graph: Graph, additions: dict[int, Pair]) -> dict[int, int]:
    """For the function-preserving rule: each rise that takes a stride back moves it
    to the convolution just above it, when only pointwise layers lie between and
    nothing else reads them. A convolution with stride f computes its dense output at
    every f-th position, whatever its kernel and dilation, so this stays exact, and
    the rise then runs on the coarser map (its dilation divided). Returns the moves:
    the index of the rise -> the index of the layer that takes its stride instead."""
    moves = {}
    for index in additions:
        layer = next(l for l in graph.layers if l.index == index)
        if _dilation(layer) is None:
            continue
        blob = graph.bottoms(layer)[0]
        for _ in range(64):
            if len(blob.consumers) != 1 or blob.producer is None:
                break
            above = blob.producer
            if above.window is not None:
                if above.conv is not None and not above.is_deconv and above.index not in additions:
                    moves[index] = above.index
                break
            if len(above.bottoms) != 1:
                break
            blob = graph.bottoms(above)[0]
    return moves


def additions_for_output_stride(graph: Graph, target: int) -> dict[int, Pair]:
    """The strides to put back (as removals of 1/f, by layer index) so that the
    network's output stride becomes `target`; {} when nothing can."""
    out = _additions(graph, target)
    return out if out and network_output_stride(graph, out) == target else {}


def _additions(graph: Graph, target: int) -> dict[int, Pair]:
    strides = strides_in_scale(graph)
    level, rises = levels(graph)

    def coarser(b: Blob) -> int:
        s = strides.get(b)
        if s is None:
            return 1
        return max(1, min(level.get(b, 1), int(target // max(s))))

    out: dict[int, Pair] = {}
    made: dict[Blob, int] = {}               # how much coarser each blob is made
    for layer in graph.layers:
        bottoms, tops = graph.bottoms(layer), graph.tops(layer)
        cin = max((made.get(b, 1) for b in bottoms), default=1)
        cout = cin
        if layer.index in rises and tops:
            cout = max(cin, coarser(tops[0]))
            if cout > cin:
                out[layer.index] = _factor(cout // cin)
        if layer.type in ("Eltwise", "Concat") and len(bottoms) > 1:
            for b in bottoms:
                lag = cin // made.get(b, 1)
                branch = _branch_layer(graph, b) if lag > 1 else None
                if branch is not None and branch.index not in out:
                    out[branch.index] = _factor(lag)
                    made[b] = cin
        for t in tops:
            made[t] = cout
    return out


def reachable_coarser(graph: Graph) -> list[int]:
    """The output strides larger than the network's own that it can be taken to."""
    now = network_output_stride(graph)
    out, target = [], int(now) * 2
    for _ in range(8):
        if not additions_for_output_stride(graph, target):
            break
        out.append(target)
        target *= 2
    return out
