"""The conversion report: what changed and why, and what it costs, per stage.

A stage is every layer whose output has the same stride in the original
network (4, 8, 16, 32); the head (after a global pooling or a classifier) is
its own stage. With known input sizes the report gives each stage's spatial
size, multiply-accumulates and activation memory before and after, so a user
sees what output stride 8 costs before training at it.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from .analysis import strides as st
from .analysis.cost import activation_bytes, layer_macs, receptive_fields
from .analysis.shapes import infer_shapes
from .convert import Loaded, Result
from .errors import AtrousError


def _num(v: Fraction | None) -> float | int | None:
    if v is None:
        return None
    return int(v) if v.denominator == 1 else float(v)


def build(before: Loaded, result: Result, input_shape=None) -> dict[str, Any]:
    """The report as plain data (what --report-json writes)."""
    g0 = before.graph()
    g1 = Loaded(result.net, before.path, [], False).graph()
    s0, s1 = st.cumulative_strides(g0), st.cumulative_strides(g1)
    try:
        sh0, sh1 = infer_shapes(g0, input_shape=input_shape), infer_shapes(g1, input_shape=input_shape)
    except AtrousError:                    # sizes are optional in a report
        sh0 = sh1 = {}
    rf0, rf1 = receptive_fields(g0, s0), receptive_fields(g1, s1)
    mac0, mac1 = layer_macs(g0, sh0), layer_macs(g1, sh1)
    mem0, mem1 = activation_bytes(g0, sh0), activation_bytes(g1, sh1)

    stages: dict[str, dict[str, Any]] = {}
    for l0, l1 in zip(g0.layers, g1.layers):
        tops0, tops1 = g0.tops(l0), g1.tops(l1)
        stride = s0.get(tops0[0]) if tops0 else None
        spatial_after = bool(tops1) and s1.get(tops1[0]) is not None
        key = f"stride {st.fmt_stride(max(stride))}" if stride is not None and spatial_after \
            else "head"
        stage = stages.setdefault(key, {
            "stage": key, "layers": 0, "output_stride": [None, None],
            "receptive_field": [None, None], "size": [None, None],
            "macs": [0, 0], "activation_bytes": [0, 0]})
        stage["layers"] += 1
        for i, (tops, strides, rf, shapes) in enumerate(
                ((tops0, s0, rf0, sh0), (tops1, s1, rf1, sh1))):
            for b in tops:
                if strides.get(b) is not None:
                    stage["output_stride"][i] = _num(max(strides[b]))
                if rf.get(id(b)) is not None:
                    stage["receptive_field"][i] = max(stage["receptive_field"][i] or 0, rf[id(b)])
                shape = shapes.get(b)
                if shape is not None and len(shape) == 4 and None not in shape[2:] \
                        and strides.get(b) is not None:
                    area = stage.setdefault("_area", [0, 0])
                    if shape[2] * shape[3] > area[i]:
                        area[i] = shape[2] * shape[3]
                        stage["size"][i] = f"{shape[2]}x{shape[3]}"
        for i, (macs, mem, name) in enumerate(((mac0, mem0, l0.name), (mac1, mem1, l1.name))):
            for field, table in (("macs", macs), ("activation_bytes", mem)):
                value = table.get(name)
                if value is None or stage[field][i] is None:
                    stage[field][i] = None
                else:
                    stage[field][i] += value

    def total(field: str, i: int):
        values = [s[field][i] for s in stages.values()]
        return None if any(v is None for v in values) else sum(values)

    layers = layer_changes(result.plan)
    totals = {f: [total(f, 0), total(f, 1)] for f in ("macs", "activation_bytes")}
    for stage in stages.values():
        stage.pop("_area", None)
    return {
        "input_shape": list(next((sh0[b] for b in g0.inputs if sh0.get(b)), []) or []) or None,
        "output_stride": [_num(result.plan.stride_before), _num(result.plan.stride_after)],
        "layers": layers, "stages": list(stages.values()), "totals": totals,
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


def format_changes(layers: list[dict[str, Any]]) -> str:
    """The changed layers as a table (what -v and --report print)."""
    rows = [("layer", "type", "before", "after", "why")]
    for l in layers:
        before, after = l["before"] or "", l["after"] or ""
        if l["spatial_scale"]:
            before, after = (f"scale {v:g}" for v in l["spatial_scale"])
        if l["param_str"]:
            before, after = l["param_str"]
        rows.append((l["name"], l["type"], before, after, "; ".join(l["why"])))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join(("  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4]).rstrip()
                     for r in rows)


def _cost(pair, unit: str) -> str:
    """'0.73G -> 11.71G x16.00' for a (before, after) pair."""
    show = (lambda v: f"{v / 1e9:.2f}G") if unit == "G" else (lambda v: f"{v / 2**20:.1f}MB")
    a, b = ("?" if v is None else show(v) for v in pair)
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
                     _cost(s["macs"], "G"), _cost(s["activation_bytes"], "MB")))
    t = report["totals"]
    rows.append(("total", "", "", "", "", _cost(t["macs"], "G"), _cost(t["activation_bytes"], "MB")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    if report["layers"]:
        lines += ["", format_changes(report["layers"])]
    return "\n".join(l.rstrip() for l in lines)
