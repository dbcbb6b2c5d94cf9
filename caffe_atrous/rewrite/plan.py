"""The conversion plan: what changes in which layer, and why.

`make_plan` looks at each phase's graph, chooses the strides to remove, and
decides per layer:

    Convolution    stride removed; dilation and pad scaled (dilate.py)
    Pooling        stride removed (2x2/2 -> 3x3/1 in the seed convention);
                   a pooling that covered the whole map becomes global
    InnerProduct   refused when its input would grow (weights would not fit)
    RoI pooling    spatial_scale, Python feat_stride, PriorBox step: rescaled
    Eltwise/Concat refused when inputs arrive with different factors
    Deconvolution, Interp, Crop over a denser blob: named in a warning

The plan is plain data. `LayerChange.edit()` turns a change into the
formats-level LayerEdit that is written into a copy of the network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..analysis import strides as st
from ..analysis.shapes import infer_shapes
from ..errors import AtrousError, ConversionWarning, UsageError
from ..formats.facts import Crop, PriorBox, PythonLayer, RoiPool
from ..formats.netspec import LayerEdit, LayerSpec
from ..graph import Blob, Graph
from ..window import Pair, Window, pool_out
from .dilate import EXACT, SEED, dilate_conv, unstride_pool
from .multigrid import apply_grid, last_stage_units

_FEAT_STRIDE = re.compile(r"""(['"]?feat_stride['"]?\s*:\s*)(\d+)""")


@dataclass
class Options:
    output_stride: int | None = 8
    from_layer: str | None = None
    mode: str = SEED
    input_shape: tuple[int, ...] | None = None
    multi_grid: tuple[int, ...] | None = None


@dataclass
class LayerChange:
    layer: LayerSpec
    before: Window | None = None
    after: Window | None = None
    make_global: bool = False
    clear_engine: bool = False
    spatial_scale: tuple[float, float] | None = None
    param_str: tuple[str, str] | None = None
    prior_step: dict[str, tuple[float, float]] | None = None
    reasons: list[str] = field(default_factory=list)

    def edit(self) -> LayerEdit:
        return LayerEdit(
            index=self.layer.index,
            window=self.after if self.after != self.before else None,
            global_pooling=self.make_global,
            clear_engine=self.clear_engine,
            spatial_scale=self.spatial_scale[1] if self.spatial_scale else None,
            param_str=self.param_str[1] if self.param_str else None,
            prior_step={k: v[1] for k, v in self.prior_step.items()} if self.prior_step else None,
        )

    def key(self) -> tuple:
        """What the change does, for comparing the same layer across phases."""
        return (self.after, self.make_global, self.clear_engine, self.spatial_scale,
                self.param_str, None if self.prior_step is None else sorted(self.prior_step.items()))


@dataclass
class Plan:
    changes: dict[int, LayerChange]
    warnings: list[ConversionWarning]
    inexact: list[ConversionWarning]        # why the new network is not function-preserving
    stride_before: st.Number       # int, or a Fraction below 1
    stride_after: st.Number

    def ordered(self) -> list[LayerChange]:
        return [self.changes[i] for i in sorted(self.changes)]


class _PhasePlanner:
    """Decisions for one phase's graph."""

    def __init__(self, graph: Graph, opts: Options):
        self.g = graph
        self.opts = opts
        self.changes: dict[int, LayerChange] = {}
        self.warnings: list[ConversionWarning] = []
        self.inexact: list[ConversionWarning] = []
        self.undilated_pools: set[int] = set()    # kernel > 1 over a denser blob

    # -- helpers ------------------------------------------------------------
    def fail(self, layer: LayerSpec, message: str) -> AtrousError:
        return AtrousError(message, file=self.g.path, line=layer.line, layer=layer.name)

    def warn(self, layer: LayerSpec, message: str, inexact: bool = True) -> None:
        self.warnings.append(ConversionWarning(layer.name, message))
        if inexact:
            self.inexact.append(ConversionWarning(layer.name, message))

    def change(self, layer: LayerSpec) -> LayerChange:
        if layer.index not in self.changes:
            self.changes[layer.index] = LayerChange(layer, before=layer.window, after=layer.window)
        return self.changes[layer.index]

    def factor(self, blob: Blob) -> Pair | None:
        return st.removed_factor(self.s0.get(blob), self.s1.get(blob))

    # -- the decision -------------------------------------------------------
    def run(self) -> None:
        g, opts = self.g, self.opts
        self.s0 = st.cumulative_strides(g)
        if opts.from_layer is not None:
            start = g.layer(opts.from_layer)
            self.removals, self.s1 = st.from_layer(g, start.index) if start else ({}, self.s0)
        else:
            self.removals, self.s1 = st.for_output_stride(g, opts.output_stride)
        self.shapes0 = infer_shapes(g, input_shape=opts.input_shape)
        self.made_global = self._heads()
        if self.made_global:
            self.s1 = st.cumulative_strides(g, self.removals, self.made_global)
        for layer in g.layers:
            self._layer(layer)
        if opts.multi_grid:
            self._multi_grid(opts.multi_grid)
        self._check_sizes()

    def _heads(self) -> set[int]:
        """Poolings that covered the whole map and must become global."""
        heads = set()
        for layer in self.g.layers:
            if layer.pool is None or layer.window is None:
                continue
            (x,) = self.g.bottoms(layer)[:1] or (None,)
            m = self.factor(x) if x is not None else None
            shape = self.shapes0.get(x) if x is not None else None
            if m is None or m == (1, 1) or shape is None or len(shape) != 4 or None in shape[2:]:
                continue
            w, ceil = layer.window, layer.pool.ceil_mode
            if (pool_out(shape[2], w, 0, ceil), pool_out(shape[3], w, 1, ceil)) == (1, 1) \
                    and shape[2:] != (1, 1):
                heads.add(layer.index)
        return heads

    def _layer(self, layer: LayerSpec) -> None:
        bottoms = self.g.bottoms(layer)
        factors = [self.factor(b) for b in bottoms]
        m = factors[0] if factors else None
        if isinstance(layer.params, PythonLayer) and _FEAT_STRIDE.search(layer.params.param_str):
            # a proposal layer: its score input is often reshaped; any spatial input tells
            known = next((f for f in factors if f is not None), None)
            if known is not None and known != (1, 1):
                self._feat_stride(layer, known)
        r = self.removals.get(layer.index, (1, 1))
        if layer.type in ("Eltwise", "Concat"):
            self._merge(layer, bottoms, factors)
        if m is None:
            return
        if layer.conv is not None and not layer.is_deconv:
            self._conv(layer, m, r)
        elif layer.is_deconv:
            if m != (1, 1) and layer.window.kernel != (1, 1):
                self.warn(layer, f"Deconvolution reads '{bottoms[0].name}', now x{_x(m)} denser: it "
                          f"upsamples the dense map, so its output is x{_x(m)} larger than before and "
                          "not exact; check what follows it")
        elif layer.pool is not None:
            self._pool(layer, m, r, bottoms[0])
        elif layer.ip is not None and m != (1, 1):
            raise self._ip_error(layer, bottoms[0], m)
        if m == (1, 1):
            return
        if isinstance(layer.params, RoiPool):
            self._spatial_scale(layer, m)
        if isinstance(layer.params, PriorBox) and layer.params.steps:
            self._prior_step(layer, m)
        if isinstance(layer.params, Crop):
            self.warn(layer, f"Crop reads blobs that are now x{_x(m)} denser; its offset "
                      f"{list(layer.params.offset) or [0]} counts pixels of the original "
                      "resolution: check it")
        if layer.resize is not None:
            p = layer.resize
            what = (f"its fixed output size {p.height}x{p.width}" if p.fixed
                    else "its zoom/shrink factors")
            self.warn(layer, f"Interp reads '{bottoms[0].name}', now x{_x(m)} denser; {what} "
                      "may no longer give the resolution you want: check it")

    def _merge(self, layer: LayerSpec, bottoms: list[Blob], factors: list) -> None:
        spatial = [(b, f) for b, f in zip(bottoms, factors) if f is not None]
        if len({f for _, f in spatial}) > 1:
            parts = ", ".join(f"'{b.name}' x{_x(f)}" for b, f in spatial)
            top = max(f for _, f in spatial)
            kept = [self._kept_stride(b) for b, f in spatial if f != top]
            kept = [k for k in kept if k is not None]
            hint = (f"'{kept[0].name}' keeps its stride {_x(kept[0].window.stride)}: "
                    f"--from {self._first_removable(kept)} would remove it too, or use "
                    "--output-stride") if kept else "use --output-stride"
            raise self.fail(layer, f"its inputs arrive with different removed stride factors "
                            f"({parts}), so they would no longer line up; {hint}")

    def _kept_stride(self, blob: Blob) -> LayerSpec | None:
        """The nearest strided layer upstream of `blob` whose stride stays."""
        seen, todo = set(), [blob]
        while todo:
            b = todo.pop()
            layer = b.producer
            if layer is None or layer.index in seen:
                continue
            seen.add(layer.index)
            if st.own_stride(layer) != (1, 1) and layer.index not in self.removals:
                return layer
            todo.extend(self.g.bottoms(layer))
        return None

    def _first_removable(self, kept: list[LayerSpec]) -> str:
        """The earliest layer, in file order, among those that keep their stride."""
        return min(kept, key=lambda l: l.index).name

    def _conv(self, layer: LayerSpec, m: Pair, r: Pair) -> None:
        w = layer.window
        new, notes = dilate_conv(w, m, r, self.opts.mode)
        if new == w:
            return
        c = self.change(layer)
        c.after = new
        if r != (1, 1):
            c.reasons.append(f"stride {_x(w.stride)} removed")
        if m != (1, 1) and w.kernel != (1, 1):
            c.reasons.append(f"reads a x{_x(m)} denser blob: dilation and pad x{_x(m)}")
        if new != dilate_conv(w, m, r, EXACT)[0]:
            c.reasons.append("takes the new dilation itself (seed convention)")
            self.inexact.append(ConversionWarning(
                layer.name, "its stride was removed and it took the new dilation (seed convention); "
                "--exact keeps its own dilation"))
        for n in notes:
            self.warn(layer, n, inexact=False)
        if layer.conv.engine == "CUDNN" and max(new.dilation) > 1:
            c.clear_engine = True
            c.reasons.append("engine CUDNN removed (cuDNN has no dilated convolution in Caffe)")

    def _pool(self, layer: LayerSpec, m: Pair, r: Pair, x: Blob) -> None:
        mode, dense = self.opts.mode, m != (1, 1)
        if layer.index in self.made_global:
            c = self.change(layer)
            c.make_global = True
            shape = self.shapes0[x]
            c.reasons.append(f"covered the whole {shape[2]}x{shape[3]} map: now global")
            self.warn(layer, f"global {layer.pool.method} pooling over '{x.name}', now x{_x(m)} "
                      "denser: it pools the dense map, not the original positions (not exact)")
            return
        if layer.window is None:       # global pooling
            if dense:
                self.warn(layer, f"global {layer.pool.method} pooling over '{x.name}', now "
                          f"x{_x(m)} denser: it pools the dense map, not the original positions "
                          "(not exact)")
            return
        w = layer.window
        big = w.kernel != (1, 1)
        if dense and big:
            msg = (f"pooling {w.kernel[0]}x{w.kernel[1]} reads '{x.name}', now x{_x(m)} denser; "
                   "Caffe pooling has no dilation, so this cannot be exact")
            if mode == EXACT:
                raise self.fail(layer, msg + ": convert at a larger output stride, or without "
                                "--exact (the layer is then kept and named in a warning)")
            self.warn(layer, msg)
            self.undilated_pools.add(layer.index)
        if r == (1, 1):
            return
        new = unstride_pool(w, r, mode)
        c = self.change(layer)
        c.after = new
        c.reasons.append(f"stride {_x(w.stride)} removed")
        if new.kernel != w.kernel:
            c.reasons.append("2x2 pooling becomes 3x3 with pad 1 (DeepLab/SSD convention)")
            self.inexact.append(ConversionWarning(
                layer.name, "2x2/2 pooling became 3x3/1 (DeepLab/SSD convention); --exact uses "
                "stride 1 instead"))

    def _ip_error(self, layer: LayerSpec, x: Blob, m: Pair) -> AtrousError:
        before = self.shapes0.get(x)
        if before is not None and len(before) == 4 and None not in before[2:]:
            after = f"{before[2] * m[0]}x{before[3] * m[1]}"
            grows = f"grows from {before[2]}x{before[3]} to about {after}"
        else:
            grows = (f"becomes x{_x(m)} denser (give --input-shape to let caffe_atrous check "
                     "whether a pooling before it covers the whole map)")
        return self.fail(layer, f"InnerProduct reads '{x.name}', whose spatial size {grows}, so its "
                         "weights would no longer fit; drop the classifier head with "
                         f"--truncate-after LAYER (the last layer to keep), or convert at a larger "
                         "output stride")

    def _spatial_scale(self, layer: LayerSpec, m: Pair) -> None:
        if m[0] != m[1]:
            raise self.fail(layer, f"spatial_scale cannot follow a factor that differs per axis ({m})")
        old = layer.params.spatial_scale
        c = self.change(layer)
        c.spatial_scale = (old, old * m[0])
        c.reasons.append(f"spatial_scale x{m[0]}: its features are x{m[0]} denser")

    def _feat_stride(self, layer: LayerSpec, m: Pair) -> None:
        text = layer.params.param_str
        match = _FEAT_STRIDE.search(text)
        old = int(match.group(2))
        if m[0] != m[1] or old % m[0]:
            self.warn(layer, f"param_str feat_stride {old} does not divide by the factor {m}: "
                      "set it by hand", inexact=False)
            return
        new_text = text[:match.start(2)] + str(old // m[0]) + text[match.end(2):]
        c = self.change(layer)
        c.param_str = (text, new_text)
        c.reasons.append(f"feat_stride {old} -> {old // m[0]}")

    def _prior_step(self, layer: LayerSpec, m: Pair) -> None:
        new = {}
        for k, v in layer.params.steps:
            f = m[0] if k in ("step", "step_h") else m[1]
            if k == "step" and m[0] != m[1]:
                raise self.fail(layer, "step cannot follow a factor that differs per axis; use "
                                "step_h/step_w")
            new[k] = (v, v / f)
        c = self.change(layer)
        c.prior_step = new
        c.reasons.append("prior step divided by " + "x".join(map(str, sorted(set(m)))))

    def _multi_grid(self, grid: tuple[int, ...]) -> None:
        """DeepLab v3: unit i of the last stage gets its rate times grid[i]."""
        def top_factor(layer):
            tops = self.g.tops(layer)
            return self.factor(tops[0]) if tops else None

        def in_factor(layer):
            bottoms = self.g.bottoms(layer)
            return self.factor(bottoms[0]) if bottoms else None

        top, units = last_stage_units(self.g, in_factor, top_factor)
        if len(units) != len(grid):
            raise AtrousError(f"--multi-grid gives {len(grid)} rates but the last dilated stage has "
                              f"{len(units)} residual units ({', '.join(u[-1].name for u in units)})",
                              file=self.g.path)
        for unit, rate in zip(units, grid):
            for layer in unit:
                if layer.conv is None or layer.is_deconv or layer.window.kernel == (1, 1) \
                        or in_factor(layer) != top or rate == 1:
                    continue
                c = self.change(layer)
                c.after = apply_grid(c.after, rate)
                c.reasons.append(f"multi-grid: rate x{rate}")

    def _check_sizes(self) -> None:
        """Size the converted graph: merging layers must still agree."""
        windows = {i: c.after for i, c in self.changes.items()}
        try:
            infer_shapes(self.g,
                         window_of=lambda l: windows.get(l.index, l.window),
                         is_global=lambda l: l.index in self.made_global or l.is_global_pool,
                         input_shape=self.opts.input_shape)
        except AtrousError as exc:
            culprits = self._undilated_pools_before(exc.layer)
            if not culprits:
                raise
            raise AtrousError(f"{exc.message}, after conversion: {_names(culprits)} pools a denser "
                              "blob without dilation and so shrinks its map less than the dilated "
                              "layers beside it; convert at a larger output stride",
                              file=exc.file, line=exc.line, layer=exc.layer) from None

    def _undilated_pools_before(self, name: str | None) -> list[str]:
        """Warned poolings upstream of layer `name` that shrink their map (kernel > 1
        over a denser blob, with less pad than a same-size pooling would need)."""
        start = self.g.layer(name) if name else None
        if start is None or not self.undilated_pools:
            return []
        found, seen, todo = [], set(), list(self.g.bottoms(start))
        while todo:
            layer = todo.pop().producer
            if layer is None or layer.index in seen:
                continue
            seen.add(layer.index)
            todo.extend(self.g.bottoms(layer))
            w = self.changes[layer.index].after if layer.index in self.changes else layer.window
            if layer.index in self.undilated_pools and \
                    any(2 * w.pad[a] < w.kernel[a] - 1 for a in (0, 1)):
                found.append(layer.name)
        return sorted(found)


def _names(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _x(m) -> str:
    """A factor or stride pair as text: 2, or 2x1 when the axes differ."""
    return str(m[0]) if m[0] == m[1] else f"{m[0]}x{m[1]}"


def _check_options(graphs: list[Graph], opts: Options) -> None:
    if opts.mode not in (EXACT, SEED):
        raise UsageError(f"unknown mode {opts.mode!r}")
    if opts.from_layer is not None:
        if not any(g.layer(opts.from_layer) for g in graphs):
            raise UsageError(f"--from {opts.from_layer}: no layer has that name")
    elif opts.output_stride is None or opts.output_stride < 1:
        raise UsageError("--output-stride must be a positive whole number")


def make_plan(graphs: list[Graph], opts: Options) -> Plan:
    """Decide every change, for every phase; the phases must agree on shared layers."""
    _check_options(graphs, opts)
    changes: dict[int, LayerChange] = {}
    warnings: list[ConversionWarning] = []
    inexact: list[ConversionWarning] = []
    before = after = 1
    for g in graphs:
        p = _PhasePlanner(g, opts)
        p.run()
        got = st.output_stride(p.s1)
        if opts.from_layer is None and got != opts.output_stride:
            reach = st.reachable_output_strides(g)
            raise AtrousError(
                f"output stride {opts.output_stride} is not reachable for this network; reachable: "
                f"{', '.join(map(str, reach))}", file=g.path)
        for i, c in p.changes.items():
            if i in changes and changes[i].key() != c.key():
                raise AtrousError("the TRAIN and TEST phases need different changes here; convert "
                                  "each phase's file separately", file=g.path, line=c.layer.line,
                                  layer=c.layer.name)
            changes.setdefault(i, c)
        for w in p.warnings:
            if w not in warnings:
                warnings.append(w)
        for w in p.inexact:
            if w not in inexact:
                inexact.append(w)
        before = max(before, st.output_stride(p.s0))
        after = max(after, got)
    return Plan(changes, warnings, inexact, before, after)
