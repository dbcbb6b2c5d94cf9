"""Where branches meet (Eltwise, Concat), and whether they still line up.

Two checks, one per way a join can break:

    factors   every input must have become denser by the same factor, or the
              positions they hold no longer correspond (`check_factors`);
    sizes     after conversion every input must still have the same spatial
              size (`check_sizes`, on the converted graph's shapes); an
              undilated pooling over a denser blob is the usual culprit.

Each error names the join, the inputs, and the layer the user can change.
In the default convention, before the size check, `repad_branches` gives the
branches of a join whose sizes no longer agree "same" padding (every layer
whose stride was removed on them), as published Inception backbones do:

    reduction_b_3x3 3x3/2 valid  ->  s1 d4 p4;  reduction_b_pool 3x3/2  ->  3x3/1 p1
"""

from __future__ import annotations

from ..analysis import strides as st
from ..analysis.shapes import infer_converted
from ..core.errors import AtrousError
from ..graph.records import LayerSpec
from ..graph.graph import Blob, Graph
from ..core.window import Window, fmt_pair


def _upstream(graph: Graph, start: list[Blob]):
    """Every layer upstream of the blobs in `start`, each once."""
    seen, todo = set(), list(start)
    while todo:
        layer = todo.pop().producer
        if layer is None or layer.index in seen:
            continue
        seen.add(layer.index)
        todo.extend(graph.bottoms(layer))
        yield layer


def _kept_stride(graph: Graph, blob: Blob, removals: dict) -> LayerSpec | None:
    """The nearest strided layer upstream of `blob` whose stride stays."""
    return next((l for l in _upstream(graph, [blob])
                 if st.own_stride(l) != (1, 1) and l.index not in removals), None)


def check_factors(ctx, layer: LayerSpec) -> None:
    """An Eltwise/Concat whose inputs arrive with different removed factors is refused.

        res4a = Eltwise(res4a_branch1 x1, res4a_branch2c x2)  ->  error: --from res4a_branch1
    """
    bottoms = ctx.graph.bottoms(layer)
    spatial = [(b, f) for b in bottoms if (f := ctx.factor(b)) is not None]
    if len({f for _, f in spatial}) <= 1:
        return
    parts = ", ".join(f"'{b.name}' x{fmt_pair(f)}" for b, f in spatial)
    top = max(f for _, f in spatial)
    kept = [k for b, f in spatial if f != top
            if (k := _kept_stride(ctx.graph, b, ctx.removals)) is not None]
    if kept:
        first = min(kept, key=lambda l: l.index)
        hint = (f"'{kept[0].name}' keeps its stride {fmt_pair(kept[0].window.stride)}: "
                f"--from {first.name} would remove it too, or use --output-stride")
    else:
        hint = "use --output-stride"
    raise ctx.fail(layer, f"its inputs arrive with different removed stride factors ({parts}), "
                     f"so they would no longer line up; {hint}")


def names(names: list[str]) -> str:
    """Layer names quoted for a message: 'a', 'a' and 'b', 'a', 'b' and 'c'."""
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def check_sizes(graph: Graph, windows: dict[int, Window], made_global: set[int],
                undilated: set[int], input_shape=None) -> dict:
    """Size the converted graph (`windows`: the new windows by layer index): the
    inputs of every join must still agree. A clash downstream of a pooling that
    shrinks a denser map less than the dilated layers beside it names that pooling.
    Returns the shapes.

        reduction_b_concat(3x3 conv /2 dilated ..., 3x3 valid pool /2)  ->  error naming the pool
    """
    try:
        return infer_converted(graph, windows, made_global, input_shape)
    except AtrousError as exc:
        start = graph.layer(exc.layer) if exc.layer else None
        culprits = [] if start is None else sorted(
            l.name for l in _upstream(graph, graph.bottoms(start)) if l.index in undilated
            and _shrinks(windows.get(l.index, l.window)))
        if not culprits:
            raise
        raise AtrousError(f"{exc.message}, after conversion: {names(culprits)} pools a denser "
                          "blob without dilation and so shrinks its map less than the dilated "
                          "layers beside it; convert at a larger output stride",
                          file=exc.file, line=exc.line, layer=exc.layer) from None


def _shrinks(w: Window) -> bool:
    """Less pad than a same-size pooling would need."""
    return any(2 * w.pad[a] < w.kernel[a] - 1 for a in (0, 1))


def _same(layer: LayerSpec, w: Window) -> Window | None:
    """The window with the pad that keeps its input size (None: there is none)."""
    if w.stride != (1, 1):
        return None
    pad = []
    for a in (0, 1):
        span = w.dilation[a] * (w.kernel[a] - 1) if layer.conv is not None else w.kernel[a] - 1
        if span % 2:
            return None
        pad.append(span // 2)
    return w.replace(pad=tuple(pad))


def _branch_layers(graph: Graph, join: LayerSpec, removals: dict):
    """Layers whose stride was removed on some, not all, of the join's branches."""
    bottoms = graph.bottoms(join)
    common = set.intersection(*({l.index for l in _upstream(graph, [b])} for b in bottoms))
    return [l for l in _upstream(graph, bottoms) if l.index in removals and l.index not in common
            and l.window is not None and not l.is_deconv]


def repad_branches(graph: Graph, windows: dict[int, Window], removals: dict, made_global: set[int],
                   input_shape=None) -> tuple[list[tuple[str, dict[int, Window]]], bool]:
    """While a join's inputs disagree in size, give its branches' unstrided
    layers "same" padding; `windows` is updated. Returns (join, {index: window})
    per join re-padded, in order, and whether the graph now sizes without a clash
    (then check_sizes on it has nothing to add); a clash it cannot fix is left to
    check_sizes."""
    done: list[tuple[str, dict[int, Window]]] = []
    for _ in graph.layers:
        try:
            infer_converted(graph, windows, made_global, input_shape)
            return done, True
        except AtrousError as exc:
            join = graph.layer(exc.layer) if exc.layer else None
            if join is None or join.type not in ("Eltwise", "Concat"):
                return done, False
            new = {}
            for layer in _branch_layers(graph, join, removals):
                w = windows.get(layer.index, layer.window)
                same = _same(layer, w)
                if same is not None and same != w:
                    new[layer.index] = same
            if not new:
                return done, False
            windows.update(new)
            done.append((join.name, dict(sorted(new.items()))))
    return done, False
