"""The conversion on small networks: every rule, with hand-checked numbers."""

import pytest

from caffe_atrous.core.errors import AtrousError
from caffe_atrous.core.window import Window

from conftest import EXAMPLE, conv, convert, layer, layers_by_name, net, pool, windows


def seed_example():
    return EXAMPLE.read_text()


def test_seed_example_converts_as_the_seed_shows():
    out = windows(convert(seed_example(), output_stride=8).text)
    # conv4_1_3x3: 3x3 stride 2 pad 1 -> atrous_conv rate 2 with zero_padding 2
    assert out["conv4_1_3x3"] == Window((3, 3), (1, 1), (2, 2), (2, 2))
    assert out["conv4_2_3x3"] == Window((3, 3), (1, 1), (2, 2), (2, 2))
    assert out["conv4_1_1x1_proj"] == Window((1, 1))
    for name in ("conv4_1_1x1_reduce", "conv4_1_1x1_increase", "conv4_2_1x1_reduce"):
        assert out[name] == Window((1, 1)), name
    # stage 5: "more strides removed, more holes": rate 4 (as PSPNet's conv5_1_3x3)
    assert out["conv5_1_3x3"] == Window((3, 3), (1, 1), (4, 4), (4, 4))
    # stages 2 and 3 untouched
    assert out["conv3_1_3x3"] == Window((3, 3), (2, 2), (1, 1))


def test_seed_example_exact_rule():
    out = windows(convert(seed_example(), output_stride=8, mode="exact").text)
    assert out["conv4_1_3x3"] == Window((3, 3), (1, 1), (1, 1), (1, 1))
    assert out["conv4_2_3x3"] == Window((3, 3), (1, 1), (2, 2), (2, 2))
    assert out["conv5_1_3x3"] == Window((3, 3), (1, 1), (2, 2), (2, 2))


def test_head_pooling_becomes_global_and_the_classifier_is_kept():
    r = convert(seed_example(), output_stride=8)
    pool5 = layers_by_name(r.text)["pool5"]
    assert pool5.window is None and pool5.is_global_pool
    assert "kernel_size" not in r.text.split('name: "pool5"')[1].split("layer {")[0]
    assert any(w.layer == "pool5" for w in r.warnings)


def test_grouped_and_depthwise_convolutions():
    text = net(conv("c1", "data", s=2, n=8), conv("dw", "c1", s=2, n=8, group=8),
               conv("pw", "dw", k=1, n=16), conv("dw2", "pw", n=16, group=16))
    out = layers_by_name(convert(text, output_stride=2).text)
    assert out["dw"].window == Window((3, 3), (1, 1), (2, 2), (2, 2))
    assert out["dw"].conv.group == 8 and out["dw2"].conv.group == 16
    assert out["dw2"].window == Window((3, 3), (1, 1), (2, 2), (2, 2))


def test_asymmetric_kernels_and_h_w_fields_keep_their_form():
    text = net(conv("c1", "data", s=2),
               layer("c17", "Convolution", "c1", body="convolution_param { num_output: 4 "
                     "kernel_h: 1 kernel_w: 7 pad_h: 0 pad_w: 3 }"),
               layer("c71", "Convolution", "c17", body="convolution_param { num_output: 4 "
                     "kernel_size: 7 kernel_size: 1 pad: 3 pad: 0 }"))
    r = convert(text, output_stride=1)
    out = layers_by_name(r.text)
    assert out["c17"].window == Window((1, 7), (1, 1), (0, 6), (1, 2))
    assert out["c71"].window == Window((7, 1), (1, 1), (6, 0), (2, 1))
    block = r.text.split('name: "c17"')[1].split("layer {")[0]
    assert "pad_h: 0 pad_w: 6 dilation: 1 dilation: 2 }" in block    # written in place
    assert "stride_h" not in r.text


def test_stride_h_w_form():
    text = net(layer("c", "Convolution", "data", body="convolution_param { num_output: 4 "
                     "kernel_size: 3 pad: 1 stride_h: 2 stride_w: 2 }"), conv("d", "c"))
    r = convert(text, output_stride=1)
    block = r.text.split('name: "c"')[1].split("layer {")[0]
    assert "stride_h: 1" in block and "stride_w: 1" in block and "stride: " not in block


def test_cudnn_engine_removed_only_where_dilated():
    text = net(conv("c1", "data", s=2, extra="engine: CUDNN"),
               conv("c2", "c1", extra="engine: CUDNN"), conv("c3", "c2", k=1, extra="engine: CUDNN"))
    # exact: c1 loses its stride but keeps dilation 1; c3 is 1x1; only c2 is dilated
    r = convert(text, output_stride=1, mode="exact")
    assert r.text.count("engine: CUDNN") == 2
    assert "engine" not in r.text.split('name: "c2"')[1].split("layer {")[0]
    # seed convention: c1 takes dilation 2 too
    assert convert(text, output_stride=1).text.count("engine: CUDNN") == 1


def test_pooling_rules():
    text = net(conv("c1", "data"), pool("p1", "c1"), conv("c2", "p1"), pool("p2", "c2"),
               conv("c3", "p2"))
    seed = windows(convert(text, output_stride=2).text)
    assert seed["p2"] == Window((3, 3), (1, 1), (1, 1))       # DeepLab/SSD 2x2 -> 3x3
    assert seed["c3"] == Window((3, 3), (1, 1), (2, 2), (2, 2))
    exact = windows(convert(text, output_stride=2, mode="exact").text)
    assert exact["p2"] == Window((2, 2))                      # stride 1 only: H - 1
    # a pooling over a denser blob: warning by default, error with --exact
    r = convert(text, output_stride=1)
    assert any(w.layer == "p2" and "cannot be exact" in w.message for w in r.warnings)
    with pytest.raises(AtrousError, match="layer 'p2': pooling 2x2 reads 'c2', now x2 denser"):
        convert(text, output_stride=1, mode="exact")


def test_inner_product_that_would_grow_is_refused_with_advice():
    text = net(conv("c1", "data", s=2), pool("p", "c1", k=3, s=2),
               layer("fc", "InnerProduct", "p", body="inner_product_param { num_output: 3 }"))
    with pytest.raises(AtrousError, match=r"layer 'fc': InnerProduct reads 'p'.*--truncate-after"):
        convert(text, output_stride=2)
    r = convert(text, output_stride=2, truncate_after="p")
    assert "fc" not in layers_by_name(r.text)


def test_branches_meeting_with_different_factors_are_refused():
    # the shortcut "b" comes before "a" in the file, so --from a leaves its stride alone
    text = net(conv("c1", "data", s=2), conv("b", "c1", k=1, s=2), conv("a", "c1", s=2),
               layer("sum", "Eltwise", ["a", "b"]), conv("c2", "sum"))
    with pytest.raises(AtrousError, match=r"layer 'sum': its inputs arrive with different removed "
                       r"stride factors \('a' x2, 'b' x1\).*'b' keeps its stride 2: --from b"):
        convert(text, from_layer="a")
    # naming the first strided layer of the stage converts both paths
    r = convert(text, from_layer="b")
    assert windows(r.text)["c2"] == Window((3, 3), (1, 1), (2, 2), (2, 2))


def test_concat_shapes_are_checked_after_conversion():
    # exact mode: a 2x2 pooling with stride 1 outputs H-1 and no longer meets its sibling
    text = net(conv("c1", "data"), pool("p", "c1"), conv("q", "c1", k=1, s=2),
               layer("cat", "Concat", ["p", "q"]))
    with pytest.raises(AtrousError, match=r"layer 'cat': its inputs do not agree.*1x8x64x64, 1x8x65x65"):
        convert(text, output_stride=1, mode="exact")
    convert(text, output_stride=1)        # the seed's 3x3/1 pad 1 keeps 65


def test_stride_dependent_parameters_are_rescaled():
    text = net(conv("c1", "data", s=2), conv("c2", "c1", s=2),
               layer("rois", "Input", [], "rois", body="input_param { shape { dim: 4 dim: 5 } }"),
               layer("psroi", "PSROIPooling", ["c2", "rois"],
                     body="psroi_pooling_param { spatial_scale: 0.25 output_dim: 2 group_size: 2 }"),
               layer("roi", "ROIPooling", ["c2", "rois"],
                     body="roi_pooling_param { pooled_h: 2 pooled_w: 2 spatial_scale: 0.25 }"),
               layer("proposal", "Python", ["c2", "rois"], "props",
                     body="python_param { module: 'rpn.proposal_layer' layer: 'ProposalLayer' "
                          "param_str: \"'feat_stride': 4\" }"),
               layer("prior", "PriorBox", ["c2", "data"], body="prior_box_param { min_size: 8 step: 4 }"))
    r = convert(text, output_stride=2)
    out = layers_by_name(r.text)
    assert out["psroi"].params.spatial_scale == 0.5
    assert out["roi"].params.spatial_scale == 0.5
    assert out["proposal"].params.param_str == "'feat_stride': 2"
    assert out["prior"].params.steps == (("step", 2.0),)


def test_deconvolution_crop_and_interp_are_named_in_warnings():
    text = net(conv("c1", "data", s=2), conv("c2", "c1", s=2),
               layer("up", "Deconvolution", "c2",
                     body="convolution_param { num_output: 8 kernel_size: 4 stride: 2 }"),
               layer("crop", "Crop", ["up", "c1"], body="crop_param { axis: 2 offset: 1 }"),
               layer("zoom", "Interp", "c2", body="interp_param { zoom_factor: 2 }"),
               layer("to_image", "Interp", "c2", body="interp_param { zoom_factor: 4 }"))
    r = convert(text, output_stride=2)
    named = {w.layer for w in r.warnings}
    assert {"up", "crop", "zoom"} <= named and "to_image" not in named
    # a resize to the image stays one: its zoom follows the map it reads (4 -> 2)
    assert 'name: "to_image" type: "Interp" bottom: "c2" top: "to_image" interp_param ' \
           '{ zoom_factor: 2 }' in r.text.replace("\n", " ")


def test_unknown_layer_types_pass_through_untouched():
    text = net(conv("c1", "data", s=2), layer("odd", "MyFancyLayer", "c1"), conv("c2", "odd", s=2),
               conv("c3", "c2"))
    r = convert(text, output_stride=2)
    assert windows(r.text)["c3"] == Window((3, 3), (1, 1), (2, 2), (2, 2))
    assert 'type: "MyFancyLayer"' in r.text


def test_errors_in_the_network_name_the_layer():
    with pytest.raises(AtrousError, match=r"layer 'c2': bottom 'nope' is not produced"):
        convert(net(conv("c1", "data"), conv("c2", "nope")))
    with pytest.raises(AtrousError, match=r"test.prototxt:\d+: layer 'c1': duplicate layer name"):
        convert(net(conv("c1", "data"), conv("c1", "data")))
    with pytest.raises(AtrousError, match=r"--from nope: no layer"):
        convert(net(conv("c1", "data")), from_layer="nope")


def test_nothing_to_do_is_not_an_error():
    text = net(conv("c1", "data", s=2), conv("c2", "c1"))
    r = convert(text, output_stride=2)
    assert not r.plan.changes and r.plan.stride_after == 2
