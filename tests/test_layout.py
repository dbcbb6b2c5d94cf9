"""Reviewable output: the only lines that differ are the fields that changed."""

import difflib
import re

import pytest

from caffe_atrous.cli import main

from conftest import EXAMPLE, convert, zoo_text

CHANGED_FIELD = re.compile(r"^\s*(pooling_param \{.*\}|(stride|stride_h|stride_w|pad|pad_h|pad_w|"
                           r"dilation|kernel_size|global_pooling|engine|spatial_scale|param_str|"
                           r"step|step_h|step_w)\s*:.*)$")

V2_NETWORKS = [
    ("resnet50-kaiming/ResNet-50-deploy.prototxt", 8), ("resnet101-kaiming/ResNet-101-deploy.prototxt", 8),
    ("resnet152-kaiming/ResNet-152-deploy.prototxt", 16), ("resnet50-soeaver/deploy_resnet50.prototxt", 8),
    ("resnext50-32x4d-soeaver/deploy_resnext50-32x4d.prototxt", 8), ("se-resnet50/SE-ResNet-50.prototxt", 8),
    ("mobilenet-v1-shicai/mobilenet_deploy.prototxt", 8), ("squeezenet-v1.1/deploy.prototxt", 8),
    ("inception-v3-soeaver/deploy_inception-v3.prototxt", 16), ("bvlc-googlenet/deploy.prototxt", 8),
    ("rfcn-resnet101-py/test_agnostic.prototxt", 8), ("rfcn-resnet101-py/train_agnostic.prototxt", 8),
    ("ssd300-vgg16/deploy.prototxt", 16),
]
TRUNCATED = [("bvlc-alexnet/deploy.prototxt", "pool5"), ("bvlc-alexnet/train_val.prototxt", "pool5"),
             ("vgg16-ilsvrc-v2/VGG_ILSVRC_16_layers_deploy.prototxt", "pool5")]
# V2 files that convert to nothing useful here (templates, pyramid pooling, FCN skips,
# auxiliary heads): at their own output stride the output must be their text, unchanged.
UNCHANGED = ["deeplabv2-resnet101/test.prototxt", "deeplabv2-vgg16-aspp-l/train.prototxt",
             "deeplabv2-vgg16-aspp-l/test.prototxt", "pspnet50-ade20k/pspnet50_ADE20K_473.prototxt",
             "pspnet101-voc2012/pspnet101_VOC2012_473.prototxt", "fcn8s-voc/deploy.prototxt",
             "fcn8s-voc/val.prototxt", "bvlc-googlenet/train_val.prototxt"]


def changed_lines(before: str, after: str):
    a, b = before.splitlines(), after.splitlines()
    m = difflib.SequenceMatcher(None, a, b, autojunk=False)
    removed, added = [], []
    for tag, i1, i2, j1, j2 in m.get_opcodes():
        if tag != "equal":
            removed += a[i1:i2]
            added += b[j1:j2]
    return removed, added


@pytest.mark.parametrize("path,os_", V2_NETWORKS)
def test_only_changed_fields_differ(path, os_):
    text = zoo_text(path)
    r = convert(text, output_stride=os_)
    removed, added = changed_lines(text, r.text)
    assert added, "the conversion changed nothing"
    for line in removed + added:
        assert CHANGED_FIELD.match(line), line
    # comments survive
    assert [l for l in text.splitlines() if l.strip().startswith("#")] == \
        [l for l in r.text.splitlines() if l.strip().startswith("#")]
    assert len(added) <= 4 * len(r.plan.changes)


@pytest.mark.parametrize("path,last", TRUNCATED)
def test_truncated_output_keeps_the_layout_of_what_is_kept(path, last):
    from caffe_atrous.formats.textpatch import parse_layout
    text = zoo_text(path)
    r = convert(text, output_stride=16, truncate_after=last)
    layers = parse_layout(text).named("layer")
    names = [l.name for l in r.net.layer]
    end = layers[len(names) - 1].end
    prefix = text[: text.index("\n", end) + 1]
    removed, added = changed_lines(prefix, r.text)
    assert (added or removed) and names[-1] == last
    for line in removed + added:
        assert CHANGED_FIELD.match(line), line


@pytest.mark.parametrize("path", UNCHANGED)
def test_networks_at_their_own_output_stride_come_back_unchanged(path):
    from caffe_atrous.analysis import strides as st
    from caffe_atrous.pipeline.loading import load_text
    text = zoo_text(path)
    own = max(st.network_output_stride(g) for g in load_text(text, path).graphs())
    r = convert(text, output_stride=int(own))
    assert not r.plan.changes and r.text == text


def test_rfcn_scales_and_feat_stride_are_edited_in_place():
    text = zoo_text("rfcn-resnet101-py/test_agnostic.prototxt")
    removed, added = changed_lines(text, convert(text, output_stride=8).text)
    assert "        spatial_scale: 0.125" in added and "    param_str: \"'feat_stride': 8\"" in added


def test_diff_prints_instead_of_writing(tmp_path, capsys):
    out = tmp_path / "o.prototxt"
    assert main([str(EXAMPLE), "-o", str(out), "--diff", "-q"]) == 0
    diff = capsys.readouterr().out
    assert not out.exists()
    assert diff.startswith(f"--- {EXAMPLE}\n+++ {out}\n@@ ")
    assert "-    stride: 2\n" in diff and "+    dilation: 2\n" in diff
    assert "+  pooling_param { pool: AVE global_pooling: true }\n" in diff


def test_v1_input_is_upgraded_whole(tmp_path, capsys):
    r = convert(zoo_text("vgg16-ilsvrc/VGG_ILSVRC_16_layers_deploy.prototxt"), output_stride=16,
                truncate_after="pool5")
    assert r.text.startswith('name: "VGG_ILSVRC_16_layers"\nlayer {\n  name: "input"')


def test_windows_line_endings_and_tabs_are_kept():
    text = EXAMPLE.read_text().replace("    ", "\t").replace("\n", "\r\n")
    r = convert(text, output_stride=8)
    assert "\r\n\tdilation: 2\r\n" in r.text and "\n" not in r.text.replace("\r\n", "")
    removed, added = changed_lines(text, r.text)
    assert all(CHANGED_FIELD.match(l.rstrip("\r")) for l in removed + added)
