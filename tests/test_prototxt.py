"""Reading prototxt text: errors with file, line and column; layer line numbers."""

import pytest

from caffe_atrous.core.errors import AtrousError
from caffe_atrous.formats import prototxt


def test_layer_lines_skip_comments_strings_and_nested_blocks():
    text = ('# layer { in a comment\nname: "x { }"\nlayer {\n  name: "a"\n  param { name: "layer {" }\n}\n'
            '\n\nlayer { name: "b" }\n')
    _, src = prototxt.parse(text)
    assert src.layer_lines == [3, 9]


def test_syntax_error_names_file_line_and_column():
    with pytest.raises(AtrousError) as e:
        prototxt.parse('layer {\n  name: "a"\n  type: Convolution"\n}\n', "net.prototxt")
    assert str(e.value).startswith("net.prototxt:3:")


def test_unknown_field_is_named_with_its_message():
    with pytest.raises(AtrousError, match=r"x.prototxt:2:3: unknown field 'kernal_size' in "
                       r"ConvolutionParameter"):
        prototxt.parse('layer { name: "a" convolution_param {\n  kernal_size: 3 } }', "x.prototxt")


def test_template_variable_gets_advice():
    with pytest.raises(AtrousError, match="template variable"):
        prototxt.parse('layer { name: "a" convolution_param { num_output: ${N} } }', "x")


def test_v0_and_mixed_files_are_refused():
    with pytest.raises(AtrousError, match="V0"):
        prototxt.parse('layers { layer { name: "a" type: "conv" } }', "x")
    with pytest.raises(AtrousError, match="mixes"):
        prototxt.parse('layer { name: "a" } layers { name: "b" }', "x")


def test_fork_fields_parse():
    text = '''
    layer { name: "bn" type: "BN" bn_param { frozen: true momentum: 0.95 slope_filler { type: "constant" value: 1 } } }
    layer { name: "i" type: "Interp" interp_param { zoom_factor: 8 } }
    layer { name: "r" type: "PSROIPooling" psroi_pooling_param { spatial_scale: 0.0625 output_dim: 21 group_size: 7 } }
    layer { name: "p" type: "ROIPooling" roi_pooling_param { pooled_w: 7 pooled_h: 7 spatial_scale: 0.0625 } }
    layer { name: "pb" type: "PriorBox" prior_box_param { min_size: 30 step: 8 } }
    layer { name: "s" type: "SegAccuracy" seg_accuracy_param { ignore_label: 255 reset: false } }
    layer { name: "d" type: "ImageSegData" image_data_param { label_type: PIXEL } }
    layer { name: "l" type: "SmoothL1LossOHEM" loss_param { normalization: PRE_FIXED pre_fixed_normalizer: 128 } }
    '''
    net, _ = prototxt.parse(text)
    assert [l.type for l in net.layer][:2] == ["BN", "Interp"]
    assert net.layer[2].psroi_pooling_param.group_size == 7


def test_output_is_deterministic_and_reparses():
    net, _ = prototxt.parse('layer { type: "Convolution" name: "a" convolution_param { pad: 1 num_output: 2 } }')
    text = prototxt.to_text(net)
    assert text == prototxt.to_text(prototxt.parse(text)[0])
    assert text.index("name:") < text.index("type:")
