"""--report-html: one self-contained HTML page showing what a conversion did.

    html = render(loaded, result, input_shape, text)

The page holds the converted network drawn by Graphviz (model -> draw), the
stage table and warnings of --report linked to the boxes (page), and a chart
drawn by matplotlib (chart). Graphviz and matplotlib are the optional extra
`report`; without them (or without Graphviz's `dot` program) `require` raises
a usage error saying what to install, before anything is written.
"""

from __future__ import annotations

import os
import shutil

from ...pipeline.conversion import Result

from ...pipeline.loading import Loaded
from ...core.errors import UsageError

EXTRA = "pip install 'caffe-atrous[report]'"


def require() -> None:
    """Fail with a one-line usage error unless Graphviz and matplotlib are usable."""
    for module in ("graphviz", "matplotlib"):
        try:
            __import__(module)
        except ImportError:
            raise UsageError(f"--report-html needs the Python package '{module}' "
                             f"(the optional extra 'report'): {EXTRA}") from None
    if shutil.which("dot") is None:
        raise UsageError("--report-html needs Graphviz's 'dot' program on the PATH: install "
                         "Graphviz (Debian/Ubuntu: apt-get install graphviz)")


def render(before: Loaded, result: Result, input_shape=None, text: str | None = None) -> str:
    """The page as text. `text` is the input file's text, for the tooltips."""
    require()
    from ..text import build
    from . import chart, draw, model, page
    report = build(before, result, input_shape)
    picture = model.build(before, result, input_shape, text)
    title = os.path.basename(before.path)
    return page.page(title, report, result.warnings, picture, draw.svg(picture),
                     chart.svg(before, result, report, input_shape))
