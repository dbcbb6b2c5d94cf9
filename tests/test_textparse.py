"""The fast text reader builds exactly what protobuf's text_format builds, or
leaves the text to text_format."""

import pytest
from google.protobuf import text_format

from caffe_atrous.formats import textparse
from caffe_atrous.formats.schema import builtin

from conftest import EXAMPLE, zoo_path

ZOO_FAST = ["resnet152-kaiming/ResNet-152-deploy.prototxt", "bvlc-googlenet/train_val.prototxt",
            "pspnet101-voc2012/pspnet101_VOC2012_473.prototxt", "ssd300-vgg16/deploy.prototxt",
            "rfcn-resnet101-py/train_agnostic.prototxt", "vgg16-ilsvrc/VGG_ILSVRC_16_layers_deploy.prototxt",
            "mobilenet-v1-shicai/mobilenet_deploy.prototxt", "inception-v3-soeaver/deploy_inception-v3.prototxt"]


def both(text):
    """(what text_format makes or its error, what merge makes or its error, fast path taken)."""
    net = builtin().NetParameter
    ref, got = net(), net()
    try:
        text_format.Parse(text, ref)
    except text_format.ParseError as exc:
        ref = ("error", str(exc))
    try:
        textparse.merge(text, got)
    except textparse.ParseError as exc:
        got = ("error", str(exc))
    fast = net()
    try:
        textparse.read(text, fast)
        took_fast = True
    except textparse.Unsupported:
        took_fast = False
    if took_fast:
        assert fast == ref, "the fast reader accepted text and built something else"
    return ref, got, took_fast


@pytest.mark.parametrize("rel", ZOO_FAST)
def test_zoo_files_take_the_fast_path_and_agree(rel):
    ref, got, fast = both(zoo_path(rel).read_text())
    assert fast and ref == got and len(got.layer) + len(got.layers) > 10


def test_the_example_takes_the_fast_path():
    ref, got, fast = both(EXAMPLE.read_text())
    assert fast and ref == got


L = 'layer { name: "a" type: "Convolution" '
CASES = [
    # forms the fast reader reads itself
    L + 'convolution_param { num_output: 8 kernel_size: 3 stride: 2 } }',
    L + 'convolution_param: { num_output: 8, kernel_size: 3; } } # trailing comment',
    L + 'convolution_param < num_output: 8 > }',
    'layer { name: \'single\' top: "t" top: "u" }',
    'layer { name: "a#b" } # } not the end',
    'layer { name: "ü" param { lr_mult: 1e-3 decay_mult: -.5 } param { lr_mult: 2. } }',
    'layer { name: "a" propagate_down: 1 propagate_down: f propagate_down: True }',
    'layer { name: "a" pooling_param { pool: AVE } }',
    'input_shape { dim: -0 dim: 9223372036854775807 }',
    'layer { name: "a" phase: TEST include { phase: TRAIN } }',
    '',
    '   \n# only a comment',
    'layer { name: "a" }, layer { name: "b" };',
    # forms left to text_format
    'layer { name: "a\\"b" }',
    'layer { name: "a" "b" }',
    L + 'convolution_param { kernel_size: [3, 3] } }',
    L + 'convolution_param { kernel_size: 0x3 stride: 010 } }',
    'layer { name: "a" param { lr_mult: inf decay_mult: 1.5f } }',
    'layer { name: "a" pooling_param { pool: 1 } }',
    # errors, which text_format words
    'layer { name: "a" name: "b" }',
    L + 'convolution_param { num_output: 8 } convolution_param { kernel_size: 3 } }',
    L + 'convolution_param { num_output: -1 } }',
    L + 'convolution_param { num_output: 4294967296 } }',
    L + 'convolution_param { num_output: 3.0 } }',
    L + 'convolution_param { num_output: 3stride: 2 } }',
    L + 'convolution_param { kernal_size: 3 } }',
    'layer { name: "a" pooling_param { pool: MAXIMUM } }',
    'layer { name: "a" bottom "b" }',
    'layer { name: "a"',
    'layer { name: "a" }}',
    'layer { name: "a" >',
    'layer { name: "unterminated }',
    'layer { name: "a" } ;; layer { name: "b" }',
    'name: "x" : ',
    '{ }',
    'layer { name: "a" type: Convolution" }',
    'layer { name: "a" } ²',
    'layer ' * 60 + '{ ' * 60,
]


@pytest.mark.parametrize("text", CASES, ids=range(len(CASES)))
def test_same_message_or_same_error(text):
    ref, got, _ = both(text)
    assert ref == got


def test_what_the_fast_reader_reads_itself():
    fast = [both(t)[2] for t in CASES[:13]]
    slow = [both(t)[2] for t in CASES[13:]]
    assert all(fast) and not any(slow)
