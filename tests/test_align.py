"""--align: "same" padding for every kernel larger than 1 (rewrite/align.py), so that each map
is ceil(input / stride), aligned with the image, as soeaver's aligned Inception-v4 backbones
did by hand. Windows worked out by hand: a convolution's "same" pad is d (k - 1) / 2, a
pooling's (k - 1) / 2; Caffe rounds a pooling's size up, so a strided one also rounds down.
"""

import difflib
import math
import re
import warnings

import pytest

import caffe_atrous as ca
from caffe_atrous.analysis.shapes import infer_shapes
from caffe_atrous.api import options
from caffe_atrous.analysis.strides import cumulative_strides
from caffe_atrous.cli import main
from caffe_atrous.core.errors import AtrousError
from caffe_atrous.core.window import Window
from caffe_atrous.pipeline.loading import load_text
from caffe_atrous.rewrite.align import align_window, same_pad
from caffe_atrous.verification.compare import diagnose

from conftest import (EXAMPLE, conv, convert, layer, layers_by_name, net, pool, windows,
                      zoo_path, zoo_text)

INCEPTION = "inception-v3-soeaver/deploy_inception-v3.prototxt"
SAME = "'same' padding (--align): the grid is aligned with the image"


# -- one window ---------------------------------------------------------------------

def test_same_pad_is_half_the_span_of_an_odd_effective_kernel():
    assert [same_pad(k) for k in (1, 3, 5, 7)] == [0, 1, 2, 3]
    assert same_pad(3, 4) == 4 and same_pad(7, 2) == 6
    assert same_pad(2) is None and same_pad(4, 3) is None      # spans 2 and 10: no centre
    assert same_pad(2, 2) == 1                                 # 2 taps 2 apart span 3


@pytest.mark.parametrize("before, pooling, ceil, after, rounds, even", [
    (Window((3, 3), (2, 2)), False, False, Window((3, 3), (2, 2), (1, 1)), False, ()),
    (Window((1, 7)), False, False, Window((1, 7), pad=(0, 3)), False, ()),
    (Window((3, 3), pad=(2, 2), dilation=(4, 4)), False, False,
     Window((3, 3), pad=(4, 4), dilation=(4, 4)), False, ()),
    (Window((3, 3), pad=(3, 3)), False, False, Window((3, 3), pad=(3, 3)), False, ()),  # larger
    (Window((3, 3), (2, 2)), True, True, Window((3, 3), (2, 2), (1, 1)), True, ()),
    (Window((3, 3), (2, 2)), True, False, Window((3, 3), (2, 2), (1, 1)), False, ()),
    (Window((3, 3)), True, True, Window((3, 3), pad=(1, 1)), False, ()),     # stride 1
    (Window((1, 1), (2, 2)), True, True, Window((1, 1), (2, 2)), True, ()),
    (Window((2, 2), (2, 2)), True, True, Window((2, 2), (2, 2)), False, (0, 1)),
    (Window((3, 2)), False, False, Window((3, 2), pad=(1, 0)), False, (1,)),
    (Window((2, 2), dilation=(2, 2)), False, False,
     Window((2, 2), pad=(1, 1), dilation=(2, 2)), False, ()),
])
def test_one_window(before, pooling, ceil, after, rounds, even):
    a = align_window(before, pooling, ceil)
    assert (a.window, a.round_down, a.even) == (after, rounds, even)


def test_same_pad_and_rounding_down_give_ceil_of_input_over_stride():
    from caffe_atrous.core.window import conv_out, pool_out
    for size in range(5, 40):
        for k, s in ((3, 2), (5, 2), (3, 3), (7, 4)):
            w = align_window(Window((k, k), (s, s)), True, True)
            assert conv_out(size, w.window, 0) == math.ceil(size / s)
            assert pool_out(size, w.window, 0, ceil_mode=not w.round_down) == math.ceil(size / s)
    # rounding up with "same" pad is one position too many where the stride divides H
    assert pool_out(8, Window((3, 3), (2, 2), (1, 1)), 0, ceil_mode=True) == 5


# -- small networks -------------------------------------------------------------------

SMALL = net(conv("c1", "data", k=3, s=2, p=0), pool("p1", "c1", k=3, s=2),
            conv("c2", "p1", k=3, p=0), conv("c3", "c2", k=1),
            conv("c4", "c3", k=5, p=1), pool("p2", "c4", k=3, s=2),
            conv("c5", "p2", k=3, p=0, d=2), size=65)


def _misaligned(text, size):
    """(blob, H x W, ceil(size / stride)) of every spatial blob whose size is not
    ceil(size / its stride) when the network reads a size x size image."""
    g = load_text(text, "x").graphs((1, 3, size, size))[-1]
    shapes = infer_shapes(g, input_shape=(1, 3, size, size))
    bad = []
    for blob, stride in cumulative_strides(g).items():
        shape = shapes.get(blob)
        if stride is not None and shape is not None and len(shape) == 4:
            want = tuple(math.ceil(size / s) for s in stride)
            if tuple(shape[2:]) != want:
                bad.append((blob.name, tuple(shape[2:]), want))
    return bad


def test_small_net_at_its_own_stride_by_hand():
    r = convert(SMALL, output_stride=8, align=True)
    assert r.plan.stride_after == 8
    w = windows(r.text)
    assert w["c1"] == Window((3, 3), (2, 2), (1, 1))
    assert w["p1"] == w["p2"] == Window((3, 3), (2, 2), (1, 1))
    assert w["c2"] == Window((3, 3), pad=(1, 1))
    assert w["c3"] == Window((1, 1))
    assert w["c4"] == Window((5, 5), pad=(2, 2))
    assert w["c5"] == Window((3, 3), pad=(2, 2), dilation=(2, 2))
    spec = layers_by_name(r.text)
    assert not spec["p1"].pool.ceil_mode and not spec["p2"].pool.ceil_mode
    assert r.text.count("round_mode: FLOOR") == 2
    by_layer = {c.layer.name: c.reasons for c in r.plan.ordered()}
    assert set(by_layer) == {"c1", "p1", "c2", "c4", "p2", "c5"}
    assert by_layer["c1"] == [SAME] and SAME in by_layer["p1"] and len(by_layer["p1"]) == 2
    said = [str(x) for x in r.warnings]
    assert said == ["--align: 'c1', 'p1', 'c2', 'c4', 'p2' and 'c5' re-padded to 'same'; 'p1' "
                    "and 'p2' round down, so that their maps are ceil(input / stride), aligned "
                    "with the image (not exact; the weights still fit)"]


def test_re_padded_layers_are_the_inexact_ones_the_plan_and_verify_name():
    r = convert(SMALL, output_stride=8, align=True)
    repadded = {"c1", "p1", "c2", "c4", "p2", "c5"}
    inexact = {x.layer: x.message for x in r.plan.inexact}
    assert set(inexact) == repadded
    assert inexact["c2"] == ("re-padded to 'same' (pad 1: a join's branches, or --align), where "
                             "the exact rule gives dilation 1, pad 0")
    assert inexact["p1"] == "pooling re-padded from 0 to 'same' (pad 1: a join's branches, or --align)"
    g0 = load_text(SMALL, "a").graphs()[0]
    g1 = load_text(r.text, "b").graphs()[0]
    found = diagnose(g0, g1, cumulative_strides(g0), cumulative_strides(g1))
    assert {w.layer: w.message for _, w in found} == inexact


@pytest.mark.parametrize("os_, changed", [
    (4, {"p2": Window((3, 3), pad=(1, 1)), "c5": Window((3, 3), pad=(4, 4), dilation=(4, 4))}),
    (2, {"p1": Window((3, 3), pad=(1, 1)), "p2": Window((3, 3), pad=(1, 1)),
         "c2": Window((3, 3), pad=(2, 2), dilation=(2, 2)),
         "c4": Window((5, 5), pad=(4, 4), dilation=(2, 2)),
         "c5": Window((3, 3), pad=(8, 8), dilation=(8, 8))}),
])
def test_small_net_denser_by_hand(os_, changed):
    """A pooling whose stride is removed reads at stride 1: "same" pad, no rounding.
    A dilated convolution's "same" pad is d (k - 1) / 2 with its new dilation."""
    r = convert(SMALL, output_stride=os_, align=True)
    w = windows(r.text)
    for name, window in changed.items():
        assert w[name] == window, name
    rounding = {n for n, s in layers_by_name(r.text).items() if s.pool and not s.pool.ceil_mode}
    assert rounding == {"p1", "p2"} - set(changed)


@pytest.mark.parametrize("os_", [8, 4, 2])
@pytest.mark.parametrize("size", [64, 65, 66, 67, 97, 100])
def test_every_map_is_ceil_of_input_over_stride(os_, size):
    r = convert(SMALL, output_stride=os_, align=True)
    assert _misaligned(r.text, size) == []
    assert _misaligned(convert(SMALL, output_stride=os_).text, size) != []    # without it


def test_even_kernels_keep_their_pads_with_a_warning():
    text = net(conv("c1", "data", k=3, s=2, p=0), pool("p1", "c1", k=2, s=2),
               layer("c2", "Convolution", "p1",
                     body="convolution_param { num_output: 8 kernel_h: 3 kernel_w: 2 }"),
               size=64)
    r = convert(text, output_stride=4, align=True)
    w = windows(r.text)
    assert w["p1"] == Window((2, 2), (2, 2)) and w["c2"] == Window((3, 2), pad=(1, 0))
    assert w["c1"] == Window((3, 3), (2, 2), (1, 1))
    said = {x.layer: x.message for x in r.warnings if x.layer}
    assert said == {
        "p1": "--align: kernel 2x2 is even (no centre), so no pad aligns it: it keeps pad 0",
        "c2": "--align: kernel 3x2 is even along its width (no centre), so no pad aligns it "
              "there: that axis keeps pad 0"}
    assert layers_by_name(r.text)["p1"].pool.ceil_mode       # 2x2/2 rounding up: ceil(H / 2)


def test_a_stochastic_pooling_cannot_be_padded_and_says_so():
    r = convert(net(conv("c1", "data"), pool("p1", "c1", k=3, s=2, method="STOCHASTIC")),
                output_stride=2, align=True)
    assert windows(r.text)["p1"] == Window((3, 3), (2, 2))
    assert [str(x) for x in r.warnings] == [
        "layer 'p1': --align: Caffe pads only MAX and AVE pooling, not STOCHASTIC: it keeps pad 0"]


def test_a_fork_that_says_ceil_mode_gets_ceil_mode_false():
    r = convert(net(conv("c1", "data"), pool("p1", "c1", k=3, s=2, extra="ceil_mode: true")),
                output_stride=2, align=True)
    assert "ceil_mode: false" in r.text and "round_mode" not in r.text


def test_a_fork_whose_pooling_cannot_round_down_refuses_it(tmp_path, monkeypatch):
    """PSPNet's, DeepLab's, R-FCN's and SSD's Caffe always round a pooling up (their
    caffe.proto has neither round_mode nor ceil_mode): with it as --proto, a strided
    pooling --align needs rounded down is an error naming it; the rest still aligns."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))        # protoc's cache
    proto = zoo_path("_proto/pspnet-hszhao.proto")
    head = 'name: "t"\ninput: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 64\ninput_dim: 64\n'
    strided = head + conv("c1", "data", k=3, s=2, p=0) + pool("p1", "c1", k=3, s=2)
    with pytest.raises(AtrousError, match=r"layer 'p1': this schema's pooling_param has neither "
                       r"round_mode nor ceil_mode"):
        ca.convert(strided, 4, align=True, proto=proto, warn=False)
    plain = head + conv("c1", "data", k=3, s=2, p=0) + pool("p1", "c1", k=3, s=1)
    assert windows(ca.convert(plain, 2, align=True, proto=proto, warn=False).text)["p1"] == \
        Window((3, 3), pad=(1, 1))


def test_a_whole_map_pooling_and_its_classifier_are_left_alone():
    """ResNet's pool5 covers its whole map at the network's own stride: global in effect."""
    r = convert(EXAMPLE.read_text(), output_stride=32, align=True)
    assert "pool5" not in {c.layer.name for c in r.plan.ordered()}


def test_a_classifier_whose_input_align_resizes_is_refused():
    text = net(conv("c1", "data", k=3, s=2, p=0), pool("p1", "c1", k=3, s=2),
               layer("fc", "InnerProduct", "p1", body="inner_product_param { num_output: 4 }"),
               size=32)
    with pytest.raises(AtrousError, match=r"layer 'fc': InnerProduct reads 'p1', which --align "
                       r"resizes from 8x7x7 to 8x8x8, so its weights would no longer fit; make "
                       r"it a convolution with --fc-to-conv"):
        convert(text, output_stride=4, align=True)
    r = convert(text, output_stride=4, align=True, fc_to_conv=True)
    head = r.plan.heads()["fc"]
    assert head.window == Window((7, 7), pad=(3, 3))           # made a convolution, aligned too


def test_align_at_the_networks_own_stride_changes_only_pads_and_rounding():
    original = zoo_text(INCEPTION)
    r = convert(original, output_stride=32, align=True)
    assert r.plan.stride_after == 32
    diff = [l for l in difflib.ndiff(original.splitlines(), r.text.splitlines())
            if l[:1] in "+-"]
    assert diff and all(re.fullmatch(r"[-+]\s+(pad: [01]|round_mode: FLOOR)", l) for l in diff)
    assert {c.layer.name for c in r.plan.ordered()} == {x.layer for x in r.plan.inexact}


@pytest.mark.parametrize("os_", [32, 16, 8])
def test_inception_v3_every_odd_kernel_has_same_padding(os_):
    r = convert(zoo_text(INCEPTION), output_stride=os_, align=True)
    assert r.plan.stride_after == os_
    checked = 0
    for s in load_text(r.text, "x").specs():
        w = s.window
        if w is None or w.kernel == (1, 1) or s.is_deconv:
            continue
        for a in (0, 1):
            assert w.pad[a] == same_pad(w.kernel[a], w.dilation[a]), (s.name, w)
        if s.pool is not None and max(w.stride) > 1:
            assert not s.pool.ceil_mode, s.name
        checked += 1
    assert checked == 67           # convolutions and poolings with a kernel > 1
    for size in (299, 300, 321, 224):             # the original runs only at some of these
        assert _misaligned(r.text, size) == [], size


def test_converting_an_aligned_network_again_changes_nothing():
    r = convert(zoo_text(INCEPTION), output_stride=16, align=True)
    again = convert(r.text, output_stride=16, align=True)
    assert again.plan.changes == {} and again.text == r.text


@pytest.mark.parametrize("opts", [
    dict(output_stride=8, mode="exact"), dict(from_layer="conv5_1_3x3"),
    dict(output_stride=8, fc_to_conv=True), dict(output_stride=16, truncate_after="pool5"),
    dict(output_stride=8, input_shape=(1, 3, 161, 161), truncate_after="pool5"),
])
def test_with_other_options(opts):
    r = convert(EXAMPLE.read_text(), align=True, **opts)
    size = (opts.get("input_shape") or (0, 0, 129))[2]
    assert _misaligned(r.text, size) == []


def test_at_a_coarser_output_stride():
    dense = convert(EXAMPLE.read_text(), output_stride=8).text
    for os_ in (16, 32):
        for mode in ("seed", "exact"):
            r = convert(dense, output_stride=os_, mode=mode, align=True)
            assert r.plan.stride_after == os_
            assert _misaligned(r.text, 129) == _misaligned(r.text, 130) == [], (os_, mode)


def test_with_multi_grid():
    text = net(conv("x", "data", k=3, s=2, p=0),
               conv("a_2", "x"), layer("a_sum", "Eltwise", ["a_2", "x"]),
               conv("b_2", "a_sum"), layer("b_sum", "Eltwise", ["b_2", "a_sum"]),
               conv("c_2", "b_sum"), layer("c_sum", "Eltwise", ["c_2", "b_sum"]), size=33)
    r = convert(text, output_stride=1, multi_grid=(1, 2, 4), align=True)
    w = windows(r.text)
    assert w["x"] == Window((3, 3), pad=(2, 2), dilation=(2, 2))     # seed: d2 p1, then "same"
    assert [w[f"{u}_2"] for u in "abc"] == [Window((3, 3), pad=(d, d), dilation=(d, d))
                                            for d in (2, 4, 8)]
    assert _misaligned(r.text, 33) == _misaligned(r.text, 40) == []


# -- the command line, the API, presets ------------------------------------------------

def test_the_command_line_and_a_preset(tmp_path, capsys):
    src = tmp_path / "small.prototxt"
    src.write_text(SMALL)
    out = tmp_path / "out.prototxt"
    assert main([str(src), "--os", "8", "--align", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: --align: 'c1', 'p1'" in err and "converted 6 layers: output stride 8 -> 8" in err
    preset = tmp_path / "aligned.yaml"
    preset.write_text("output-stride: 8\nalign: true\n")
    again = tmp_path / "again.prototxt"
    assert main([str(src), "--config", str(preset), "-o", str(again)]) == 0
    assert again.read_text() == out.read_text()
    assert main([str(src), "--os", "8", "-o", str(tmp_path / "plain.prototxt")]) == 0
    assert "already at output stride 8" in capsys.readouterr().err


def test_the_api_warns_and_the_weights_still_fit(tmp_path):
    src = tmp_path / "small.prototxt"
    src.write_text(SMALL)
    weights = tmp_path / "small.caffemodel"
    ca.init_weights(src, weights)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        conv_ = ca.convert(src, 8, align=True, weights=weights)
    assert [str(w.message) for w in caught][0].startswith("--align: 'c1', 'p1'")
    assert conv_.weights_report.line().startswith("weights:")
    assert options(8, align=True).align and not options(8).align
    assert {c.layer for c in conv_.changes} == {"c1", "p1", "c2", "c4", "p2", "c5"}


# -- in BVLC Caffe ----------------------------------------------------------------------

TAP = 'layer { name: "tap" type: "Split" bottom: "inception_c2_concat" top: "tap" }\n'


@pytest.mark.real_caffe
def test_aligned_inception_v3_runs_in_caffe_with_the_original_weights(tmp_path):
    """Converted with --align at 32, 16 and 8, Inception-v3 loads the original caffemodel
    (every parameter the original's) and runs at 299x299, where its last map is
    ceil(299 / output stride): Caffe honours the pads and round_mode: FLOOR as planned."""
    import caffe_env
    from test_real_caffe import atrous, forward
    caffe = caffe_env.require()
    orig = tmp_path / "inception.prototxt"
    orig.write_text(zoo_text(INCEPTION))
    weights = tmp_path / "inception.caffemodel"
    atrous("init-weights", orig, "-o", weights)
    cases = []
    for os_ in (32, 16, 8):
        new = tmp_path / f"aligned_os{os_}.prototxt"
        atrous(orig, "--os", os_, "--align", "-q", "-o", new)
        new.write_text(new.read_text() + TAP)       # the last map as an output too
        cases.append((f"os{os_}", new, weights))
    done = forward(caffe, tmp_path, ("original", orig, weights), cases)
    assert done["original"]["outputs"] == {"prob": [1, 1000]} and done["original"]["finite"]
    for os_ in (32, 16, 8):
        record, side = done[f"os{os_}"], math.ceil(299 / os_)
        assert record["outputs"] == {"prob": [1, 1000], "tap": [1, 2048, side, side]}, os_
        assert record["finite"] and record["differ"] == [] and record["dropped"] == [], os_
        assert record["params"] == done["original"]["params"], os_
