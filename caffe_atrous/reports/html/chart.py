"""The chart, drawn by matplotlib as SVG: per layer, in file order, the output
stride and the receptive field before and after; per stage, the MACs before
and after.

The figure gets an Agg canvas of its own (no pyplot, so no display and no
change to the caller's matplotlib backend); text stays text in the SVG.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from typing import Any

from ...analysis.cost import receptive_fields
from ...analysis.strides import cumulative_strides
from ...pipeline.conversion import Result
from ...pipeline.loading import Loaded
from ..text import UNITS
from .model import graphs, is_in_place

BEFORE, AFTER = "#7f7f7f", "#c0392b"


@dataclass
class Series:
    """The data of the per-layer charts: the layers in file order (in-place ones left out),
    and for the first top of each its output stride and receptive field, before and after."""

    names: list[str]                      # layers in file order (in-place layers left out)
    stride: tuple[list, list]             # before, after (None: not spatial)
    field: tuple[list, list]              # receptive field, before, after


def series(before: Loaded, result: Result, input_shape=None) -> Series:
    """The per-layer chart data of the conversion `result` of `before`, its graphs sized
    by `input_shape` (None: the declared input)."""
    g0, g1 = graphs(before, result, input_shape)
    s0, s1 = cumulative_strides(g0), cumulative_strides(g1)
    rf0, rf1 = receptive_fields(g0, s0), receptive_fields(g1, s1)
    out = Series([], ([], []), ([], []))
    for l0, l1 in zip(g0.layers, g1.layers):
        tops0, tops1 = g0.tops(l0), g1.tops(l1)
        if not tops0 or is_in_place(l0):
            continue                      # in-place layers change neither
        out.names.append(l0.name)
        for i, (top, strides, rf) in enumerate(((tops0[0], s0, rf0), (tops1[0], s1, rf1))):
            s = strides.get(top)
            out.stride[i].append(None if s is None else float(max(s)))
            out.field[i].append(rf.get(id(top)))
    return out


def _nan(values: list) -> list[float]:
    return [float("nan") if v is None else v for v in values]


def _per_layer(ax, data: Series, pair: tuple[list, list], title: str, ticks: list[str]) -> None:
    x = range(len(data.names))
    ax.step(x, _nan(pair[0]), where="post", color=BEFORE, linestyle="--", label="before")
    ax.step(x, _nan(pair[1]), where="post", color=AFTER, label="after")
    from matplotlib.ticker import FuncFormatter
    ax.set_yscale("log", base=2)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_title(title, loc="left", fontsize=10)
    marks: list[int] = []
    for n in ticks:                       # stage starts, but not two labels on top of each other
        if n in data.names and (not marks or data.names.index(n) - marks[-1] > len(data.names) / 40):
            marks.append(data.names.index(n))
    ax.set_xticks(marks, [data.names[i] for i in marks], rotation=30, ha="right", fontsize=8)
    ax.set_xlim(-0.5, max(len(data.names) - 0.5, 0.5))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, frameon=False)


def _macs(ax, stages: list[dict[str, Any]]) -> None:
    names = [s["stage"] for s in stages]
    x = range(len(names))
    largest = max((v or 0 for s in stages for v in s["macs"]), default=0)
    base, units = UNITS["macs"]           # the unit that puts the largest bar at 1 to 999
    power = min(int(math.log10(largest) // 3), len(units) - 1) if largest >= 1 else 0
    unit, scale = units[power] or "MACs", base ** power
    for i, (label, colour, shift) in enumerate((("before", BEFORE, -0.2), ("after", AFTER, 0.2))):
        values = [(s["macs"][i] or 0) / scale for s in stages]
        ax.bar([v + shift for v in x], values, width=0.4, color=colour, label=label)
    ax.set_xticks(list(x), names, fontsize=8)
    ax.set_title(f"multiply-accumulates per stage ({unit})", loc="left", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, frameon=False)


def svg(before: Loaded, result: Result, report: dict[str, Any], input_shape=None) -> str:
    """The chart as an <svg> element."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    data = series(before, result, input_shape)
    ticks = [s["first_layer"] for s in report["stages"]]
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "caffe-atrous",
                                "font.family": "sans-serif"}):
        fig = Figure(figsize=(10, 9), layout="constrained")
        FigureCanvasAgg(fig)
        top, middle, bottom = fig.subplots(3, 1)
        _per_layer(top, data, data.stride, "output stride per layer", ticks)
        _per_layer(middle, data, data.field, "receptive field per layer (pixels)", ticks)
        _macs(bottom, report["stages"])
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None,
                                                  "Type": None})
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", buf.getvalue(), flags=re.S)
    return text[text.index("<svg"):].strip()
