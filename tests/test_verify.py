"""Proof in a real engine (OpenCV's Caffe importer, installed by `make test`):
converted networks compute the original's output with the original weights."""

import os
import re

import numpy as np
import pytest

from caffe_atrous.cli import main
from caffe_atrous.pipeline.loading import load_text
from caffe_atrous.analysis.shapes import infer_shapes
from caffe_atrous.verification.compare import verify
from caffe_atrous.weights.init import random_weights

from conftest import ROOT, EXAMPLE, convert, in_ci, zoo_text

if in_ci():
    import cv2                           # installed by `make test`: missing in CI is a fault
else:
    cv2 = pytest.importorskip("cv2", reason="OpenCV is installed by `make test`")


def prepare(tmp_path, text, name, mode="exact", os_=8):
    """Write original, converted and random weights; return their paths."""
    orig = tmp_path / f"{name}.prototxt"
    orig.write_text(text)
    new = tmp_path / f"{name}_os{os_}.prototxt"
    new.write_text(convert(text, output_stride=os_, mode=mode).text)
    weights = tmp_path / f"{name}.caffemodel"
    random_weights(load_text(text, name), str(weights), seed=0)
    return str(orig), str(new), str(weights)


@pytest.mark.parametrize("path", ["resnet50-kaiming/ResNet-50-deploy.prototxt",
                                  "resnet101-kaiming/ResNet-101-deploy.prototxt",
                                  "mobilenet-v1-shicai/mobilenet_deploy.prototxt",
                                  "resnext50-32x4d-soeaver/deploy_resnext50-32x4d.prototxt"])
def test_exact_conversion_at_8_computes_the_original(tmp_path, path):
    orig, new, weights = prepare(tmp_path, zoo_text(path), "net")
    weights_before = open(weights, "rb").read()
    report = verify(orig, new, weights, engine="opencv", input_shape=(1, 3, 97, 97))
    assert report.ok and report.max_rel < 1e-4, report.lines()
    assert report.factor == (4, 4) and report.region[0] >= 3
    assert open(weights, "rb").read() == weights_before      # the ORIGINAL weights, unchanged


def test_one_dilation_off_fails_and_is_named(tmp_path):
    orig, new, weights = prepare(tmp_path, zoo_text("resnet50-kaiming/ResNet-50-deploy.prototxt"), "r50")
    text = open(new).read()
    block = text.index('name: "res5b_branch2b"')
    end = text.index("layer {", block)
    wrong = text[:block] + text[block:end].replace("dilation: 4", "dilation: 3").replace(
        "pad: 4", "pad: 3") + text[end:]
    assert wrong != text
    open(new, "w").write(wrong)
    report = verify(orig, new, weights, engine="opencv", input_shape=(1, 3, 97, 97))
    assert not report.ok and report.max_rel > 1e-2
    named = [f for f, upstream in report.inexact if f.layer == "res5b_branch2b"]
    assert named and "dilation 3, pad 3 where the exact rule gives dilation 4, pad 4" in named[0].message


def test_seed_convention_is_explained_not_hidden(tmp_path):
    orig, new, weights = prepare(tmp_path, EXAMPLE.read_text(), "seed", mode="seed")
    report = verify(orig, new, weights, engine="opencv")
    assert not report.ok
    layers = {f.layer for f, upstream in report.inexact if upstream}
    assert layers == {"conv4_1_3x3", "conv5_1_3x3"}
    assert any("(the seed convention)" in line for line in report.lines())


def test_se_resnet_cannot_be_exact_and_says_where(tmp_path):
    text = zoo_text("se-resnet50/SE-ResNet-50.prototxt")
    r = convert(text, output_stride=8, mode="exact")
    warned = {w.layer for w in r.warnings if "global" in w.message}
    orig, new, weights = prepare(tmp_path, text, "se")
    report = verify(orig, new, weights, engine="opencv", input_shape=(1, 3, 97, 97))
    upstream = {f.layer for f, up in report.inexact if up and "global" in f.message}
    assert len(upstream) == 9 and upstream <= warned
    assert all(re.match(r"conv[45]_\d+_global_pool", n) for n in upstream)


def test_verify_command_line(tmp_path, capsys):
    orig, new, weights = prepare(tmp_path, EXAMPLE.read_text(), "seed")
    assert main(["verify", orig, new, weights, "--engine", "opencv"]) == 0
    out = capsys.readouterr().out
    assert "compared blob 'conv5_1'" in out and "PASS" in out and "max relative error" in out
    assert main(["verify", orig, new, weights, "--blob", "fc10"]) == 2
    assert "no spatial layout" in capsys.readouterr().err


def test_unaligned_input_leaves_out_a_border_band(tmp_path):
    orig, new, weights = prepare(tmp_path, EXAMPLE.read_text(), "seed")
    report = verify(orig, new, weights, engine="opencv", input_shape=(1, 3, 160, 160))
    assert report.band > 0 and report.ok



def scaled_weights(tmp_path, weights, factor):
    """`weights` with both branches into the example's last sum (conv5_1 = increase +
    proj, each ending in a Scale) times `factor`: conv5_1, after its ReLU, is then
    exactly `factor` times the original, a relative error of factor - 1."""
    from caffe_atrous.formats import caffemodel
    out = tmp_path / f"scaled_{factor}.caffemodel"
    with caffemodel.Weights(weights) as w, caffemodel.Writer(str(out)) as o:
        for layer in w.layers:
            arrays = [b.array() for b in layer.blobs]
            if layer.name in ("conv5_1_1x1_increase_scale", "conv5_1_1x1_proj_scale"):
                arrays = [(a.astype("f8") * factor).astype("f4") for a in arrays]
            o.add(layer.name, layer.type, [caffemodel.encode_blob(a) for a in arrays])
    return str(out)


# A difference just below and just above the tolerance (1e-4 by default), and a few
# times it: only the first passes.
@pytest.mark.parametrize("error,passes", [(3e-5, True), (9e-5, True), (1.2e-4, False),
                                          (3e-4, False), (9e-4, False)])
def test_a_difference_near_the_tolerance(tmp_path, capsys, error, passes):
    orig, new, weights = prepare(tmp_path, EXAMPLE.read_text(), "seed")
    other = scaled_weights(tmp_path, weights, 1 + error)
    report = verify(orig, new, weights, engine="opencv", new_weights=other)
    assert report.blob == "conv5_1" and report.tolerance == 1e-4
    assert report.max_rel == pytest.approx(error, rel=0.02), report.lines()
    assert report.ok is passes
    capsys.readouterr()
    code = main(["verify", orig, new, weights, "--new-weights", other, "--engine", "opencv"])
    out = capsys.readouterr().out
    assert code == (0 if passes else 1) and ("verify: PASS" in out) is passes, out
    assert f"max relative error {report.max_rel:.3g} (tolerance 0.0001)" in out


def test_the_tolerance_option_moves_the_line(tmp_path, capsys):
    orig, new, weights = prepare(tmp_path, EXAMPLE.read_text(), "seed")
    other = scaled_weights(tmp_path, weights, 1 + 3e-4)
    for tolerance, code in (("5e-4", 0), ("2e-4", 1)):
        assert main(["verify", orig, new, weights, "--new-weights", other, "--engine", "opencv",
                     "--tolerance", tolerance, "-q"]) == code

CLASSIFIERS = ["resnet50-kaiming/ResNet-50-deploy.prototxt", "resnet101-kaiming/ResNet-101-deploy.prototxt",
               "resnet152-kaiming/ResNet-152-deploy.prototxt", "resnet50-soeaver/deploy_resnet50.prototxt",
               "resnext50-32x4d-soeaver/deploy_resnext50-32x4d.prototxt", "se-resnet50/SE-ResNet-50.prototxt",
               "mobilenet-v1-shicai/mobilenet_deploy.prototxt", "squeezenet-v1.1/deploy.prototxt",
               "inception-v3-soeaver/deploy_inception-v3.prototxt", "bvlc-googlenet/deploy.prototxt",
               "bvlc-alexnet/deploy.prototxt", "vgg16-ilsvrc-v2/VGG_ILSVRC_16_layers_deploy.prototxt",
               "vgg16-ilsvrc/VGG_ILSVRC_16_layers_deploy.prototxt"]


@pytest.mark.parametrize("path", CLASSIFIERS)
def test_shape_inference_agrees_with_the_engine(tmp_path, path):
    """Every layer's output shape, as OpenCV computes it, for the original network and
    its seed-convention conversion at 16."""
    text = zoo_text(path)
    head = "pool5" if "alexnet" in path or "vgg" in path else None
    converted = convert(text, output_stride=16, truncate_after=head)
    for label, body in (("orig", text), ("os16", converted.text)):
        loaded = load_text(body, label)
        (g,) = loaded.graphs()
        proto, weights = tmp_path / f"{label}.prototxt", tmp_path / f"{label}.caffemodel"
        proto.write_text(body)
        random_weights(loaded, str(weights))
        cvnet = cv2.dnn.readNetFromCaffe(str(proto), str(weights))
        cvnet.enableFusion(False)
        ours = infer_shapes(g)
        (image,) = [b for b in g.inputs if b.producer is None or b.producer.type == "Input"]
        ids, _, outs = cvnet.getLayersShapes([list(ours[image])])
        names = cvnet.getLayerNames()
        theirs = {names[i - 1]: tuple(np.ravel(o[0]).tolist()) for i, o in zip(ids, outs) if i > 0 and o}
        compared = 0
        for layer in g.layers:
            if layer.name in theirs and layer.tops:
                top = g.tops(layer)[0]
                assert tuple(ours[top]) == theirs[layer.name], (label, layer.name)
                compared += 1
        assert compared >= len(g.layers) - 2


def test_the_2x2_to_3x3_pooling_note_reaches_verify(tmp_path):
    """The seed convention's 3x3/1 pooling is named as inexact by verify (and by -v:
    see the golden case tiny_vgg_os4_verbose)."""
    text = (ROOT / "tests" / "golden" / "v1_tiny_vgg" / "input.prototxt").read_text()
    orig = tmp_path / "tiny.prototxt"
    orig.write_text(text)
    new = tmp_path / "tiny_os4.prototxt"
    new.write_text(convert(text, output_stride=4, truncate_after="pool3").text)
    weights = tmp_path / "tiny.caffemodel"
    random_weights(load_text(text, "tiny"), str(weights), seed=0)
    report = verify(str(orig), str(new), str(weights), engine="opencv")
    named = {f.layer: f.message for f, upstream in report.inexact}
    assert named == {"pool3": "pooling 2 became 3 (DeepLab/SSD convention; --exact gives it "
                              "stride 1 instead)"}
    assert any("inexact by construction (before the compared blob): layer 'pool3'" in line
               for line in report.lines())
def test_verify_quiet_and_verbose(tmp_path, capsys):
    weights, conv_out = tmp_path / "w.caffemodel", tmp_path / "os8.prototxt"
    assert main(["init-weights", str(EXAMPLE), "-o", str(weights), "-q"]) == 0
    assert main([str(EXAMPLE), "-o", str(conv_out), "--exact", "-q"]) == 0
    capsys.readouterr()
    assert main(["verify", str(EXAMPLE), str(conv_out), str(weights), "-q"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("verify: PASS"), lines
    assert main(["verify", str(EXAMPLE), str(conv_out), str(weights), "-v"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "input seed 0, tolerance 0.0001" in lines[0] and lines[-1].startswith("verify: PASS")


def test_weights_that_make_the_output_not_finite(tmp_path, capsys):
    """Found by fuzzing: NaN weights gave a misleading FAIL and a numpy warning."""
    from caffe_atrous.formats import caffemodel
    from caffe_atrous.weights.check import expected_params
    weights, new = tmp_path / "nan.caffemodel", tmp_path / "os8.prototxt"
    assert main([str(EXAMPLE), "-o", str(new), "--exact", "-q"]) == 0
    loaded = load_text(EXAMPLE.read_text(), str(EXAMPLE))
    with caffemodel.Writer(str(weights), "nan") as w:
        for name, shapes in expected_params(loaded).items():
            w.add(name, "", [caffemodel.encode_blob(np.full(s, np.nan, "f4")) for s in shapes])
    capsys.readouterr()
    assert main(["verify", str(EXAMPLE), str(new), str(weights)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert "nan.caffemodel: the original network's 'conv5_1' is not finite (NaN or inf)" in err
