"""YAML presets and --multi-grid."""

import re

import pytest

from caffe_atrous.cli import main
from caffe_atrous.pipeline.presets import load, presets
from caffe_atrous.core.errors import UsageError
from caffe_atrous.core.window import Window

from conftest import EXAMPLE, windows, zoo_path, zoo_text
from test_zoo import R101, compare

R50 = "resnet50-kaiming/ResNet-50-deploy.prototxt"


def run(capsys, tmp_path, *args):
    out = tmp_path / "out.prototxt"
    capsys.readouterr()
    code = main([str(a) for a in args] + ["-o", str(out)])
    err = capsys.readouterr().err
    return code, (out.read_text() if out.exists() else None), err


def test_every_bundled_preset_is_valid():
    names = sorted(presets())
    assert names == ["deeplab-v1-largefov", "deeplab-v2", "deeplab-v3", "exact-os16", "exact-os8",
                     "pspnet", "r-fcn"]
    for name in names:
        assert "description" in load(name)


def test_deeplab_v2_preset(capsys, tmp_path):
    code, out, _ = run(capsys, tmp_path, zoo_path(R101), "--config", "deeplab-v2")
    assert code == 0
    _, diff = compare(out, zoo_text("deeplabv2-resnet101/test.prototxt"))
    assert set(diff) == {"pool1"}


def test_r_fcn_preset(capsys, tmp_path):
    code, out, _ = run(capsys, tmp_path, zoo_path(R101), "--config", "r-fcn")
    assert code == 0 and compare(out, zoo_text("rfcn-resnet101-py/test_agnostic.prototxt"))[1] == {}


def test_pspnet_preset_uses_the_seed_convention(capsys, tmp_path):
    # ResNeXt-50 (soeaver) puts its stride on the grouped 3x3 convolution
    path = zoo_path("resnext50-32x4d-soeaver/deploy_resnext50-32x4d.prototxt")
    code, out, _ = run(capsys, tmp_path, path, "--config", "pspnet")
    w = windows(out)
    assert code == 0 and w["resx8_conv2"] == Window((3, 3), (1, 1), (2, 2), (2, 2))
    assert w["resx14_conv2"] == Window((3, 3), (1, 1), (4, 4), (4, 4))
    code, out, _ = run(capsys, tmp_path, path, "--config", "exact-os8")
    w = windows(out)
    assert w["resx8_conv2"] == Window((3, 3), (1, 1), (1, 1), (1, 1))
    assert w["resx14_conv2"] == Window((3, 3), (1, 1), (2, 2), (2, 2))


@pytest.mark.parametrize("preset,os_", [("exact-os16", 16), ("exact-os8", 8)])
def test_exact_presets(capsys, tmp_path, preset, os_):
    code, out, err = run(capsys, tmp_path, zoo_path(R50), "--config", preset)
    assert code == 0 and f"output stride 32 -> {os_}" in err
    assert windows(out)["res5a_branch2b"].dilation == ((2, 2) if os_ == 16 else (4, 4))


def test_deeplab_v3_preset_gives_rates_2_4_8(capsys, tmp_path):
    code, out, err = run(capsys, tmp_path, zoo_path(R101), "--config", "deeplab-v3", "-v")
    w = windows(out)
    assert code == 0 and "output stride 32 -> 16" in err
    assert [w[f"res5{u}_branch2b"].dilation for u in "abc"] == [(2, 2), (4, 4), (8, 8)]
    assert [w[f"res5{u}_branch2b"].pad for u in "abc"] == [(2, 2), (4, 4), (8, 8)]
    assert w["res4b22_branch2b"].dilation == (1, 1)
    assert "multi-grid: rate x4" in err


def test_command_line_overrides_the_preset(capsys, tmp_path):
    code, out, err = run(capsys, tmp_path, zoo_path(R50), "--config", "r-fcn", "--output-stride", "8")
    assert code == 0 and "output stride 32 -> 8" in err
    code, out, err = run(capsys, tmp_path, zoo_path(R50), "--config", "exact-os8",
                         "--from", "res5a_branch1")
    assert code == 0 and "output stride 32 -> 16" in err


def test_multi_grid_needs_residual_units(capsys, tmp_path):
    vgg = zoo_path("vgg16-ilsvrc-v2/VGG_ILSVRC_16_layers_deploy.prototxt")
    code, _, err = run(capsys, tmp_path, vgg, "--multi-grid", "1,2,4", "--truncate-after", "pool5")
    assert code == 1 and "no residual units" in err
    code, _, err = run(capsys, tmp_path, zoo_path(R50), "--output-stride", "16", "--multi-grid", "1,2")
    assert code == 1 and "gives 2 rates but the last dilated stage has 3 residual units" in err


@pytest.mark.parametrize("text,pattern", [
    ("output-stride: 8\nstrid: 2\n", r"cfg.yaml:2: unknown key 'strid'; allowed keys: description, "
                                      r"output-stride, from, exact"),
    ("exact: yes please\n", r"cfg.yaml:1: 'exact' must be true or false, not 'yes please'"),
    ("output-stride: 8\nmulti-grid: [1, two]\n", r"cfg.yaml:2: 'multi-grid' must be a list"),
    ("output-stride: [8\n", r"cfg.yaml:2:1: YAML syntax error"),
    ("- output-stride\n", r"cfg.yaml:1: a config is a mapping"),
])
def test_bad_config_is_one_line_with_file_and_line(capsys, tmp_path, text, pattern):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(text)
    code, out, err = run(capsys, tmp_path, EXAMPLE, "--config", cfg)
    lines = err.strip().splitlines()
    assert code == 2 and out is None and len(lines) == 1 and re.search(pattern, lines[0]), err


def test_unknown_preset_lists_the_presets(capsys, tmp_path):
    code, _, err = run(capsys, tmp_path, EXAMPLE, "--config", "deeplab-v9")
    assert code == 2 and "presets: deeplab-v1-largefov, deeplab-v2, deeplab-v3" in err


def test_config_can_hold_every_conversion_option():
    from caffe_atrous.cli import build_parser
    from caffe_atrous.pipeline.presets import KEYS
    dests = {a.dest for a in build_parser()._actions if a.dest not in ("help", "version")}
    assert dests - {d for d, _ in KEYS.values()} == {"input", "output", "config", "check"}


def test_a_prototxt_is_not_a_config():
    with pytest.raises(UsageError, match=r"seed_resnet.prototxt:\d+(:\d+)?: (YAML syntax error|a config)"):
        load(str(EXAMPLE))


@pytest.mark.parametrize("key, flag, bad, form", [
    ("input-shape", "--input-shape", "1,3,0,5", "N,C,H,W"),
    ("multi-grid", "--multi-grid", "1,two", "a list of rates"),
    ("decimate", "--decimate", "3", "S,C"),
    ("output-stride", "--output-stride", "0", "a whole number of at least 1"),
])
def test_the_command_line_and_a_preset_check_a_value_alike(tmp_path, capsys, key, flag, bad,
                                                           form):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"{key}: '{bad}'\n")
    assert main([str(EXAMPLE), "-o", str(tmp_path / "a"), "--config", str(cfg)]) == 2
    from_preset = capsys.readouterr().err
    assert main([str(EXAMPLE), "-o", str(tmp_path / "b"), flag, bad]) == 2
    from_cli = capsys.readouterr().err
    assert form in from_preset and form in from_cli, (from_preset, from_cli)
