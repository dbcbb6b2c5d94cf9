"""Golden cases: tests/golden/NAME/args (a command line, paths from the repository
root), expected.prototxt and expected.stderr. UPDATE_GOLDEN=1 rewrites them."""

import os
import shlex
from pathlib import Path

import pytest

from caffe_atrous.cli import main

from conftest import ROOT, in_ci

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "args").is_file())


@pytest.mark.parametrize("case", CASES)
def test_golden(case, tmp_path, capsys, monkeypatch):
    folder = GOLDEN / case
    monkeypatch.chdir(ROOT)
    out = tmp_path / "out.prototxt"
    code = main(shlex.split((folder / "args").read_text()) + ["-o", str(out)])
    stderr = capsys.readouterr().err.replace(str(out), "OUT")
    assert code == 0, stderr
    if os.environ.get("UPDATE_GOLDEN"):
        assert not in_ci(), "UPDATE_GOLDEN rewrites the expected files: never in CI"
        (folder / "expected.prototxt").write_text(out.read_text())
        (folder / "expected.stderr").write_text(stderr)
    assert out.read_text() == (folder / "expected.prototxt").read_text()
    assert stderr == (folder / "expected.stderr").read_text()


# Every layer a golden case changes, with its new window worked out by hand from
# atrous-rules.md (seed: d = d*m*r, p = p*m + (k-1)*d*m*(r-1)/2; exact: d*m, p*m).
SEED_OS8 = {"conv4_1_3x3": "k3 s1 p2 d2", "conv4_1_1x1_proj": "k1 s1 p0 d1",
            "conv4_2_3x3": "k3 s1 p2 d2", "conv5_1_3x3": "k3 s1 p4 d4",
            "conv5_1_1x1_proj": "k1 s1 p0 d1", "pool5": "global"}
SEED_OS16 = {"conv5_1_3x3": "k3 s1 p2 d2", "conv5_1_1x1_proj": "k1 s1 p0 d1", "pool5": "global"}
TINY_VGG = {"pool3": "k3 s1 p1 d1"}           # 2x2/2 -> 3x3/1 pad 1 (DeepLab/SSD)
VGG_OS8 = {"pool4": "k3 s1 p1 d1", "pool5": "k3 s1 p1 d1", "conv5_1": "k3 s1 p2 d2",
           "conv5_2": "k3 s1 p2 d2", "conv5_3": "k3 s1 p2 d2", "fc7": "k1 s1 p0 d1",
           "fc8": "k1 s1 p0 d1"}
BY_HAND = {
    "seed_os8": SEED_OS8, "seed_os8_canonical": SEED_OS8,
    "seed_os8_exact": {"conv4_1_3x3": "k3 s1 p1 d1", "conv4_1_1x1_proj": "k1 s1 p0 d1",
                       "conv4_2_3x3": "k3 s1 p2 d2", "conv5_1_3x3": "k3 s1 p2 d2",
                       "conv5_1_1x1_proj": "k1 s1 p0 d1", "pool5": "global"},
    "seed_os16": SEED_OS16, "seed_report": SEED_OS16,
    "seed_from_exact": {"conv5_1_3x3": "k3 s1 p1 d1", "conv5_1_1x1_proj": "k1 s1 p0 d1",
                        "pool5": "global"},
    "v1_tiny_vgg": TINY_VGG, "tiny_vgg_os4_verbose": TINY_VGG,
    # VGG16 at 8 with --fc-to-conv: DeepLab v1 (fc6 7x7 over pool5, dilation 4, pad 4*6/2);
    # decimated 3,4: DeepLab-LargeFOV (taps 0, 3, 6: 3x3, dilation 12, pad 12)
    "vgg16_fc_os8": VGG_OS8 | {"fc6": "k7 s1 p12 d4"},
    "vgg16_largefov": VGG_OS8 | {"fc6": "k3 s1 p12 d12"},
    # multi-grid 1,2,4 on the three units of the last stage (rate 2 there)
    "multigrid_os4": {"a_1": "k1 s1 p0 d1", "a_proj": "k1 s1 p0 d1", "a_2": "k3 s1 p2 d2",
                      "b_2": "k3 s1 p4 d4", "c_2": "k3 s1 p8 d8"},
}


def _geometry(text: str) -> dict:
    from caffe_atrous.pipeline.loading import load_text
    return {s.name: "global" if s.is_global_pool else (s.window and s.window.describe())
            for s in load_text(text, "x").specs()}


@pytest.mark.parametrize("case", CASES)
def test_golden_windows_match_the_hand_computed_values(case):
    folder = GOLDEN / case
    source = ROOT / shlex.split((folder / "args").read_text())[0]
    before = _geometry(source.read_text())
    after = _geometry((folder / "expected.prototxt").read_text())
    changed = {name: g for name, g in after.items() if before[name] != g}
    assert changed == BY_HAND[case]
