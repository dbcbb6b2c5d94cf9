"""The conversion report: what changed and why, and what it costs, per stage.

A stage is every layer whose output has the same stride in the original
network (4, 8, 16, 32); the head (after a global pooling or a classifier) is
its own stage. With known input sizes the report gives each stage's spatial
size, multiply-accumulates and activation memory before and after, so a user
sees what output stride 8 costs before training at it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from fractions import Fraction
from typing import Any

from ..analysis import strides as st
from ..analysis.cost import activation_bytes, layer_macs, receptive_fields
from ..analysis.shapes import infer_shapes
from ..pipeline.conversion import Result
from ..pipeline.loading import Loaded
from ..core.errors import AtrousError
from ..graph.graph import Graph


def _num(v: Fraction | None) -> float | int | None:
    if v is None:
        return None
    return int(v) if v.denominator == 1 else float(v)


@dataclass
class _Side:
    """One network's analysis: graph, strides, shapes, receptive fields, costs."""

    graph: Graph
    strides: dict
    shapes: dict
    rf: dict
    macs: dict
    mem: dict


def _analyse(graph: Graph, input_shape) -> _Side:
    strides = st.cumulative_strides(graph)
    try:
        shapes = infer_shapes(graph, input_shape=input_shape)
    except AtrousError:                    # sizes are optional in a report
        shapes = {}
    return _Side(graph, strides, shapes, receptive_fields(graph, strides),
                 layer_macs(graph, shapes), activation_bytes(graph, shapes))


@dataclass
class _Stage:
    """A stage's figures, [before, after] each."""

    stage: str
    first_layer: str
    layers: int = 0
    output_stride: list = field(default_factory=lambda: [None, None])
    receptive_field: list = field(default_factory=lambda: [None, None])
    size: list = field(default_factory=lambda: [None, None])
    macs: list = field(default_factory=lambda: [0, 0])
    activation_bytes: list = field(default_factory=lambda: [0, 0])
    _area: list = field(default_factory=lambda: [0, 0])   # of `size`, the largest map

    def add(self, i: int, side: _Side, layer) -> None:
        """Count `layer` of network i (0 before, 1 after)."""
        for b in side.graph.tops(layer):
            stride, shape = side.strides.get(b), side.shapes.get(b)
            if stride is not None:
                self.output_stride[i] = _num(max(stride))
            if side.rf.get(id(b)) is not None:
                self.receptive_field[i] = max(self.receptive_field[i] or 0, side.rf[id(b)])
            if stride is not None and shape is not None and len(shape) == 4 \
                    and None not in shape[2:] and shape[2] * shape[3] > self._area[i]:
                self._area[i] = shape[2] * shape[3]
                self.size[i] = f"{shape[2]}x{shape[3]}"
        for name, table in (("macs", side.macs), ("activation_bytes", side.mem)):
            value, total = table.get(layer.name), getattr(self, name)
            total[i] = None if value is None or total[i] is None else total[i] + value

    def as_dict(self) -> dict[str, Any]:
        """The stage as one row of the JSON report: its public fields by name, each a
        [before, after] pair where it has two sides."""
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


def _stage_of(before: _Side, after: _Side, l0, l1) -> str:
    """'stride 16' (the layer's output stride in the original), or 'head'."""
    tops0, tops1 = before.graph.tops(l0), after.graph.tops(l1)
    stride = before.strides.get(tops0[0]) if tops0 else None
    if stride is None or not tops1 or after.strides.get(tops1[0]) is None:
        return "head"
    return f"stride {st.fmt_stride(max(stride))}"


def build(before: Loaded, result: Result, input_shape=None) -> dict[str, Any]:
    """The report as plain data (what --report-json writes)."""
    b = _analyse(before.graph(input_shape), input_shape)
    after = result.converted()
    a = _analyse(after.graph(input_shape), input_shape)
    stages: dict[str, _Stage] = {}
    for l0, l1 in zip(b.graph.layers, a.graph.layers):
        key = _stage_of(b, a, l0, l1)
        stage = stages.setdefault(key, _Stage(key, l0.name))
        stage.layers += 1
        stage.add(0, b, l0)
        stage.add(1, a, l1)
    rows = [s.as_dict() for s in stages.values()]

    def total(name: str, i: int):
        values = [r[name][i] for r in rows]
        return None if any(v is None for v in values) else sum(values)

    return {
        "input_shape": list(next((b.shapes[x] for x in b.graph.inputs if b.shapes.get(x)), [])
                            or []) or None,
        "output_stride": [_num(result.plan.stride_before), _num(result.plan.stride_after)],
        "layers": layer_changes(result.plan), "stages": rows,
        "totals": {f: [total(f, 0), total(f, 1)] for f in ("macs", "activation_bytes")},
        "warnings": [str(w) for w in result.warnings],
    }


def layer_changes(plan) -> list[dict[str, Any]]:
    """Every changed layer: name, type, before, after, and why."""
    return [{
        "name": c.layer.name, "type": c.layer.type,
        "before": c.before.describe() if c.before else None,
        "after": "global" if c.make_global else (c.after.describe() if c.after else None),
        "spatial_scale": list(c.spatial_scale) if c.spatial_scale else None,
        "param_str": list(c.param_str) if c.param_str else None,
        "why": c.reasons} for c in plan.ordered()]


def change_pair(l: dict[str, Any]) -> tuple[str, str]:
    """What a changed layer (an entry of layer_changes) was and became, as text."""
    if l["param_str"]:
        return tuple(l["param_str"])
    if l["spatial_scale"]:
        return tuple(f"scale {v:g}" for v in l["spatial_scale"])
    return l["before"] or "", l["after"] or ""


def format_changes(layers: list[dict[str, Any]]) -> str:
    """The changed layers as a table (what -v and --report print)."""
    rows = [("layer", "type", "before", "after", "why")]
    for l in layers:
        before, after = change_pair(l)
        rows.append((l["name"], l["type"], before, after, "; ".join(l["why"])))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join(("  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4]).rstrip()
                     for r in rows)


# The units of a figure: multiply-accumulates in powers of 1000, bytes in powers of 1024.
UNITS = {"macs": (1000, ("", "K", "M", "G", "T", "P")),
         "bytes": (1024, ("B", "KB", "MB", "GB", "TB", "PB"))}


def format_amount(value: float, kind: str) -> str:
    """One figure in the unit that suits it, to 3 significant digits: MACs 0, 512,
    1.28K, 730M, 19.0G; bytes 592B, 195KB, 49.0MB. A figure never reads 0 unless it is."""
    base, units = UNITS[kind]
    if value < 1000:                                  # a count: exact
        return f"{value:g}{units[0]}"
    v, i = float(value), 0
    while True:
        rounded = float(f"{v:.3g}")
        if rounded < 1000 or i == len(units) - 1:     # 999.7K reads 1.00M, not 1000K
            break
        v, i = v / base, i + 1
    return f"{rounded:.{max(0, 2 - math.floor(math.log10(rounded)))}f}{units[i]}"


def format_cost(pair, kind: str) -> str:
    """'730M -> 11.7G x16.00' for a (before, after) pair of `kind` 'macs' or 'bytes'."""
    a, b = ("?" if v is None else format_amount(v, kind) for v in pair)
    ratio = "" if not pair[0] or pair[1] is None else f" x{pair[1] / pair[0]:.2f}"
    return f"{a} -> {b}{ratio}"


def format_table(report: dict[str, Any]) -> str:
    """The report as text."""
    lines = []
    os0, os1 = report["output_stride"]
    shape = report["input_shape"]
    lines.append(f"output stride {os0} -> {os1}" + (f"; input {'x'.join(map(str, shape))}"
                                                     if shape else "; input size unknown "
                                                     "(give --input-shape for sizes and costs)"))
    rows = [("stage", "layers", "stride", "receptive field", "size", "MACs", "activations")]
    for s in report["stages"]:
        def pair(v):
            a, b = ("-" if x is None else str(x) for x in v)
            return a if a == b else f"{a} -> {b}"
        rows.append((s["stage"], str(s["layers"]), pair(s["output_stride"]),
                     pair(s["receptive_field"]), pair(s["size"]),
                     format_cost(s["macs"], "macs"), format_cost(s["activation_bytes"], "bytes")))
    t = report["totals"]
    rows.append(("total", "", "", "", "", format_cost(t["macs"], "macs"),
                 format_cost(t["activation_bytes"], "bytes")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    if report["layers"]:
        lines += ["", format_changes(report["layers"])]
    return "\n".join(l.rstrip() for l in lines)
