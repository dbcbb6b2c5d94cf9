"""The HTML page around the two pictures: one file, nothing fetched.

A Content-Security-Policy of `default-src 'none'` (inline styles and data:
images allowed) tells the browser that the page loads nothing else; there is
no script. Stage rows, changed layers and warnings link to their box in the
picture (an anchor on the box's SVG id; `:target` highlights it).
"""

from __future__ import annotations

import html
from typing import Any

from ... import __version__
from ..text import change_pair, format_cost
from .draw import CHANGED, NOT_SPATIAL, OTHER_STRIDE, PALETTE
from .model import Picture

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

STYLE = f"""
body {{ font-family: Helvetica, Arial, sans-serif; margin: 1.5em; color: #222; }}
h1 {{ font-size: 1.4em; margin-bottom: 0.2em; }} h2 {{ font-size: 1.15em; margin-top: 1.6em; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.25em 0.7em; text-align: left; }}
th {{ background: #f4f4f4; }}
td.geometry {{ white-space: nowrap; }}
a {{ color: #1f5fa8; }}
.legend span {{ display: inline-block; padding: 0.15em 0.6em; margin-right: 0.4em;
  border: 1px solid #555; border-radius: 4px; font-size: 0.85em; }}
.legend span.changed {{ border: 3px solid {CHANGED}; }}
.picture {{ overflow-x: auto; border: 1px solid #ddd; }}
.picture svg {{ display: block; }}
g.node {{ scroll-margin-top: 30vh; }}
g.node:target path, g.node:target polygon, g.node:target ellipse {{ stroke: #000;
  stroke-width: 6px; }}
li.warning {{ margin-bottom: 0.3em; }}
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _link(name: str | None, picture: Picture) -> str:
    if name is None:
        return ""
    target = picture.anchor.get(name)
    return f'<a href="#{_e(target)}">{_e(name)}</a>' if target else _e(name)


def _pair(v: list) -> str:
    a, b = ("-" if x is None else str(x) for x in v)
    return a if a == b else f"{a} -&gt; {b}"


def stage_table(report: dict[str, Any], picture: Picture) -> str:
    """The stages of the `--report` data `report` as an HTML table, before -> after, each
    first layer linked to its box in `picture`, with a row of totals."""
    head = ("stage", "first layer", "layers", "stride", "receptive field", "size", "MACs",
            "activations")
    rows = ["<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for s in report["stages"]:
        cells = [_e(s["stage"]), _link(s["first_layer"], picture), str(s["layers"]),
                 _pair(s["output_stride"]), _pair(s["receptive_field"]), _pair(s["size"]),
                 _e(format_cost(s["macs"], "macs")),
                 _e(format_cost(s["activation_bytes"], "bytes"))]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    t = report["totals"]
    rows.append(f'<tr><th colspan="6">total</th><th>{_e(format_cost(t["macs"], "macs"))}</th>'
                f'<th>{_e(format_cost(t["activation_bytes"], "bytes"))}</th></tr>')
    return "<table>\n" + "\n".join(rows) + "\n</table>"


def change_table(report: dict[str, Any], picture: Picture) -> str:
    """The changed layers of `report` as an HTML table (geometry before and after, why),
    each linked to its box in `picture`; a sentence when no layer changed."""
    if not report["layers"]:
        return "<p>No layer changed.</p>"
    rows = ["<tr><th>layer</th><th>type</th><th>before</th><th>after</th><th>why</th></tr>"]
    for l in report["layers"]:
        before, after = change_pair(l)
        rows.append(f"<tr><td>{_link(l['name'], picture)}</td><td>{_e(l['type'])}</td>"
                    f'<td class="geometry">{_e(before)}</td><td class="geometry">{_e(after)}</td>'
                    f"<td>{_e('; '.join(l['why']))}</td></tr>")
    return "<table>\n" + "\n".join(rows) + "\n</table>"


def warning_list(warnings, picture: Picture) -> str:
    """The `warnings` as an HTML list, each layer named linked to its box in `picture`; a
    sentence when there are none."""
    if not warnings:
        return "<p>No warnings.</p>"
    items = [f'<li class="warning">{_link(w.layer, picture) + ": " if w.layer else ""}'
             f"{_e(w.message)}</li>" for w in warnings]
    return "<ul>\n" + "\n".join(items) + "\n</ul>"


def legend() -> str:
    """The HTML key to the picture: the fill of each output stride, the outline of a
    change, and what hovering, folded boxes and arrows show."""
    spans = [f'<span style="background:{c}">stride {s}</span>' for s, c in PALETTE.items()]
    spans += [f'<span style="background:{OTHER_STRIDE}">other stride</span>',
              f'<span style="background:{NOT_SPATIAL}">not spatial</span>',
              '<span class="changed">changed: before -&gt; after</span>']
    return '<p class="legend">Fill: output stride in the converted network. ' + "".join(spans) + \
        "</p><p>Hover a box for its parameters and the reasons for its change; in-place " \
        "layers (ReLU, BatchNorm, Scale, ...) are drawn inside the box of the layer they follow. " \
        "Arrows carry the blob's size, before -&gt; after.</p>"


def page(title: str, report: dict[str, Any], warnings, picture: Picture, network_svg: str,
         chart_svg: str) -> str:
    """The whole HTML page titled `title`: the summary, the `report` tables, the `warnings`,
    the chart and the network (`chart_svg`, `network_svg`: inline <svg> elements)."""
    os0, os1 = report["output_stride"]
    shape = report["input_shape"]
    summary = f"output stride {os0} -&gt; {os1}; " + (
        f"input {'x'.join(map(str, shape))}" if shape else
        "input size unknown (give --input-shape for sizes and costs)") + \
        f"; {len(report['layers'])} layers changed"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="generator" content="caffe-atrous {_e(__version__)}">
<title>{_e(title)}: atrous conversion</title>
<style>{STYLE}</style>
</head>
<body>
<h1>{_e(title)}</h1>
<p>{summary}</p>
<h2 id="stages">Stages</h2>
{stage_table(report, picture)}
<h2 id="changes">Changed layers</h2>
{change_table(report, picture)}
<h2 id="warnings">Warnings</h2>
{warning_list(warnings, picture)}
<h2 id="chart">Output stride, receptive field and cost</h2>
<div class="chart">
{chart_svg}
</div>
<h2 id="network">The network, converted</h2>
{legend()}
<div class="picture">
{network_svg}
</div>
</body>
</html>
"""
