"""Whole classifiers at any output stride: --fc-to-conv (heads as dilated
convolutions, with their weights), --decimate (DeepLab-LargeFOV), and the
re-padding of Inception-style reductions whose branches no longer meet."""

import re

import numpy as np
import pytest

from caffe_atrous.cli import main
from caffe_atrous.pipeline.loading import load_text
from caffe_atrous.core.errors import AtrousError
from caffe_atrous.formats import caffemodel
from caffe_atrous.core.window import Window

from conftest import ROOT, conv, convert, in_ci, layer, layers_by_name, net, pool, windows, zoo_text

VGG_TEXT = (ROOT / "tests" / "golden" / "vgg16_fc_os8" / "input.prototxt").read_text()
VGG_V1 = "vgg16-ilsvrc/VGG_ILSVRC_16_layers_deploy.prototxt"
VGG_V2 = "vgg16-ilsvrc-v2/VGG_ILSVRC_16_layers_deploy.prototxt"
INCEPTION = "inception-v3-soeaver/deploy_inception-v3.prototxt"


def cli(capsys, *args):
    capsys.readouterr()
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


# -- geometry --------------------------------------------------------------------

@pytest.mark.parametrize("path", [VGG_V1, VGG_V2])
def test_vgg16_at_8_is_deeplab_v1(path):
    w = windows(convert(zoo_text(path), output_stride=8, fc_to_conv=True).text)
    assert w["fc6"] == Window(kernel=(7, 7), pad=(12, 12), dilation=(4, 4))
    assert w["fc7"] == w["fc8"] == Window(kernel=(1, 1))


@pytest.mark.parametrize("path", [VGG_V1, VGG_V2])
def test_vgg16_at_8_decimated_is_deeplab_largefov(path):
    r = convert(zoo_text(path), output_stride=8, fc_to_conv=True, decimate=(3, 4))
    ours, theirs = layers_by_name(r.text), layers_by_name(zoo_text("deeplabv1-largefov/test.prototxt"))
    for name in ("fc6", "fc7"):
        assert ours[name].type == theirs[name].type == "Convolution"
        assert ours[name].conv.window == theirs[name].conv.window
        assert ours[name].conv.num_output == theirs[name].conv.num_output == 1024
    assert ours["fc6"].conv.window == Window(kernel=(3, 3), pad=(12, 12), dilation=(12, 12))
    assert ours["fc8"].conv.num_output == 1000           # the classes stay; its inputs are decimated
    assert {w.layer for w in r.plan.inexact} >= {"fc6"}


def test_exact_heads_are_fcns_net_surgery():
    r = convert(VGG_TEXT, output_stride=32, mode="exact", fc_to_conv=True)
    w = windows(r.text)
    assert w["fc6"] == Window(kernel=(7, 7)) and w["fc7"] == Window(kernel=(1, 1))
    assert not r.plan.inexact and not r.warnings
    types = {l.name: l.type for l in r.net.layer}
    assert [types[n] for n in ("fc6", "relu6", "fc7", "fc8", "prob")] == \
        ["Convolution", "ReLU", "Convolution", "Convolution", "Softmax"]
    heads = r.plan.heads()
    assert list(heads) == ["fc6", "fc7", "fc8"]
    assert heads["fc6"].stored_shapes() == [(4096, 25088), (4096,)]


def test_exact_heads_at_16_dilate_without_pad():
    r = convert(VGG_TEXT, output_stride=16, mode="exact", fc_to_conv=True)
    assert windows(r.text)["fc6"] == Window(kernel=(7, 7), dilation=(2, 2))
    assert "fc6" not in {w.layer for w in r.plan.inexact}


def test_undilated_heads_are_fcn_surgery_in_both_conventions():
    """At the network's own stride nothing is dilated: fc6 7x7 pad 0, as FCN."""
    for mode in ("seed", "exact"):
        r = convert(VGG_TEXT, output_stride=32, mode=mode, fc_to_conv=True)
        assert windows(r.text)["fc6"] == Window(kernel=(7, 7))


def test_same_pad_of_an_even_kernel():
    """AlexNet's fc6 covers 6x6; with an even dilation its span has a centre, with an
    odd one it has none and the pad is rounded down (named)."""
    r = convert(zoo_text("bvlc-alexnet/deploy.prototxt"), output_stride=16, fc_to_conv=True)
    assert windows(r.text)["fc6"] == Window((6, 6), pad=(5, 5), dilation=(2, 2))
    assert not any("no centre" in w.message for w in r.warnings)
    from caffe_atrous.rewrite.heads import _same_pad
    pad, notes = _same_pad(Window((6, 6), dilation=(3, 1)))
    assert pad == (7, 2) and len(notes) == 2 and "no centre" in notes[0]


def test_head_keeps_name_outputs_bias_and_fillers():
    text = net(conv("c", "data", s=2), pool("p", "c"),
               layer("fc", "InnerProduct", "p", body="inner_product_param { num_output: 5 "
                     "bias_term: false weight_filler { type: 'xavier' } }"), size=33)
    r = convert(text, output_stride=2, fc_to_conv=True)
    fc = r.net.layer[-1]
    assert (fc.name, fc.type, fc.HasField("inner_product_param")) == ("fc", "Convolution", False)
    p = fc.convolution_param
    assert (p.num_output, p.bias_term, p.weight_filler.type) == (5, False, "xavier")
    assert list(p.kernel_size) == [9] and list(p.dilation) == [2] and list(p.pad) == [8]


def test_googlenet_train_val_auxiliary_heads_convert():
    r = convert(zoo_text("bvlc-googlenet/train_val.prototxt"), output_stride=8, fc_to_conv=True)
    heads = r.plan.heads()
    assert set(heads) == {"loss1/fc", "loss1/classifier", "loss2/fc", "loss2/classifier"}
    assert heads["loss1/fc"].kernel0 == (4, 4) and heads["loss1/classifier"].window.kernel == (1, 1)
    # the main classifier follows a global pooling: it stays an InnerProduct
    assert layers_by_name(r.text)["loss3/classifier"].type == "InnerProduct"
    losses = {w.layer for w in r.warnings if "labels must be a map" in w.message}
    assert {"loss1/loss", "loss2/loss"} <= losses


# -- errors and notes ------------------------------------------------------------

def test_nothing_to_convert_is_a_note(tmp_path, capsys):
    code, err = cli(capsys, ROOT / "examples" / "seed_resnet.prototxt", "-o", tmp_path / "o",
                    "--fc-to-conv")
    assert code == 0
    assert "caffe_atrous: note: --fc-to-conv: no InnerProduct here reads a spatial map" in err


@pytest.mark.parametrize("decimate,pattern", [
    ("4,4", r"layer 'fc6': --decimate 4,4: kernel 7 cannot keep 1 tap in 4"),
    ("3,3", r"layer 'fc6': --decimate 3,3: num_output 4096 does not divide by 3"),
])
def test_decimation_that_does_not_divide(tmp_path, capsys, decimate, pattern):
    src = ROOT / "tests" / "golden" / "vgg16_fc_os8" / "input.prototxt"
    out = tmp_path / "o"
    code, err = cli(capsys, src, "-o", out, "--fc-to-conv", "--decimate", decimate)
    assert code == 1 and re.search(pattern, err) and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_decimate_needs_fc_to_conv(tmp_path, capsys):
    code, err = cli(capsys, ROOT / "examples" / "seed_resnet.prototxt", "-o", tmp_path / "o",
                    "--decimate", "3,4")
    assert code == 2 and "add --fc-to-conv" in err


def _ip_net(body):
    return net(conv("c", "data", s=2, n=4), layer("fc", "InnerProduct", "c",
                                                  body=f"inner_product_param {{ {body} }}"), size=9)


def test_transposed_head_without_weights_is_refused():
    with pytest.raises(AtrousError, match=r"layer 'fc': transpose: true: .*--weights-out"):
        convert(_ip_net("num_output: 3 transpose: true"), output_stride=1, fc_to_conv=True)


def test_axis_other_than_1_is_refused():
    with pytest.raises(AtrousError, match=r"layer 'fc': inner_product_param.axis is 2: only"):
        convert(_ip_net("num_output: 3 axis: 2"), output_stride=1, fc_to_conv=True)


# -- weights ---------------------------------------------------------------------

def _convert_weights(tmp_path, capsys, text, *flags):
    src, w, out, wout = (tmp_path / n for n in ("a.prototxt", "a.caffemodel", "b.prototxt",
                                                "b.caffemodel"))
    src.write_text(text)
    assert main(["init-weights", str(src), "-o", str(w)]) == 0
    code, err = cli(capsys, src, "-o", out, "--weights", w, "--weights-out", wout, *flags)
    assert code == 0, err
    return w, wout, err


def test_weights_follow_a_decimated_head(tmp_path, capsys):
    text = net(conv("c", "data", s=2, n=4), conv("c2", "c", s=2, n=4),
               layer("fc6", "InnerProduct", "c2", body="inner_product_param { num_output: 8 }"),
               layer("relu", "ReLU", "fc6", "fc6"),
               layer("fc7", "InnerProduct", "fc6", body="inner_product_param { num_output: 6 }"),
               layer("fc8", "InnerProduct", "fc7", body="inner_product_param { num_output: 3 }"),
               size=17)
    w, wout, err = _convert_weights(tmp_path, capsys, text, "--output-stride", "2",
                                    "--fc-to-conv", "--decimate", "2,2")
    assert "weights: 5 layers match" in err
    with caffemodel.Weights(str(w)) as a, caffemodel.Weights(str(wout)) as b:
        old = {l.name: [x.array() for x in l.blobs] for l in a.layers}
        new = {l.name: [x.array() for x in l.blobs] for l in b.layers}
        assert [(l.name, l.type) for l in b.layers] == [
            ("data", "Input"), ("c", "Convolution"), ("c2", "Convolution"),
            ("fc6", "Convolution"), ("relu", "ReLU"), ("fc7", "Convolution"),
            ("fc8", "Convolution")]
    assert np.array_equal(new["c"][0], old["c"][0])
    fc6 = old["fc6"][0].reshape(8, 4, 5, 5)                       # a 5x5 map of 4 channels
    assert np.array_equal(new["fc6"][0], fc6[::2, :, ::2, ::2])   # 3x3 taps, 4 of 8 outputs
    assert np.array_equal(new["fc6"][1], old["fc6"][1][::2])
    assert np.array_equal(new["fc7"][0], old["fc7"][0].reshape(6, 8, 1, 1)[::2, ::2])
    assert np.array_equal(new["fc8"][0], old["fc8"][0].reshape(3, 6, 1, 1)[:, ::2])
    assert np.array_equal(new["fc8"][1], old["fc8"][1])


def test_weights_of_a_head_are_the_same_bytes(tmp_path, capsys):
    w, wout, _ = _convert_weights(tmp_path, capsys, _ip_net("num_output: 3"),
                                  "--output-stride", "1", "--fc-to-conv", "--exact")
    with caffemodel.Weights(str(w)) as a, caffemodel.Weights(str(wout)) as b:
        old, new = a.by_name()["fc"].blobs, b.by_name()["fc"].blobs
        assert (old[0].shape, new[0].shape) == ((3, 100), (3, 4, 5, 5))
        assert bytes(old[0].raw) == bytes(new[0].raw) and bytes(old[1].raw) == bytes(new[1].raw)


def test_weights_of_a_transposed_head_are_transposed(tmp_path, capsys):
    w, wout, _ = _convert_weights(tmp_path, capsys, _ip_net("num_output: 3 transpose: true"),
                                  "--output-stride", "1", "--fc-to-conv", "--exact")
    with caffemodel.Weights(str(w)) as a, caffemodel.Weights(str(wout)) as b:
        old, new = a.by_name()["fc"].blobs[0].array(), b.by_name()["fc"].blobs[0].array()
    assert old.shape == (100, 3) and np.array_equal(new, old.T.reshape(3, 4, 5, 5))


def test_weights_check_expects_the_stored_classifier(tmp_path, capsys):
    """The caffemodel of another head size is refused by shape, naming the layer."""
    src, w = tmp_path / "a.prototxt", tmp_path / "a.caffemodel"
    src.write_text(_ip_net("num_output: 3"))
    assert main(["init-weights", str(src), "-o", str(w)]) == 0
    other = tmp_path / "b.prototxt"
    other.write_text(_ip_net("num_output: 3").replace("dim: 9", "dim: 11"))
    code, err = cli(capsys, other, "-o", tmp_path / "o", "--fc-to-conv", "--weights", w,
                    "--output-stride", "1")
    assert code == 1 and "layer 'fc': blob shape 3x100 stored, 3x144 expected" in err


# -- in an engine ----------------------------------------------------------------

def _opencv():
    if in_ci():
        import cv2                       # installed by `make test`: missing in CI is a fault
        return cv2
    return pytest.importorskip("cv2", reason="OpenCV is installed by `make test`")


# Every deploy file of the zoo's classifiers, at small inputs where the head allows (Kaiming's
# pool5 is a fixed 7x7: 224). The train_val files read LMDB data; SE-ResNet's Axpy layer is
# not one OpenCV has.
RESNETS = [(f"resnet{n}-kaiming/ResNet-{n}-deploy.prototxt", "1,3,224,224") for n in (50, 101, 152)] \
    + [("resnet50-soeaver/deploy_resnet50.prototxt", "1,3,97,97"),
       ("resnext50-32x4d-soeaver/deploy_resnext50-32x4d.prototxt", "1,3,97,97")]
SWEEP = [(VGG_V1, "1,3,64,64", (16, 8)), (VGG_V2, "1,3,64,64", (16, 8)),
         ("bvlc-alexnet/deploy.prototxt", "1,3,99,99", (16, 8)),
         ("bvlc-googlenet/deploy.prototxt", "1,3,224,224", (16, 8)), (INCEPTION, None, (16, 8)),
         ("mobilenet-v1-shicai/mobilenet_deploy.prototxt", "1,3,97,97", (16, 8)),
         ("squeezenet-v1.1/deploy.prototxt", "1,3,67,67", (16, 8))] + \
    [(path, shape, (16, 8)) for path, shape in RESNETS]


@pytest.mark.parametrize("path,shape,strides", SWEEP)
def test_converted_classifier_runs_in_opencv_with_its_converted_weights(tmp_path, capsys, path,
                                                                       shape, strides):
    from caffe_atrous.verification.runners import OpenCVRunner
    _opencv()
    src, w = tmp_path / "a.prototxt", tmp_path / "a.caffemodel"
    src.write_text(zoo_text(path))
    extra = ["--input-shape", shape] if shape else []
    assert main(["init-weights", str(src), "-o", str(w)] + extra) == 0
    for os_ in strides:
        out, wout = tmp_path / f"os{os_}.prototxt", tmp_path / f"os{os_}.caffemodel"
        code, err = cli(capsys, src, "-o", out, "--output-stride", os_, "--fc-to-conv",
                        "--weights", w, "--weights-out", wout, *extra)
        assert code == 0, err
        g = load_text(out.read_text(), "out").graph()
        image, last = g.inputs[0], g.layers[-1]
        size = tuple(int(x) for x in shape.split(",")) if shape else image.shape
        x = np.random.default_rng(0).standard_normal(size).astype("f4")
        y = OpenCVRunner().run(str(out), str(wout), {image.name: x}, {last.tops[0]: last.name})
        y = y[last.tops[0]]
        assert y.shape[:2] == (1, 1000) and np.isfinite(y).all()


def test_vgg16_fcn_surgery_computes_the_classifier(tmp_path, capsys):
    """FCN's net surgery (--exact at the network's own stride): fc8 at 1x1 equals fc8."""
    from caffe_atrous.verification.compare import verify
    _opencv()
    w, wout, err = _convert_weights(tmp_path, capsys, VGG_TEXT, "--fc-to-conv", "--exact",
                                    "--output-stride", "32")
    capsys.readouterr()
    code = main([str(a) for a in ("verify", tmp_path / "a.prototxt", tmp_path / "b.prototxt", w,
                                  "--new-weights", wout, "--engine", "opencv", "--input-shape",
                                  "1,3,224,224", "--blob", "fc8")])
    out = capsys.readouterr().out
    assert code == 0 and "verify: PASS" in out and "tolerance 0.0001" in out
    assert "compared blob 'fc8': original 1x1000x1x1, converted 1x1000x1x1 sampled every 1; " \
        "region 1x1" in out


def test_a_dense_head_is_compared_at_its_first_position(tmp_path, capsys):
    """At output stride 2 (exact) the head's output is a map; position 0 is the classifier."""
    from caffe_atrous.verification.compare import verify
    _opencv()
    text = net(conv("c", "data", s=2, n=4), layer("r", "ReLU", "c", "c"),
               conv("c2", "c", s=2, n=4),
               layer("fc6", "InnerProduct", "c2", body="inner_product_param { num_output: 8 }"),
               layer("relu", "ReLU", "fc6", "fc6"),
               layer("fc7", "InnerProduct", "fc6", body="inner_product_param { num_output: 3 }"),
               size=17)
    w, wout, _ = _convert_weights(tmp_path, capsys, text, "--fc-to-conv", "--exact",
                                  "--output-stride", "2")
    report = verify(str(tmp_path / "a.prototxt"), str(tmp_path / "b.prototxt"), str(w),
                    engine="opencv", input_shape=(1, 3, 17, 17), new_weights=str(wout))
    assert report.blob == "fc7" and report.factor == (2, 2)
    assert (report.orig_shape, report.new_shape) == ((1, 3, 1, 1), (1, 3, 1, 1))
    assert report.ok, report.lines()



# A head over a map that is not square: 17x25 gives 5x7 before fc6, so a kernel read as
# (kw, kh) instead of (kh, kw) has the wrong shape and its values in the wrong order.
NON_SQUARE = net(conv("c", "data", s=2, n=4), layer("r", "ReLU", "c", "c"),
                 conv("c2", "c", s=2, n=4),
                 layer("fc6", "InnerProduct", "c2", body="inner_product_param { num_output: 8 }"),
                 layer("relu", "ReLU", "fc6", "fc6"),
                 layer("fc7", "InnerProduct", "fc6", body="inner_product_param { num_output: 3 }"),
                 size=17).replace("dim: 17 dim: 17", "dim: 17 dim: 25")


@pytest.mark.parametrize("decimate,taps", [(None, 1), ("2,1", 2)])
def test_weights_of_a_head_over_a_non_square_map(tmp_path, capsys, decimate, taps):
    """fc6's (8, 4*5*7) weight is the (8, 4, 5, 7) kernel: height 5, width 7, same order."""
    flags = ["--decimate", decimate] if decimate else []
    w, wout, err = _convert_weights(tmp_path, capsys, NON_SQUARE, "--fc-to-conv", "--exact",
                                    "--output-stride", "2", *flags)
    assert "weights: 4 layers match" in err
    kernel = ((5 - 1) // taps + 1, (7 - 1) // taps + 1)
    assert windows((tmp_path / "b.prototxt").read_text())["fc6"] == \
        Window(kernel=kernel, dilation=(2 * taps, 2 * taps))
    with caffemodel.Weights(str(w)) as a, caffemodel.Weights(str(wout)) as b:
        old = {l.name: [x.array() for x in l.blobs] for l in a.layers}
        new = {l.name: [x.array() for x in l.blobs] for l in b.layers}
        shapes = {l.name: [x.shape for x in l.blobs] for l in b.layers if l.blobs}
    assert old["fc6"][0].shape == (8, 4 * 5 * 7)
    assert shapes["fc6"] == [(8, 4) + kernel, (8,)] and shapes["fc7"] == [(3, 8, 1, 1), (3,)]
    assert np.array_equal(new["fc6"][0], old["fc6"][0].reshape(8, 4, 5, 7)[:, :, ::taps, ::taps])
    assert np.array_equal(new["fc6"][1], old["fc6"][1])
    assert np.array_equal(new["fc7"][0], old["fc7"][0].reshape(3, 8, 1, 1))



def test_a_written_caffemodel_that_does_not_fit_is_an_internal_error(tmp_path, capsys,
                                                                   monkeypatch):
    """Every caffemodel --weights-out writes is checked against the converted network
    before it takes its name: fc6 reshaped width first (8x4x7x5 for a 5x7 kernel) is
    named as a bug, and the file already there stays as it was."""
    from caffe_atrous.weights import converted
    right = converted.head_blobs

    def swapped(weights, heads):
        out = right(weights, heads)
        out["fc6"][0] = out["fc6"][0].reshape(8, 4, 7, 5)
        return out
    monkeypatch.setattr(converted, "head_blobs", swapped)
    src, w, wout = tmp_path / "a.prototxt", tmp_path / "a.caffemodel", tmp_path / "b.caffemodel"
    src.write_text(NON_SQUARE)
    assert main(["init-weights", str(src), "-o", str(w)]) == 0
    wout.write_bytes(b"before")
    code, err = cli(capsys, src, "-o", tmp_path / "b.prototxt", "--fc-to-conv", "--exact",
                    "--output-stride", "2", "--weights", w, "--weights-out", wout)
    assert code == 1 and err.count("\n") == 1, err
    assert f"error: {wout}: layer 'fc6': internal check failed: the caffemodel written does " \
        "not fit the converted network (blob shape 8x4x7x5 stored, 8x4x5x7 expected); please " \
        "report this" in err
    assert wout.read_bytes() == b"before"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.caffemodel", "a.prototxt",
                                                          "b.caffemodel"]

def test_a_head_over_a_non_square_map_computes_the_classifier(tmp_path, capsys):
    """In OpenCV: the converted network with its converted weights gives the original's
    output; with fc6's kernel read width first (right shape, wrong order) it does not."""
    from caffe_atrous.formats.weights_out import write_converted
    from caffe_atrous.verification.compare import verify
    _opencv()
    w, wout, _ = _convert_weights(tmp_path, capsys, NON_SQUARE, "--fc-to-conv", "--exact",
                                  "--output-stride", "2")
    orig, new = str(tmp_path / "a.prototxt"), str(tmp_path / "b.prototxt")
    report = verify(orig, new, str(w), engine="opencv", new_weights=str(wout))
    assert report.input_shape == (1, 3, 17, 25) and report.blob == "fc7", report.lines()
    assert report.ok and report.max_rel < 1e-5, report.lines()
    swapped = tmp_path / "swapped.caffemodel"
    with caffemodel.Weights(str(w)) as stored:
        fc6 = [b.array() for b in stored.by_name()["fc6"].blobs]
        kernel = fc6[0].reshape(8, 4, 7, 5).transpose(0, 1, 3, 2)     # (8, 4, 5, 7), misread
        replace = {"fc6": [kernel, fc6[1]],
                   "fc7": [stored.by_name()["fc7"].blobs[0].array().reshape(3, 8, 1, 1),
                           stored.by_name()["fc7"].blobs[1].array()]}
        write_converted(load_text((tmp_path / "b.prototxt").read_text(), "b").net, stored,
                        str(swapped), replace=replace)
    report = verify(orig, new, str(w), engine="opencv", new_weights=str(swapped))
    assert not report.ok and report.max_rel > 1e-2, report.lines()

# -- reductions whose branches no longer meet ------------------------------------

def _reduction(name, bottom, n=8):
    """BN-Inception's reduction: a padded stride-2 convolution beside a 3x3/2 pooling."""
    return (conv(f"{name}_1x1", bottom, k=1, n=n) + conv(f"{name}_3x3", f"{name}_1x1", s=2, n=n)
            + pool(f"{name}_pool", bottom, k=3, s=2)
            + layer(f"{name}_concat", "Concat", [f"{name}_3x3", f"{name}_pool"]))


def _block(name, bottom, n=8):
    return (conv(f"{name}_1x1", bottom, k=1, n=n) + conv(f"{name}_3x3", bottom, n=n)
            + pool(f"{name}_pool", bottom, k=3, s=1, p=1, method="AVE")
            + layer(f"{name}_concat", "Concat", [f"{name}_1x1", f"{name}_3x3", f"{name}_pool"]))


BN_INCEPTION = net(conv("conv1", "data", k=7, s=2), pool("pool1", "conv1", k=3, s=2),
                   conv("conv2", "pool1"), pool("pool2", "conv2", k=3, s=2),
                   _block("i3a", "pool2"), _reduction("i3c", "i3a_concat"),
                   _block("i4a", "i3c_concat"), _reduction("i4e", "i4a_concat"),
                   _block("i5a", "i4e_concat"), size=224)


@pytest.mark.parametrize("os_,repadded", [
    (16, {"i4e_concat": ["i4e_pool"]}),
    (8, {"i3c_concat": ["i3c_pool"], "i4e_concat": ["i4e_pool"]}),
])
def test_bn_inception_reductions_are_re_padded(os_, repadded):
    r = convert(BN_INCEPTION, output_stride=os_)
    assert r.plan.stride_after == os_
    found = {w.layer: re.findall(r"'(\w+)'", w.message.split(":")[1].split("re-padded")[0])
             for w in r.warnings if "re-padded to 'same'" in w.message}
    assert found == repadded
    w = windows(r.text)
    for pools in repadded.values():
        assert w[pools[0]] == Window(kernel=(3, 3), pad=(1, 1))
    inexact = {x.layer: x.message for x in r.plan.inexact}
    assert all("re-padded" in inexact[p[0]] for p in repadded.values())


def test_exact_still_refuses_reductions_that_no_longer_meet():
    with pytest.raises(AtrousError, match=r"layer 'i4e_concat': its inputs do not agree outside "
                                          r"axis 1: 1x8x14x14, 1x48x12x12$"):
        convert(BN_INCEPTION, output_stride=16, mode="exact", truncate_after="i4e_concat")


def test_inception_v3_at_8_names_its_re_padded_reduction():
    r = convert(zoo_text(INCEPTION), output_stride=8)
    found = [w for w in r.warnings if "re-padded" in w.message]
    assert [w.layer for w in found] == ["reduction_b_concat"]
    assert "'reduction_b_3x3', 'reduction_b_3x3_2' and 'reduction_b_pool' re-padded to 'same'" \
        in found[0].message
    w = windows(r.text)
    # as soeaver's Inception-v4 PSPNet: stride 1, dilation 4, pad 4; the pooling 3x3/1 pad 1
    assert w["reduction_b_3x3"] == w["reduction_b_3x3_2"] == Window((3, 3), pad=(4, 4),
                                                                    dilation=(4, 4))
    assert w["reduction_b_pool"] == Window((3, 3), pad=(1, 1))
    inexact = {x.layer for x in r.plan.inexact}
    assert {"reduction_b_3x3", "reduction_b_3x3_2", "reduction_b_pool"} <= inexact


# -- the user's layout -------------------------------------------------------------

def test_head_is_patched_into_the_users_layout():
    text = "# my net\n" + _ip_net("num_output: 3").replace('layer { name: "fc"',
                                                          '# the classifier\nlayer { name: "fc"')
    out = convert(text, output_stride=2, fc_to_conv=True, mode="exact").text
    assert out == text.replace('type: "InnerProduct"', 'type: "Convolution"').replace(
        "inner_product_param { num_output: 3 }", "convolution_param { num_output: 3 kernel_size: 5 }")


def test_multi_line_head_keeps_indentation_and_line_endings():
    text = VGG_TEXT.replace("    num_output: 4096\n  }", "    num_output: 4096\n    weight_filler {\n"
                            "      type: \"gaussian\"\n    }\n  }", 1).replace("\n", "\r\n")
    out = convert(text, output_stride=8, fc_to_conv=True).text
    i = out.index('name: "fc6"')
    assert out[i:].startswith('name: "fc6"\r\n  type: "Convolution"\r\n  bottom: "pool5"\r\n'
                              '  top: "fc6"\r\n  convolution_param {\r\n    num_output: 4096\r\n'
                              '    pad: 12\r\n    kernel_size: 7\r\n    weight_filler {\r\n'
                              '      type: "gaussian"\r\n    }\r\n    dilation: 4\r\n  }\r\n}\r\n')
    assert out.startswith("# VGG16")


def test_largefov_preset(tmp_path, capsys):
    src = ROOT / "tests" / "golden" / "vgg16_fc_os8" / "input.prototxt"
    out = tmp_path / "o.prototxt"
    code, err = cli(capsys, src, "-o", out, "--config", "deeplab-v1-largefov")
    assert code == 0, err
    assert out.read_text() == (ROOT / "tests" / "golden" / "vgg16_largefov" /
                               "expected.prototxt").read_text()
