"""--align: "same" padding, so that the feature grid is aligned with the image.

After every other window decision of a phase (the rules, multi-grid, the
re-padding of joins), each convolution (of every flavour) and each pooling with
a kernel larger than 1 whose pad is smaller than "same" gets "same" padding:

    convolution   pad = d (k - 1) / 2     3x3 s2 p0 -> p1;  3x3 d4 p2 -> p4
    pooling       pad = (k - 1) / 2       3x3 s2 p0 -> p1, and it rounds down

Position i of a map at stride s then sits over pixel i * s, and the map has
ceil(input / s) positions. Caffe rounds a pooling's size up, ceil((H + 2p - k)
/ s) + 1, which with "same" pad is one position too many wherever s divides H,
so a strided pooling also rounds down (round_mode: FLOOR, or a fork's
ceil_mode: false), as soeaver's aligned Inception-v4 backbones do.

Left as they are, and named in a warning: an even effective kernel (a 2x2
pooling: no centre, no "same" pad); a STOCHASTIC pooling (Caffe pads only MAX and
AVE). Left as they are, silently: pads already "same" or larger, Deconvolutions
(their pad crops an upsampled map), global poolings, poolings that cover their
whole map (ResNet's pool5) and the bins of a pyramid pooling (which tile the
map). "Same" pad is always below the kernel, as Caffe requires of a pooling's
pad. None of this touches a parameter blob, so the weights still fit, except an
InnerProduct's whose input --align resizes: that is refused (check_classifiers).
The re-padded layers are not exact (exactness.py names them).
"""

from __future__ import annotations

from typing import NamedTuple

from ..analysis.shapes import fmt_shape
from ..core.errors import ConversionWarning
from ..core.window import Window, fmt_pair
from ..graph.graph import Graph
from .changes import LayerChange

REASON = "'same' padding (--align): the grid is aligned with the image"
ROUND_DOWN = "rounds its size down (--align): ceil(input / stride) positions"
PADDED_POOLS = ("MAX", "AVE")           # the pooling methods Caffe pads


class Aligned(NamedTuple):
    """One window aligned: its "same" padding, whether (a pooling) it must round
    down, and the axes whose effective kernel is even and keep their pad."""

    window: Window
    round_down: bool = False
    even: tuple[int, ...] = ()


def same_pad(kernel: int, dilation: int = 1) -> int | None:
    """The pad that centres a kernel on each position, d (k - 1) / 2; None when the
    effective kernel (k - 1) d + 1 is even and has no centre."""
    span = dilation * (kernel - 1)
    return None if span % 2 else span // 2


def align_window(w: Window, pooling: bool = False, ceil_mode: bool = False) -> Aligned:
    """`w` with "same" pad on every axis where its pad is smaller.

        conv 3x3 s2 p0           ->  p1
        conv 1x7 p0x0            ->  p0x3
        conv 3x3 d4 p2           ->  d4 p4
        pool 3x3 s2 p0 (ceil)    ->  p1, rounds down: ceil(H / 2) positions
        pool 2x2 s2 p0           ->  kept: even on both axes
    """
    pad, even = list(w.pad), []
    for a in (0, 1):
        same = same_pad(w.kernel[a], w.dilation[a])
        if same is None:
            even.append(a)
        else:
            pad[a] = max(pad[a], same)
    new = w.replace(pad=tuple(pad))
    strided = [a for a in (0, 1) if new.stride[a] > 1]
    round_down = pooling and ceil_mode and bool(strided) and all(
        new.pad[a] == same_pad(new.kernel[a], new.dilation[a]) for a in strided)
    return Aligned(new, round_down, tuple(even))


class Alignment(NamedTuple):
    """What --align did to one phase: the new windows and the poolings that now
    round down (layer indices), and the layers that keep their pad, with why."""

    windows: dict[int, Window]
    round_down: list[int]
    kept: list[tuple[str, str]]


def _candidates(g: Graph, windows: dict[int, Window], skip: set[int]):
    """(layer, its decided window) of every convolution, classifier made a
    convolution and pooling that --align may change: a kernel larger than 1, or a
    1x1 pooling that rounds up."""
    for layer in g.layers:
        w = windows.get(layer.index, layer.window)
        if w is None or layer.is_deconv or layer.index in skip:
            continue
        if w.kernel != (1, 1) or (layer.pool is not None and layer.pool.ceil_mode):
            yield layer, w


def _whole_map(g: Graph, shapes0: dict) -> set[int]:
    """Poolings whose window covers their whole input (ResNet's pool5, 7x7 on 7x7):
    global in effect, and what a classifier after them was trained on."""
    out = set()
    for layer in g.layers:
        if layer.pool is not None and layer.window is not None:
            x, y = shapes0.get(g.bottoms(layer)[0]), shapes0.get(g.tops(layer)[0])
            if x and y and len(x) == len(y) == 4 and y[2:] == (1, 1) != x[2:]:
                out.add(layer.index)
    return out


def align_phase(g: Graph, windows: dict[int, Window], skip: set[int],
                shapes0: dict | None = None) -> Alignment:
    """Align every decided window of the phase `g` (`windows`: the new windows by
    layer index; `skip`: poolings made global, pyramid-pooling bins; `shapes0`: the
    original shapes, which name the poolings that cover their whole map)."""
    out = Alignment({}, [], [])
    skip = skip | _whole_map(g, shapes0 or {})
    for layer, w in _candidates(g, windows, skip):
        pool = layer.pool
        a = align_window(w, pool is not None, pool is not None and pool.ceil_mode)
        if pool is not None and pool.method not in PADDED_POOLS:
            if a.window != w:
                out.kept.append((layer.name, f"Caffe pads only MAX and AVE pooling, not "
                                 f"{pool.method}: it keeps pad {fmt_pair(w.pad)}"))
            continue
        if a.window != w:
            out.windows[layer.index] = a.window
        if a.round_down:
            out.round_down.append(layer.index)
        if a.even:
            out.kept.append((layer.name, _even(w, a.even)))
    return out


def _even(w: Window, axes: tuple[int, ...]) -> str:
    """Why a kernel with no centre keeps its pad."""
    kernel = f"kernel {w.kernel[0]}x{w.kernel[1]}" + (
        f" with dilation {fmt_pair(w.dilation)}" if w.dilation != (1, 1) else "")
    if len(axes) == 2:
        return f"{kernel} is even (no centre), so no pad aligns it: it keeps pad {fmt_pair(w.pad)}"
    axis = ("height", "width")[axes[0]]
    return (f"{kernel} is even along its {axis} (no centre), so no pad aligns it there: that "
            f"axis keeps pad {w.pad[axes[0]]}")


def check_classifiers(ctx, changes: dict[int, LayerChange], sizing: Graph, shapes: dict) -> None:
    """An InnerProduct (not made a convolution) whose input --align resized would no
    longer fit its weights: refused, as rules.py refuses one whose input grows.
    `sizing` is the graph the converted `shapes` were computed on."""
    g = ctx.graph
    resized = {l.index: l for l in sizing.layers}
    for layer in g.layers:
        c = changes.get(layer.index)
        if layer.ip is None or not layer.bottoms or (c is not None and c.head is not None):
            continue
        x = g.bottoms(layer)[0]
        before, after = ctx.shapes0.get(x), shapes.get(sizing.bottoms(resized[layer.index])[0])
        if before is None or after is None or before == after:
            continue
        raise ctx.fail(layer, f"InnerProduct reads '{x.name}', which --align resizes from "
                       f"{fmt_shape(before[1:])} to {fmt_shape(after[1:])}, so its weights "
                       "would no longer fit; make it a convolution with --fc-to-conv, or drop "
                       "the classifier head with --truncate-after LAYER (the last layer to keep)")


def rounded_down(g: Graph, indices: list[int]) -> Graph:
    """`g` with the poolings at `indices` rounding down, to size the converted network."""
    if not indices:
        return g
    chosen = set(indices)
    layers = [l.replace(params=l.pool._replace(ceil_mode=False)) if l.index in chosen else l
              for l in g.layers]
    inputs = [(b.name, b.shape) for b in g.inputs if b.producer is None]
    return Graph(layers, g.phase, inputs, g.path, g.multi_phase, g.input_shape)


def record(g: Graph, changes: dict[int, LayerChange], windows: dict[int, Window],
           done: Alignment) -> list[ConversionWarning]:
    """Write `done` into the phase's changes and windows; its warnings."""
    by_index = {l.index: l for l in g.layers}

    def change(index: int) -> LayerChange:
        layer = by_index[index]
        return changes.setdefault(index, LayerChange(layer=layer, before=layer.window,
                                                     after=layer.window))
    for index, window in done.windows.items():
        c = change(index)
        c.after = window
        if c.head is not None:              # a classifier made a convolution
            c.head = c.head._replace(window=window)
        c.reasons.append(REASON)
    for index in done.round_down:
        c = change(index)
        c.round_down = True
        c.reasons.append(ROUND_DOWN)
    windows.update(done.windows)
    return warnings(g, done)


def warnings(g: Graph, done: Alignment) -> list[ConversionWarning]:
    """One warning naming every re-padded layer (and the poolings that round down),
    one per layer that keeps its pad."""
    from .joins import names
    by_index = {l.index: l.name for l in g.layers}
    out = []
    if done.windows or done.round_down:
        said = []
        if done.windows:
            said.append(f"{names([by_index[i] for i in sorted(done.windows)])} re-padded to "
                        "'same'")
        if done.round_down:
            said.append(f"{names([by_index[i] for i in done.round_down])} "
                        f"round{'s' if len(done.round_down) == 1 else ''} down")
        out.append(ConversionWarning(None, f"--align: {'; '.join(said)}, so that their maps are "
                                     "ceil(input / stride), aligned with the image (not exact; "
                                     "the weights still fit)"))
    out += [ConversionWarning(name, f"--align: {why}") for name, why in done.kept]
    return out
