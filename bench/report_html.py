"""How heavy is --report-html on a big network? ResNet-152 at output stride 8 (needs ../shared/zoo).

Prints the page's size, the time to write it, and the time headless Chromium
takes to load it and to paint it (a screenshot of the first screen, then of
the whole page at a quarter scale, which rasters all of it but keeps the PNG
small), each against the same steps on a one-line page in the same
browser: the baseline. Best of three.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from chromium import Browser  # noqa: E402

from caffe_atrous.cli import main  # noqa: E402

NET = ROOT.parent / "shared" / "zoo" / "resnet152-kaiming" / "ResNet-152-deploy.prototxt"


def load_and_paint(browser: Browser, page: Path) -> tuple[float, float, float]:
    """Best of three: load event; load + first screen painted; load + whole page painted."""
    best = [float("inf")] * 3
    for whole in (False, False, False, True, True, True):
        start = time.monotonic()
        load = browser.open(page)
        if whole:
            width, height = browser.evaluate("[document.documentElement.scrollWidth, "
                                             "document.documentElement.scrollHeight]")
            browser.screenshot({"x": 0, "y": 0, "width": width, "height": height}, 0.25)
        else:
            browser.screenshot()
        took = time.monotonic() - start
        best[0] = min(best[0], load)
        best[2 if whole else 1] = min(best[2 if whole else 1], took)
    return tuple(best)


def run() -> int:
    if not NET.is_file():
        print(f"bench: {NET} is missing (../shared/zoo)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        page, empty = Path(tmp) / "r152.html", Path(tmp) / "empty.html"
        empty.write_text("<!DOCTYPE html><title>baseline</title><p>baseline</p>\n")
        start = time.monotonic()
        if main([str(NET), "-o", str(Path(tmp) / "r152.prototxt"), "--output-stride", "8",
                  "--report-html", str(page), "-q"]):
            return 1
        written = time.monotonic() - start
        with Browser(width=1200, height=900) as browser:
            base = load_and_paint(browser, empty)
            ours = load_and_paint(browser, page)
        size = page.stat().st_size
    print(f"--report-html, ResNet-152 at output stride 8: {size / 2**20:.2f} MB, written in "
          f"{written:.2f} s")
    for what, a, b in zip(("load event", "load + first screen painted",
                           "load + whole page painted (1/4 scale)"), ours, base):
        print(f"  Chromium {what}: {a:.3f} s (one-line page {b:.3f} s, x{a / b:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(run())
