"""docs/report-html-seed.png: the README's picture of --report-html (`make docs-screenshot`).

Writes the HTML report of the bundled example at output stride 8, opens it in
headless Chromium and keeps the part of the drawing around stage 4, where the
seed document's conv4_1_3x3 changes.
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from chromium import Browser  # noqa: E402

from caffe_atrous.cli import main  # noqa: E402

OUT = ROOT / "docs" / "report-html-seed.png"
FIRST, LAST = "conv3_1", "conv4_2_3x3"       # the crop: from this box down to that one
PAD = 24


def box(browser: Browser, name: str) -> dict:
    return json.loads(browser.evaluate(
        f"JSON.stringify(document.getElementById('layer-{name}').getBoundingClientRect())"))


def main_() -> int:
    from PIL import Image
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "seed.html"
        code = main([str(ROOT / "examples" / "seed_resnet.prototxt"), "-o",
                     str(Path(tmp) / "seed_os8.prototxt"), "--report-html", str(page), "-q"])
        if code:
            return code
        with Browser(width=1000, height=800, scale=2) as browser:
            browser.open(page)
            picture = json.loads(browser.evaluate(
                "JSON.stringify(document.querySelector('.picture svg').getBoundingClientRect())"))
            top, bottom = box(browser, FIRST), box(browser, LAST)
            clip = {"x": picture["x"], "y": top["y"] - PAD, "width": picture["width"],
                    "height": bottom["y"] + bottom["height"] - top["y"] + 2 * PAD}
            png = browser.screenshot(clip)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    OUT.parent.mkdir(exist_ok=True)
    image.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(OUT, optimize=True)
    print(f"{OUT.relative_to(ROOT)}: {image.width}x{image.height}, {OUT.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main_())
