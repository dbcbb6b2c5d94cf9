"""Both directions: a dense network made coarser again (strides put back where the
dilations of its trunk rise, heads rescaled), round trips, and the published networks
the issue names, checked against hand-computed and published geometry."""

import re

import pytest

from caffe_atrous.analysis import coarsen
from caffe_atrous.core.errors import AtrousError
from caffe_atrous.core.window import Window
from caffe_atrous.pipeline.loading import load_text
from conftest import EXAMPLE, convert, windows, zoo_path, zoo_text

PSP50 = "pspnet50-ade20k/pspnet50_ADE20K_473.prototxt"
PSP101 = "pspnet101-voc2012/pspnet101_VOC2012_473.prototxt"
DEEPLAB2 = "deeplabv2-resnet101/test.prototxt"
LARGEFOV = "deeplabv1-largefov/test.prototxt"
ASPP_L = "deeplabv2-vgg16-aspp-l/test.prototxt"
R50 = "resnet50-kaiming/ResNet-50-deploy.prototxt"
MOBILENET = "mobilenet-v1-shicai/mobilenet_deploy.prototxt"
RESNEXT = "resnext50-32x4d-soeaver/deploy_resnext50-32x4d.prototxt"
# The zoo's classifiers whose every stride sits on a convolution with a kernel over 1 (a 1x1
# projection beside it): they come back layer for layer. The others put a stride on a 1x1
# (Kaiming's and SE-ResNets, soeaver's ResNet-50) or on a pooling (VGG, GoogLeNet, Inception,
# AlexNet): their strides come back on the 3x3 after it (checked below for ResNet-50).
DENSE = [PSP50, PSP101, DEEPLAB2, LARGEFOV, ASPP_L]


def W(k, s=1, p=0, d=1):
    return Window((k, k), (s, s), (p, p), (d, d))


def _back(text: str, stride: int, **opts) -> dict:
    return windows(convert(text, output_stride=stride, **opts).text)


def test_the_seed_documents_after_becomes_its_before():
    dense = convert(EXAMPLE.read_text(), output_stride=8).text
    w = _back(dense, 16)
    assert w["conv4_1_3x3"] == W(3, 2, 1, 1) and w["conv4_1_1x1_proj"] == W(1, 2)
    assert w["conv4_2_3x3"] == W(3, 1, 1, 1) and w["conv5_1_3x3"] == W(3, 1, 2, 2)
    w = _back(dense, 16, mode="exact")        # exact: the stride on the 1x1 above the rise
    assert w["conv4_1_1x1_reduce"] == W(1, 2) and w["conv4_1_3x3"] == W(3, 1, 1, 1)


@pytest.mark.parametrize("rel", [None, MOBILENET, RESNEXT])
def test_to_8_and_back_gives_the_classifier_layer_for_layer(rel):
    text = EXAMPLE.read_text() if rel is None else zoo_text(rel)
    before = windows(text)
    back = _back(convert(text, output_stride=8).text, 32)
    global_now = {s.name for s in load_text(convert(text, output_stride=8).text).specs()
                  if s.is_global_pool}
    assert {n: w for n, w in back.items() if n not in global_now} == \
        {n: w for n, w in before.items() if n not in global_now}


def test_where_the_stride_sat_on_a_1x1_the_output_says_where_it_went():
    text = zoo_text(R50)
    result = convert(convert(text, output_stride=8).text, output_stride=32)
    strided = {c.layer.name for c in result.plan.ordered() if c.after and c.after.stride == (2, 2)}
    assert strided == {"res4a_branch2b", "res4a_branch1", "res5a_branch2b", "res5a_branch1"}
    assert result.plan.stride_after == 32


@pytest.mark.parametrize("rel", DENSE)
def test_a_published_dense_network_to_16_and_back_to_8_is_the_same(rel):
    text = zoo_text(rel)
    coarse = convert(text, output_stride=16)
    assert coarse.plan.stride_before == 8 and coarse.plan.stride_after == 16
    back = convert(coarse.text, output_stride=8).text
    if not load_text(text).legacy:
        assert back == text                      # byte for byte
    else:                                        # a V1 file comes back as its V2 upgrade
        assert windows(back) == windows(text)


def test_pspnet_at_16_keeps_its_bins_and_its_output_size():
    for mode in ("seed", "exact"):
        result = convert(zoo_text(PSP50), output_stride=16, mode=mode)
        w = windows(result.text)
        assert [w[f"conv5_3_pool{b}"].kernel[0] for b in (1, 2, 3, 6)] == [30, 15, 10, 5]
        assert [w[f"conv5_3_pool{b}"].stride[0] for b in (1, 2, 3, 6)] == [30, 15, 10, 5]
        for b in (1, 2, 3, 6):                   # the fixed-size Interps follow the map
            interp = _block(result.text, f"conv5_3_pool{b}_interp")
            assert "height: 30" in interp and "width: 30" in interp, interp
        assert "zoom_factor: 16" in _block(result.text, "conv6_interp")
        assert result.plan.final == {"conv6_interp": 1}
        assert w["conv5_1_3x3"] == W(3, 1, 2, 2) and w["conv4_2_3x3"] == W(3, 1, 1, 1)
    seed = windows(convert(zoo_text(PSP50), output_stride=16).text)
    assert seed["conv4_1_3x3"] == W(3, 2, 1, 1)


def test_pspnet_at_4_keeps_its_output_at_the_image_size():
    result = convert(zoo_text(PSP50), output_stride=4)
    assert "zoom_factor: 4" in _block(result.text, "conv6_interp")
    assert result.plan.final == {"conv6_interp": 1}


def test_pspnet_at_16_costs_about_a_quarter_in_its_dense_part():
    from caffe_atrous.reports.text import build
    before = load_text(zoo_text(PSP50), "psp")
    result = convert(zoo_text(PSP50), output_stride=16)
    report = build(before, result)
    stage8 = next(s for s in report["stages"] if s["stage"] == "stride 8")
    macs0, macs1 = stage8["macs"]
    assert 3.5 < macs0 / macs1 < 4.5


def test_deeplab_v2_at_16_halves_its_aspp_rates_in_every_scale():
    w = windows(convert(zoo_text(DEEPLAB2), output_stride=16).text)
    for scale in ("", "_res075", "_res05"):
        assert [w[f"fc1_21{scale}_c{i}"].dilation[0] for i in range(4)] == [3, 6, 9, 12]
        assert w[f"res4a_branch2b{scale}"].stride == (2, 2)


def test_largefov_at_16_has_ssds_fc6():
    ssd = windows(zoo_text("ssd300-vgg16/deploy.prototxt"))["fc6"]
    w = windows(convert(zoo_text(LARGEFOV), output_stride=16).text)
    assert w["fc6"].dilation == ssd.dilation == (6, 6) and w["fc6"].pad == ssd.pad


def test_multi_grid_unit_rates_survive():
    dense = convert(zoo_text(R50), output_stride=8, multi_grid=(1, 2, 4)).text
    w = windows(convert(dense, output_stride=16).text)
    assert [w[f"res5{u}_branch2b"].dilation[0] for u in "abc"] == [2, 4, 8]
    assert w["res4b_branch2b"].dilation == (1, 1)


def test_a_dilation_that_does_not_divide_is_named():
    dense = convert(EXAMPLE.read_text(), output_stride=8).text
    start = dense.index('name: "conv4_2_3x3"')
    block = dense[start:dense.index("layer {", start)]
    broken = dense.replace(block, block.replace("pad: 2", "pad: 3").replace("dilation: 2",
                                                                           "dilation: 3"))
    with pytest.raises(AtrousError, match=r"layer 'conv4_2_3x3': dilation 3 and pad 3 cannot "
                                          r"follow a map 2 times coarser"):
        convert(broken, output_stride=16)


def test_an_output_stride_past_the_classifier_lists_both_directions():
    dense = convert(EXAMPLE.read_text(), output_stride=8).text
    with pytest.raises(AtrousError, match=r"reachable: 1, 2, 4, 8, 16, 32"):
        convert(dense, output_stride=64)
    assert coarsen.reachable_coarser(load_text(dense).graph()) == [16, 32]


def _block(text: str, name: str) -> str:
    start = text.index(f'name: "{name}"')
    return text[start:text.index("\nlayer", start) if "\nlayer" in text[start:] else len(text)]


# -- in real engines ----------------------------------------------------------------

def _resnet50_dense_and_coarser(tmp_path):
    """ResNet-50 at 8 (the default convention), taken to 16 both ways; random weights."""
    import caffe_atrous as ca
    orig = tmp_path / "r50.prototxt"
    orig.write_text(zoo_text(R50))
    weights = tmp_path / "r50.caffemodel"
    ca.init_weights(orig, weights, seed=5)
    dense = tmp_path / "r50_os8.prototxt"
    ca.convert(orig, 8, warn=False).write(dense)
    out = {}
    for mode in ("seed", "exact"):
        out[mode] = tmp_path / f"r50_os16_{mode}.prototxt"
        ca.convert(dense, 16, exact=mode == "exact", warn=False,
                   weights=weights).write(out[mode])
    return orig, dense, weights, out


def test_resnet50_made_coarser_again_verifies_in_opencv(tmp_path):
    pytest.importorskip("cv2")
    import caffe_atrous as ca
    _, dense, weights, out = _resnet50_dense_and_coarser(tmp_path)
    report = ca.verify(dense, out["exact"], weights, engine="opencv", input_shape=(1, 3, 225, 225))
    assert report.ok and report.max_rel < 1e-4
    assert "sampled every 2" in report.lines()[1]


@pytest.mark.real_caffe
def test_resnet50_made_coarser_again_runs_and_verifies_in_caffe(tmp_path):
    import caffe_env
    from test_real_caffe import forward
    caffe = caffe_env.require()
    orig, dense, weights, out = _resnet50_dense_and_coarser(tmp_path)
    done = forward(caffe, tmp_path, ("original", orig, weights),
                   [("dense", dense, weights), ("seed", out["seed"], weights),
                    ("exact", out["exact"], weights)])
    for case in ("dense", "seed", "exact"):
        assert done[case]["finite"] and done[case]["differ"] == [], case
    check = caffe.run("-m", "caffe_atrous", "verify", dense, out["exact"], weights, "--engine",
                      "caffe", "--input-shape", "1,3,225,225")
    assert "PASS" in caffe_env.check(check, "verify --engine caffe, coarser")


# -- the rest of the tool, in the new direction ----------------------------------------

def test_the_command_line_works_the_same_way_made_coarser(tmp_path, capsys):
    """--weights/--weights-out, --report, --diff, --check, presets and --proto on a
    dense network made coarser."""
    from caffe_atrous.cli import main
    dense, weights = tmp_path / "dense.prototxt", tmp_path / "dense.caffemodel"
    dense.write_text(convert(EXAMPLE.read_text(), output_stride=8).text)
    assert main(["init-weights", str(dense), "-o", str(weights), "-q"]) == 0
    out, wout = tmp_path / "os16.prototxt", tmp_path / "os16.caffemodel"
    assert main([str(dense), "-o", str(out), "--output-stride", "16", "--weights", str(weights),
                 "--weights-out", str(wout), "--report"]) == 0
    err = capsys.readouterr().err
    assert "converted 4 layers: output stride 8 -> 16" in err and "0 mismatched" in err
    assert "stride x2 put back" in err and wout.stat().st_size > 0
    assert main([str(dense), "-o", str(out), "--output-stride", "16", "--check"]) == 0
    assert main([str(dense), "-o", "-", "--output-stride", "16", "--diff", "-q"]) == 0
    diff = capsys.readouterr().out
    assert "-    pad: 2\n" in diff and "+    stride: 2\n" in diff
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("output-stride: 16\nexact: true\n")
    assert main([str(dense), "-o", str(tmp_path / "p.prototxt"), "--config", str(cfg), "-q"]) == 0
    assert windows((tmp_path / "p.prototxt").read_text())["conv4_1_1x1_reduce"].stride == (2, 2)
    proto = tmp_path / "bvlc.proto"
    proto.write_text(zoo_path("_proto/bvlc.proto").read_text())
    pytest.importorskip("grpc_tools")
    assert main([str(dense), "-o", str(tmp_path / "b.prototxt"), "--output-stride", "16",
                 "--proto", str(proto), "-q"]) == 0
    assert windows((tmp_path / "b.prototxt").read_text()) == windows(out.read_text())


def test_the_html_report_draws_a_network_made_coarser(tmp_path):
    from test_report_html import write_page
    dense = tmp_path / "dense.prototxt"
    dense.write_text(convert(EXAMPLE.read_text(), output_stride=8).text)
    page = write_page(dense, tmp_path / "page.html", "--output-stride", "16")
    assert "conv4_1_3x3" in page and "<svg" in page
    assert '<td class="geometry">k3 s1 p2 d2</td><td class="geometry">k3 s2 p1 d1</td>' in page
    assert 'id="layer-conv4_1_3x3" class="node changed"' in page or \
        'conv4_1_3x3" class="node changed"' in page
