"""The picture laid out by Graphviz's `dot`, as SVG to put inline in the page.

Boxes are filled by the output stride of their output in the converted
network; changed boxes get a red outline and the class `changed`. Graphviz
gives every box and arrow an SVG <title> holding its internal node name; those
are replaced by the tooltip texts, so hovering shows a layer's parameters and
the reasons for its change without any script.
"""

from __future__ import annotations

import html
import re
from fractions import Fraction

from .model import Box, Picture

FONT = "Helvetica,Arial,sans-serif"
# Light fills, one per output stride, dark enough apart to tell in a screenshot.
PALETTE = {1: "#ffffff", 2: "#fff2cc", 4: "#d9ead3", 8: "#cfe2f3", 16: "#e4d3ec", 32: "#f8d3c4"}
OTHER_STRIDE = "#eeeeee"                  # fractional (after an upsampling) or past 32
NOT_SPATIAL = "#d0d0d0"                   # after a global pooling, an InnerProduct, ...
CHANGED = "#c0392b"


def fill(stride: Fraction | None) -> str:
    """The fill colour of a box whose output is at `stride`: one per power of two up to 32,
    a grey for other or fractional strides, a darker grey for None (not spatial)."""
    if stride is None:
        return NOT_SPATIAL
    return PALETTE.get(int(stride), OTHER_STRIDE) if stride.denominator == 1 else OTHER_STRIDE


def _label(box: Box) -> str:
    """An HTML-like Graphviz label: name in bold, type (and folded layers), geometry."""
    kind = box.type + (" + " + ", ".join(box.folded) if box.folded else "")
    rows = [f"<B>{html.escape(box.name)}</B>", f'<FONT POINT-SIZE="8">{html.escape(kind)}</FONT>']
    if box.geometry:
        colour = f' COLOR="{CHANGED}"' if box.changed else ""
        rows.append(f'<FONT POINT-SIZE="9"{colour}>{html.escape(box.geometry)}</FONT>')
    cells = "".join(f"<TR><TD>{row}</TD></TR>" for row in rows)   # rows, not <BR/>: room for
    return f'<<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="1">{cells}</TABLE>>'   # descenders


def _source(picture: Picture):
    import graphviz
    g = graphviz.Digraph(name="network", engine="dot", format="svg")
    g.attr(rankdir="TB", nodesep="0.2", ranksep="0.25", fontname=FONT, bgcolor="transparent")
    g.attr("node", shape="box", style="rounded,filled", fontname=FONT, fontsize="10",
           margin="0.1,0.03", height="0.3", color="#555555", penwidth="1")
    g.attr("edge", fontname=FONT, fontsize="8", fontcolor="#444444", arrowsize="0.6",
           color="#666666")
    key = {box.id: f"n{i}" for i, box in enumerate(picture.boxes)}
    for box in picture.boxes:
        extra = {"class": "changed"} if box.changed else {}
        if box.changed:
            extra.update(color=CHANGED, penwidth="3")
        g.node(key[box.id], _label(box), id=box.id, fillcolor=fill(box.stride),
               shape="ellipse" if box.is_input else "box", **extra)
    for i, arrow in enumerate(picture.arrows):
        g.edge(key[arrow.tail], key[arrow.head], label=arrow.size, id=f"edge-{i}")
    return g


_ELEMENT = re.compile(r'(<g id="(?P<id>[^"]+)" class="(?:node|edge)[^"]*">\s*<title>)[^<]*(</title>)')


def svg(picture: Picture) -> str:
    """The picture as an <svg> element (no XML prolog, comments or DOCTYPE)."""
    text = _source(picture).pipe(encoding="utf-8")
    titles = {box.id: "\n".join(box.tooltip) for box in picture.boxes}
    titles.update({f"edge-{i}": f"{a.blob}" + (f": {a.size}" if a.size else "")
                   for i, a in enumerate(picture.arrows)})

    def title(m: re.Match) -> str:
        tip = titles.get(html.unescape(m.group("id")), "")
        return m.group(1) + html.escape(tip, quote=False) + m.group(3)
    text = _ELEMENT.sub(title, text)
    text = re.sub(r"<!--.*?-->\n?", "", text, flags=re.S)
    return text[text.index("<svg"):].strip()
