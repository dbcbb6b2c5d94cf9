"""Networks that are already dense or upsample: output stride from what the network computes
(pyramid pooling, image pyramids, Interp, Upsample, Deconvolution), and unknown layer types.
Every conversion here is also checked by conftest's invariants fixture."""

import pytest

from caffe_atrous.analysis import strides as st
from caffe_atrous.analysis.shapes import infer_shapes
from caffe_atrous.cli import main
from caffe_atrous.pipeline.loading import load_text
from caffe_atrous.core.errors import AtrousError

from conftest import conv, convert, layer, layers_by_name, net, pool, zoo_path, zoo_text

PSP = "pspnet101-voc2012/pspnet101_VOC2012_473.prototxt"


def cli(capsys, tmp_path, src, *args):
    """Run the CLI on a file; (exit code, output bytes or None, stderr)."""
    out = tmp_path / "out.prototxt"
    out.unlink(missing_ok=True)
    capsys.readouterr()
    code = main([str(src), "-o", str(out), *map(str, args)])
    return code, (out.read_bytes() if out.exists() else None), capsys.readouterr().err


def own_stride(text):
    return max(st.network_output_stride(g) for g in load_text(text, "t").graphs())


# -- PSPNet: pyramid pooling --------------------------------------------------

def test_pspnet_reports_8_and_is_unchanged_at_8(capsys, tmp_path):
    path = zoo_path(PSP)
    assert own_stride(path.read_text()) == 8
    code, out, err = cli(capsys, tmp_path, path, "--output-stride", "8")
    assert code == 0 and out == path.read_bytes()
    assert err.strip().splitlines()[-1].startswith("already at output stride 8: nothing to change")
    assert "'conv6_interp' is at stride 1" in err


def test_pspnet_past_its_classifier_says_what_it_can_reach(capsys, tmp_path):
    code, out, err = cli(capsys, tmp_path, zoo_path(PSP), "--output-stride", "64")
    assert code == 1 and out is None and len(err.strip().splitlines()) == 1
    assert "output stride 64 is larger than the network's own output stride 8 and no stride " \
           "can be put back" in err and "reachable: 1, 2, 4, 8, 16, 32" in err


def test_pspnet_at_4_keeps_its_pyramid_bins():
    text = zoo_text(PSP)
    r = convert(text, output_stride=4)
    assert r.plan.stride_before == 8 and r.plan.stride_after == 4
    (g,) = load_text(r.text, "psp4").graphs()
    shapes = {b.name: s for b, s in infer_shapes(g).items()}
    assert shapes["conv5_3"][2:] == (119, 119)
    for bins, kernel in ((1, 119), (2, 60), (3, 40), (6, 20)):      # ceil(119 / bins)
        name = f"conv5_3_pool{bins}"
        assert shapes[name][2:] == (bins, bins)
        assert g.layer(name).window.kernel == g.layer(name).window.stride == (kernel, kernel)
        assert shapes[f"{name}_interp"][2:] == (119, 119)
    assert shapes["conv5_3_concat"][2:] == (119, 119)


# -- DeepLab v2: an image pyramid; FCN-8s: Deconvolution ------------------------

def test_deeplab_v2_test_net_is_unchanged_at_8(capsys, tmp_path):
    src = tmp_path / "deeplab.prototxt"
    src.write_bytes(zoo_text("deeplabv2-resnet101/test.prototxt").encode())
    code, out, err = cli(capsys, tmp_path, src, "--output-stride", "8")
    assert code == 0 and out == src.read_bytes() and "already at output stride 8" in err


def test_deeplab_v2_at_4_removes_the_same_strides_in_every_scale():
    text = zoo_text("deeplabv2-resnet101/test.prototxt")
    changed = {c.layer.name for c in convert(text, output_stride=4).plan.ordered()}
    for scale in ("", "_res05", "_res075"):
        assert f"res3a_branch2a{scale}" in changed and f"pool1{scale}" not in changed


def test_fcn8s_is_at_32_and_its_output_at_1(capsys, tmp_path):
    path = zoo_path("fcn8s-voc/deploy.prototxt")
    (g,) = load_text(path.read_text(), "fcn").graphs()
    assert st.network_output_stride(g) == 32
    assert st.final_strides(g, st.cumulative_strides(g)) == {"score": 1}
    code, out, err = cli(capsys, tmp_path, path, "--output-stride", "32")
    assert code == 0 and out == path.read_bytes()
    assert "already at output stride 32: nothing to change (its output 'score' is at stride 1)" in err


# -- small networks ------------------------------------------------------------

def pyramid(interp_body, bottoms=("b1",)):
    return net(conv("c1", "data", s=2), conv("c2", "c1", s=2), conv("c3", "c2", s=2),
               pool("b1", "c3", k=9, s=9, method="AVE"), conv("b1c", "b1", k=1),
               layer("b1i", "Interp", ["b1c"] + list(bottoms[1:]), body=interp_body),
               layer("cat", "Concat", ["c3", "b1i"]), size=65)


@pytest.mark.parametrize("body,bottoms", [("interp_param { height: 9 width: 9 }", ("b1",)),
                                          ("", ("b1", "c3"))])
def test_a_pyramid_branch_does_not_set_the_output_stride(body, bottoms):
    text = pyramid(body, bottoms)
    assert own_stride(text) == 8
    assert not convert(text, output_stride=8).plan.changes
    r = convert(text, output_stride=4)
    w = {n: l.window for n, l in layers_by_name(r.text).items()}
    assert w["b1"].kernel == w["b1"].stride == (17, 17)        # one bin over 17x17
    (g,) = load_text(r.text, "t").graphs()
    shapes = {b.name: s for b, s in infer_shapes(g).items()}
    assert shapes["b1"][2:] == (1, 1) and shapes["cat"][2:] == (17, 17)


def test_a_decoder_back_to_the_input_counts():
    text = net(conv("c1", "data", s=2), conv("c2", "c1", s=2),
               layer("up", "Interp", "c2", body="interp_param { height: 17 width: 17 }"),
               layer("cat", "Concat", ["data", "up"]), size=17)
    (g,) = load_text(text, "t").graphs()
    by = {b.name: max(s) for b, s in st.cumulative_strides(g).items() if s is not None}
    assert by["up"] == 1 and st.network_output_stride(g) == 4


def test_an_image_pyramid_counts_in_its_own_pixels():
    text = net(layer("half", "Interp", "data", body="interp_param { shrink_factor: 2 }"),
               conv("a1", "data", s=2), conv("a2", "a1", s=2),
               conv("h1", "half", s=2), conv("h2", "h1", s=2),
               layer("hz", "Interp", "h2", body="interp_param { zoom_factor: 2 }"),
               layer("sum", "Eltwise", ["a2", "hz"]), size=65)
    assert own_stride(text) == 4
    r = convert(text, output_stride=2)
    assert {c.layer.name for c in r.plan.ordered()} >= {"a2", "h2"}


# -- Upsample (SegNet/ENet) and unknown types ----------------------------------

def up_net(type_="Upsample", body="upsample_param { scale: 2 }"):
    return net(conv("c1", "data", s=2), conv("c2", "c1", s=2), layer("up", type_, "c2", body=body),
               conv("c3", "up"), conv("c4", "c3", s=2), size=33)


def test_upsample_brings_the_stride_down(capsys, tmp_path):
    text = up_net()
    assert own_stride(text) == 4
    src = tmp_path / "up.prototxt"
    src.write_text(text)
    code, out, err = cli(capsys, tmp_path, src, "--output-stride", "4")
    assert code == 0 and out == src.read_bytes() and "already at output stride 4" in err
    # at 2 no map may be deeper than 2: c2's map (at 4) loses its stride, and c4,
    # back at 2 after the Upsample, keeps its own and reads a x2 denser blob
    r = convert(text, output_stride=2)
    w = {n: l.window for n, l in layers_by_name(r.text).items()}
    assert w["c2"].stride == (1, 1) and w["c4"].stride == (2, 2) and w["c4"].dilation == (2, 2)
    assert r.plan.stride_before == 4 and r.plan.stride_after == 2


@pytest.mark.parametrize("body,sizes", [("upsample_param { scale_h: 2 scale_w: 4 }", (18, 36)),
                                        ("upsample_param { upsample_h: 17 upsample_w: 17 }", (17, 17)),
                                        ("upsample_param { pad_out_h: true }", (17, 18))])
def test_upsample_sizes(body, sizes):
    (g,) = load_text(up_net(body=body), "t").graphs()
    shapes = {b.name: s for b, s in infer_shapes(g).items()}
    assert shapes["up"][2:] == sizes


@pytest.mark.parametrize("body,pattern", [
    ("upsample_param { scale: 1 }", r"upsample_param: scale is 1; Caffe requires scale > 1"),
    ("upsample_param { upsample_h: 16 }", "upsample_param: upsample_h and upsample_w must be given together"),
    ("upsample_param { scale: 3 pad_out_h: true }", "upsample_param: pad_out_h/pad_out_w need a scale of 2"),
    ("upsample_param { scale: 2 scale_h: 2 scale_w: 2 }", "upsample_param: give scale, or scale_h and scale_w"),
])
def test_upsample_checks(body, pattern):
    with pytest.raises(AtrousError, match=r"test.prototxt:5: layer 'up': " + pattern):
        convert(up_net(body=body), output_stride=2)


def test_an_unknown_type_is_named(capsys, tmp_path):
    text = up_net("MyUp", body="")
    src = tmp_path / "up.prototxt"
    src.write_text(text)
    code, out, err = cli(capsys, tmp_path, src, "--output-stride", "4")
    assert code == 0 and "warning: layer 'up': unknown type 'MyUp': assumed to keep its " \
                         "input's grid" in err
    code, out, err = cli(capsys, tmp_path, src, "--output-stride", "4", "--exact")
    assert code == 1 and out is None and len(err.strip().splitlines()) == 1
    assert "layer 'up': unknown type 'MyUp'" in err and "--assume-same-grid MyUp" in err
    code, out, err = cli(capsys, tmp_path, src, "--output-stride", "4", "--exact",
                         "--assume-same-grid", "MyUp")
    assert code == 0 and "unknown" not in err
    preset = tmp_path / "p.yaml"
    preset.write_text("exact: true\nassume-same-grid: [MyUp]\n")
    code, out, err = cli(capsys, tmp_path, src, "--output-stride", "4", "--config", preset)
    assert code == 0 and "unknown" not in err


def test_an_unknown_type_where_nothing_changes_around_it_is_not_named():
    r = convert(up_net("MyUp", body=""), output_stride=8)
    assert not r.plan.changes and not r.plan.warnings


def test_crlf_file_at_its_own_stride_is_byte_identical(capsys, tmp_path):
    src = tmp_path / "crlf.prototxt"
    src.write_bytes(net(conv("c1", "data", s=2)).replace("\n", "\r\n").encode())
    code, out, err = cli(capsys, tmp_path, src, "--output-stride", "2")
    assert code == 0 and out == src.read_bytes() and "already at output stride 2" in err


def test_a_fixed_size_that_is_no_blobs_stays_a_warning_and_one_that_is_follows_nothing_here():
    text = net(conv("c1", "data", s=2), conv("c2", "c1", s=2), conv("c3", "c2", s=2),
               layer("odd", "Interp", "c3", body="interp_param { height: 20 width: 20 }"),
               layer("back", "Interp", "c3", body="interp_param { height: 33 width: 33 }"),
               layer("cat", "Concat", ["c1", "back"]), size=65)
    r = convert(text, output_stride=4)
    assert [c.layer.name for c in r.plan.ordered()] == ["c3"]
    assert [str(w) for w in r.plan.warnings] == [
        "layer 'odd': Interp reads 'c3', now x2 denser; its fixed output size 20x20 may no longer "
        "give the resolution you want: check it"]


def test_a_fixed_size_resize_is_sized_from_input_shape_when_the_file_declares_none():
    """--input-shape gives the sizes that show a fixed-size Interp returns onto a grid
    (as a declared input size does): `back` follows c1's grid, `odd` is named."""
    declared = net(conv("c1", "data", s=2), conv("c2", "c1", s=2), conv("c3", "c2", s=2),
                   layer("odd", "Interp", "c3", body="interp_param { height: 20 width: 20 }"),
                   layer("back", "Interp", "c3", body="interp_param { height: 33 width: 33 }"),
                   layer("cat", "Concat", ["c1", "back"]), size=65)
    bare = declared.replace("input_param { shape { dim: 1 dim: 3 dim: 65 dim: 65 } }", "")
    assert bare != declared
    with pytest.raises(AtrousError, match="different removed stride factors"):
        convert(bare, output_stride=4)              # no sizes: 'back' cannot be placed
    given = convert(bare, output_stride=4, input_shape=(1, 3, 65, 65))
    ref = convert(declared, output_stride=4)
    assert [c.layer.name for c in given.plan.ordered()] == ["c3"]
    assert [str(w) for w in given.plan.warnings] == [str(w) for w in ref.plan.warnings]
    assert (given.plan.stride_before, given.plan.stride_after) == (8, 4)


def test_the_report_places_a_fixed_size_resize_as_the_conversion_did():
    """--report with --input-shape describes the same strides as with a declared size."""
    from caffe_atrous.pipeline.conversion import convert_loaded
    from caffe_atrous.reports.text import build
    from caffe_atrous.rewrite.plan import Options
    declared = net(conv("c1", "data", s=2), conv("c2", "c1", s=2), conv("c3", "c2", s=2),
                   layer("back", "Interp", "c3", body="interp_param { height: 33 width: 33 }"),
                   layer("cat", "Concat", ["c1", "back"]), size=65)
    bare = declared.replace("input_param { shape { dim: 1 dim: 3 dim: 65 dim: 65 } }", "")
    reports = []
    for text, shape in ((declared, None), (bare, (1, 3, 65, 65))):
        loaded = load_text(text, "t.prototxt")
        result = convert_loaded(loaded, Options(output_stride=4, input_shape=shape))
        reports.append(build(loaded, result, shape))
    stages = [[(s["stage"], s["layers"], s["output_stride"]) for s in r["stages"]]
              for r in reports]
    assert stages[0] == stages[1] and len(stages[0]) > 2
