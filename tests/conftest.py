"""Shared test helpers: the zoo of published prototxt files, and a net factory."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from caffe_atrous.pipeline import invariants
from caffe_atrous.pipeline.conversion import convert_text
from caffe_atrous.pipeline.loading import load_text
from caffe_atrous.rewrite.plan import Options

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT.parent / "shared" / "zoo"
EXAMPLE = ROOT / "examples" / "seed_resnet.prototxt"


def in_ci() -> bool:
    """CI sets CI=true; CI=false, 0 or empty means a developer's machine."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def zoo_path(rel: str) -> Path:
    """A file of ../shared/zoo; the test is skipped where the zoo is absent."""
    if not ZOO.is_dir():
        if in_ci():                     # CI lays ../shared beside the clone: absent is a fault
            pytest.fail("../shared/zoo is missing in CI")
        pytest.skip("../shared/zoo is not here")
    path = ZOO / rel
    assert path.is_file(), f"{rel} is missing from the zoo"
    return path


def zoo_text(rel: str, **variables: str) -> str:
    """A zoo file's text with its ${TEMPLATE} variables substituted."""
    text = zoo_path(rel).read_text()
    return re.sub(r"\$\{(\w+)\}", lambda m: variables.get(m.group(1), "21"), text)


# -- what every conversion must keep ------------------------------------------
# The package checks every conversion when asked (pipeline/invariants.py); the
# tests ask for the whole run, so the command lines they start are checked too.
os.environ[invariants.ENV] = "1"


@pytest.fixture(autouse=True)
def _no_invariants_when_marked(request, monkeypatch):
    """A test opts out with @pytest.mark.no_invariants (fuzzing, speed)."""
    if request.node.get_closest_marker("no_invariants"):
        monkeypatch.delenv(invariants.ENV)


def pytest_configure(config):
    config.addinivalue_line("markers", "no_invariants: skip the invariant check of conversions")
    config.addinivalue_line("markers", "real_caffe: runs in a real Caffe, BVLC's or PSPNet's (make caffe; tests/caffe_env.py)")


def convert(text: str, **opts) -> "object":
    truncate = opts.pop("truncate_after", None)
    return convert_text(text, "test.prototxt", Options(**opts), truncate_after=truncate)


def windows(text: str) -> dict:
    """Layer name -> Window (None for windowless layers) of a network text."""
    return {s.name: s.window for s in load_text(text, "x").specs()}


def layers_by_name(text: str) -> dict:
    return {s.name: s for s in load_text(text, "x").specs()}


# -- a small factory of networks written as prototxt ---------------------------

def conv(name, bottom, k=3, s=1, p=None, d=None, n=8, group=None, extra=""):
    p = (k - 1) // 2 if p is None else p
    lines = [f"num_output: {n}", f"kernel_size: {k}"]
    if s != 1:
        lines.append(f"stride: {s}")
    if p:
        lines.append(f"pad: {p}")
    if d:
        lines.append(f"dilation: {d}")
    if group:
        lines.append(f"group: {group}")
    if extra:
        lines.append(extra)
    return (f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}" '
            f'convolution_param {{ {" ".join(lines)} }} }}\n')


def pool(name, bottom, k=2, s=2, p=0, method="MAX", extra=""):
    return (f'layer {{ name: "{name}" type: "Pooling" bottom: "{bottom}" top: "{name}" '
            f'pooling_param {{ pool: {method} kernel_size: {k} stride: {s} pad: {p} {extra} }} }}\n')


def layer(name, type_, bottoms, tops=None, body=""):
    bottoms = [bottoms] if isinstance(bottoms, str) else bottoms
    tops = [name] if tops is None else ([tops] if isinstance(tops, str) else tops)
    b = " ".join(f'bottom: "{x}"' for x in bottoms)
    t = " ".join(f'top: "{x}"' for x in tops)
    return f'layer {{ name: "{name}" type: "{type_}" {b} {t} {body} }}\n'


def net(*layers, size=65, channels=3):
    head = (f'name: "t"\nlayer {{ name: "data" type: "Input" top: "data" input_param {{ shape '
            f'{{ dim: 1 dim: {channels} dim: {size} dim: {size} }} }} }}\n')
    return head + "".join(layers)


# -- the real-Caffe tests (tests/test_real_caffe.py) say how many ran -----------

_REAL_CAFFE = {"ran": 0, "failed": 0, "skipped": 0, "why": ""}


def pytest_runtest_logreport(report):
    if "real_caffe" not in report.keywords:
        return
    if report.skipped:
        _REAL_CAFFE["skipped"] += 1
        _REAL_CAFFE["why"] = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
    elif report.when == "call":
        _REAL_CAFFE["ran"] += 1
        _REAL_CAFFE["failed"] += report.failed
    elif report.failed:                   # a failed set-up: in CI, the build is absent
        _REAL_CAFFE["failed"] += 1


def pytest_terminal_summary(terminalreporter):
    n = _REAL_CAFFE
    if not (n["ran"] or n["skipped"] or n["failed"]):
        return
    line = f"real-Caffe tests: {n['ran']} ran, {n['failed']} failed"
    if n["skipped"]:
        line += f", {n['skipped']} skipped: build absent ({n['why'].removeprefix('Skipped: ')})"
    terminalreporter.write_line(line, bold=True)
