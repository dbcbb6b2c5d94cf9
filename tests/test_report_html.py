"""--report-html: the page, opened in headless Chromium, and what it holds."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import sys

import pytest

from caffe_atrous.cli import main
from caffe_atrous.pipeline.conversion import convert_loaded
from caffe_atrous.pipeline.loading import load_text
from caffe_atrous.reports.html import model
from caffe_atrous.rewrite.plan import Options

from chromium import BINARY, Browser
from conftest import EXAMPLE, zoo_path

R101 = "resnet101-kaiming/ResNet-101-deploy.prototxt"
R152 = "resnet152-kaiming/ResNet-152-deploy.prototxt"
EXTRA = "pip install 'caffe-atrous[report]'"


def need(program: str) -> None:
    """The Debian packages come from scripts/report-deps.sh (run by `make test`)."""
    if shutil.which(program) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{program} is missing in CI: scripts/report-deps.sh installs it")
        pytest.skip(f"{program} is not installed (scripts/report-deps.sh installs it)")


def write_page(source, out, *args) -> str:
    need("dot")
    assert main([str(source), "-o", str(out.with_suffix(".prototxt")), "--report-html", str(out),
                 "-q", *args]) == 0
    return out.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def browser():
    need(BINARY)
    with Browser(width=1200, height=900) as b:
        yield b


def rect(browser, selector_js: str) -> dict:
    return json.loads(browser.evaluate(
        f"JSON.stringify(({selector_js}).getBoundingClientRect())"))


def red_pixels(png: bytes) -> int:
    """Pixels of the changed-box outline colour in a screenshot."""
    import numpy as np
    from PIL import Image
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return int(((rgb[..., 0] > 170) & (rgb[..., 1] < 90) & (rgb[..., 2] < 80)).sum())


def check_rendered(browser, page, html: str, changed: str) -> None:
    """The acceptance: SVG present and sized, `changed` a changed box, nothing requested."""
    browser.requests.clear()
    browser.open(page)
    assert browser.requests == [page.resolve().as_uri()]        # nothing left the page
    assert re.search(r'<meta http-equiv="Content-Security-Policy" content="default-src \'none\';',
                     html)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert "<script" not in html.lower() and "@import" not in html
    assert not re.search(r"url\(\s*['\"]?(?!#)", html)          # only url(#clip-path) inside
    assert browser.evaluate("document.querySelectorAll('.picture svg').length") == 1
    svg = rect(browser, "document.querySelector('.picture svg')")
    assert svg["width"] > 300 and svg["height"] > 1000
    chart = rect(browser, "document.querySelector('.chart svg')")
    assert chart["width"] > 500 and chart["height"] > 400
    box = f"document.getElementById('layer-{changed}')"
    assert "changed" in browser.evaluate(f"{box}.getAttribute('class')").split()
    where = rect(browser, box)
    assert where["width"] > 50 and where["height"] > 20
    shot = browser.screenshot({"x": where["x"] - 10, "y": where["y"] - 10,
                               "width": where["width"] + 20, "height": where["height"] + 20})
    assert shot.startswith(b"\x89PNG") and red_pixels(shot) > 100     # the red outline is drawn
    assert browser.screenshot().startswith(b"\x89PNG")


def test_seed_example_renders(tmp_path, browser):
    page = tmp_path / "seed.html"
    html = write_page(EXAMPLE, page)
    check_rendered(browser, page, html, "conv4_1_3x3")
    title = browser.evaluate("document.querySelector('#layer-conv4_1_3x3 > title').textContent")
    assert "changed: k3 s2 p1 d1 -> k3 s1 p2 d2" in title and "seed convention" in title
    assert "stride: 2" in title and "conv4_1_3x3_bn (BatchNorm)" in title   # the folded layers
    text = browser.evaluate("document.querySelector('#layer-conv4_1_3x3').textContent")
    assert "k3 s2 p1 d1 -> k3 s1 p2 d2" in text
    assert browser.evaluate("document.querySelector('a[href=\"#layer-pool5\"]').textContent") == \
        "pool5"                                                   # the warning's link
    unchanged = browser.evaluate("document.getElementById('layer-conv3_1_3x3').getAttribute('class')")
    assert unchanged == "node"


@pytest.mark.parametrize("net,changed", [(R101, "res4b22_branch2b"), (R152, "res5c_branch2b")])
def test_kaiming_resnets_at_output_stride_8_render(tmp_path, browser, net, changed):
    page = tmp_path / "resnet.html"
    html = write_page(zoo_path(net), page, "--output-stride", "8")
    assert len(html.encode()) < 3 * 2**20
    check_rendered(browser, page, html, changed)
    # every stage row links to a box in the picture
    links = browser.evaluate("[...document.querySelectorAll('table a')].map(a => a.hash)")
    assert links and all(browser.evaluate(f"!!document.getElementById('{h[1:]}')") for h in links)



def test_stage_table_and_chart_read_in_small_units(tmp_path):
    """The page's stage table has the text report's figures (each in its own unit, so the
    example's stages read 1.83M, 264KB, ... and not 0.00G), and the chart's MACs axis the
    unit of its largest bar."""
    import json
    from caffe_atrous.reports.text import format_cost
    page = tmp_path / "seed.html"
    html = write_page(EXAMPLE, page, "--report-json", str(tmp_path / "r.json"))
    report = json.loads((tmp_path / "r.json").read_text())
    table = html[html.index('<h2 id="stages">'):html.index('<h2 id="changes">')]
    rows = re.findall(r"<tr><td>(.*?)</td></tr>", table)
    cells = [row.split("</td><td>")[-2:] for row in rows]
    want = [[format_cost(s["macs"], "macs"), format_cost(s["activation_bytes"], "bytes")]
            for s in report["stages"]]
    assert cells == [[c.replace("->", "-&gt;") for c in pair] for pair in want]
    assert cells[2] == ["2.16M -&gt; 2.16M x1.00", "613KB -&gt; 613KB x1.00"]   # stride 4
    assert cells[-1] == ["1.28K -&gt; 1.28K x1.00", "592B -&gt; 592B x1.00"]    # the head
    assert "<th>7.49M -&gt; 16.0M x2.14</th>" in table and "0.00G" not in html
    assert "multiply-accumulates per stage (M)" in html

def test_picture_folds_in_place_layers():
    loaded = load_text(EXAMPLE.read_text(), str(EXAMPLE))
    result = convert_loaded(loaded, Options(output_stride=8))
    picture = model.build(loaded, result, text=EXAMPLE.read_text())
    boxes = {b.name: b for b in picture.boxes}
    assert boxes["conv1"].folded == ["BatchNorm", "Scale", "ReLU"]
    assert "conv1_relu" not in boxes and picture.anchor["conv1_relu"] == "layer-conv1"
    c = boxes["conv4_1_3x3"]
    assert c.changed and c.geometry == "k3 s2 p1 d1 -> k3 s1 p2 d2" and c.stride == 8
    assert boxes["conv3_1_3x3"].geometry == "k3 s2 p1 d1" and not boxes["conv3_1_3x3"].changed
    assert boxes["pool5"].geometry == "k5 s1 p0 d1 -> global" and boxes["fc10"].stride is None
    sizes = {(a.tail, a.head): a.size for a in picture.arrows}
    assert sizes[("layer-conv4_1_3x3", "layer-conv4_1_1x1_increase")] == "9x9 -> 17x17"
    assert sizes[("layer-conv1", "layer-pool1")] == "65x65"
    assert len(picture.boxes) == len(picture.anchor) - sum(len(b.folded) for b in picture.boxes)


def test_chart_series_per_layer():
    from caffe_atrous.reports.html.chart import series
    loaded = load_text(EXAMPLE.read_text(), str(EXAMPLE))
    data = series(loaded, convert_loaded(loaded, Options(output_stride=8)))
    assert "conv1_relu" not in data.names                 # in-place layers change nothing
    i = data.names.index("conv4_1_3x3")
    assert (data.stride[0][i], data.stride[1][i]) == (16, 8)
    assert data.field[1][i] > data.field[0][i]            # the seed convention widens it
    last = data.names.index("fc10")
    assert data.stride[0][last] is None and data.stride[1][last] is None


def test_layer_source_counts_braces_outside_strings():
    text = ('layer {\n  name: "a{"  # }\n  p { x: 1 }\n}\nlayer {\n  name: "b"\n}\n')
    assert model.layer_source(text, 1) == ['layer {', '  name: "a{"  # }', "  p { x: 1 }", "}"]
    assert model.layer_source(None, 1) == [] and model.layer_source(text, None) == []


def test_preset_key(tmp_path, capsys):
    need("dot")
    preset = tmp_path / "p.yaml"
    preset.write_text(f"output-stride: 16\nreport-html: {tmp_path / 'p.html'}\n")
    assert main([str(EXAMPLE), "-o", str(tmp_path / "o.prototxt"), "--config", str(preset),
                 "-q"]) == 0
    assert "output stride 32 -&gt; 16" in (tmp_path / "p.html").read_text()


@pytest.mark.parametrize("missing", ["graphviz", "matplotlib"])
def test_without_the_extra_one_line_error_and_no_file(tmp_path, capsys, monkeypatch, missing):
    monkeypatch.setitem(sys.modules, missing, None)           # `import missing` now fails
    out, page = tmp_path / "o.prototxt", tmp_path / "r.html"
    assert main([str(EXAMPLE), "-o", str(out), "--report-html", str(page)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("caffe_atrous: error: --report-html needs")
    assert EXTRA in err[0] and f"'{missing}'" in err[0]
    assert not page.exists() and not out.exists() and os.listdir(tmp_path) == []


def test_without_dot_one_line_error_and_no_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    page = tmp_path / "r.html"
    assert main([str(EXAMPLE), "-o", str(tmp_path / "o.prototxt"), "--report-html",
                 str(page)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "apt-get install graphviz" in err[0] and not page.exists()
