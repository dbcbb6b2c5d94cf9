"""SegNet and ENet networks in the built-in schema: their fields (dense_image_data_param,
upsample_param, bn_param's bn_mode/scale_filler/shift_filler) parse, and every one of
them reaches the output unchanged. The networks are written for these tests."""

import pytest

from caffe_atrous.pipeline.conversion import convert_text

from caffe_atrous.pipeline.loading import load_text
from caffe_atrous.formats import prototxt
from caffe_atrous.formats.schema import enum_name
from caffe_atrous.rewrite.plan import Options

FORK_FIELDS = ("dense_image_data_param", "upsample_param", "bn_param")


def bn(name, bottom, mode="INFERENCE"):
    return (f'layer {{ name: "{name}" type: "BN" bottom: "{bottom}" top: "{name}"\n'
            f'  bn_param {{ bn_mode: {mode}\n'
            f'    scale_filler {{ type: "constant" value: 1 }}\n'
            f'    shift_filler {{ type: "constant" value: 0.001 }} }} }}\n')


def conv(name, bottom, s=1):
    stride = f" stride: {s}" if s != 1 else ""
    return (f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}"\n'
            f'  convolution_param {{ num_output: 16 kernel_size: 3 pad: 1{stride} }} }}\n')


# SegNet-style: a dense data layer, BN in SegNet's inference mode, max pooling with
# indices and the unpooling (Upsample) that reads them, then an encoder stride to remove.
SEGNET = (
    'name: "segnet-like"\n'
    'layer { name: "data" type: "DenseImageData" top: "data" top: "label"\n'
    '  dense_image_data_param { source: "test.txt" batch_size: 2 shuffle: false\n'
    '    new_height: 120 new_width: 160 crop_height: 48 crop_width: 64 is_color: true\n'
    '    root_folder: "/images/" mirror: false rand_skip: 0 mean_file: "mean.binaryproto" } }\n'
    + conv("conv1", "data") + bn("conv1_bn", "conv1") +
    'layer { name: "pool1" type: "Pooling" bottom: "conv1_bn" top: "pool1" top: "pool1_mask"\n'
    '  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n'
    + conv("conv2", "pool1") + bn("conv2_bn", "conv2", "LEARN") +
    'layer { name: "up1" type: "Upsample" bottom: "conv2_bn" bottom: "pool1_mask" top: "up1"\n'
    '  upsample_param { scale: 2 upsample_h: 48 upsample_w: 64 } }\n'
    + conv("conv3", "up1", s=2) + conv("conv4", "conv3") +
    'layer { name: "up2" type: "Upsample" bottom: "conv4" bottom: "conv3" top: "up2"\n'
    '  upsample_param { scale_h: 2 scale_w: 2 pad_out_h: true pad_out_w: false } }\n'
)

# ENet-style: the data layer's label_divide_factor (ENet only) and no crop, only a resize.
ENET = (
    'name: "enet-like"\n'
    'layer { name: "data" type: "DenseImageData" top: "data" top: "label"\n'
    '  dense_image_data_param { source: "train.txt" batch_size: 4 shuffle: true\n'
    '    new_height: 64 new_width: 96 label_divide_factor: 8 } }\n'
    + conv("initial", "data", s=2) + bn("initial_bn", "initial") +
    conv("bottleneck1", "initial_bn", s=2) + bn("bottleneck1_bn", "bottleneck1") +
    conv("bottleneck2", "bottleneck1_bn")
)


def fork_fields(net) -> dict:
    """(layer, field) -> the field's message, for every fork field set in the net."""
    return {(l.name, f): getattr(l, f) for l in net.layer for f in FORK_FIELDS if l.HasField(f)}


def converted(text: str, layout: bool):
    """The net converted from its encoder's stride on (the layer named first in CASES)."""
    start = "conv3" if text is SEGNET else "bottleneck1"
    return convert_text(text, "in.prototxt", Options(output_stride=None, from_layer=start),
                        layout=layout)


@pytest.mark.parametrize("text,count", [(SEGNET, 5), (ENET, 3)], ids=["segnet", "enet"])
@pytest.mark.parametrize("layout", [True, False], ids=["layout", "canonical"])
def test_fork_fields_reach_the_output(text, count, layout):
    before = fork_fields(prototxt.parse(text, "in.prototxt")[0])
    assert len(before) == count
    result = converted(text, layout)
    assert result.plan.changes, "the test must convert something"
    assert fork_fields(prototxt.parse(result.text, "out.prototxt")[0]) == before


def test_fork_fields_parse_with_their_values():
    net = prototxt.parse(SEGNET, "in.prototxt")[0]
    layers = {l.name: l for l in net.layer}
    bn1, bn2 = layers["conv1_bn"].bn_param, layers["conv2_bn"].bn_param
    assert (enum_name(bn1, "bn_mode"), enum_name(bn2, "bn_mode")) == ("INFERENCE", "LEARN")
    assert (bn1.scale_filler.value, bn1.shift_filler.value) == (1.0, pytest.approx(0.001))
    up1, up2 = layers["up1"].upsample_param, layers["up2"].upsample_param
    assert (up1.scale, up1.upsample_h, up1.upsample_w) == (2, 48, 64)
    assert (up2.scale_h, up2.scale_w, up2.pad_out_h, up2.pad_out_w) == (2, 2, True, False)
    assert not up2.HasField("scale") and up2.scale == 2            # the forks' default
    data = layers["data"].dense_image_data_param
    assert (data.crop_height, data.crop_width, data.root_folder) == (48, 64, "/images/")
    enet = prototxt.parse(ENET, "in.prototxt")[0]
    assert enet.layer[0].dense_image_data_param.label_divide_factor == 8


def test_pspnet_bn_fields_still_parse_beside_segnets():
    text = ('layer { name: "bn" type: "BN" bottom: "x" top: "x"\n'
            '  bn_param { slope_filler { type: "constant" value: 1 } momentum: 0.95 frozen: true\n'
            '             bn_mode: INFERENCE } }\n')
    p = prototxt.parse(text, "in.prototxt")[0].layer[0].bn_param
    assert (p.slope_filler.value, p.frozen, enum_name(p, "bn_mode")) == (1.0, True, "INFERENCE")


@pytest.mark.parametrize("text,size,batch", [(SEGNET, (48, 64), 2), (ENET, (64, 96), 4)],
                         ids=["crop", "resize"])
def test_dense_image_data_gives_the_input_size(text, size, batch):
    """Its own crop first, else its resize (as the forks' DenseImageDataLayer)."""
    data = load_text(text, "in.prototxt").specs()[0]
    assert data.type == "DenseImageData"
    assert data.params.shape(0) == (batch, None) + size


def test_the_data_size_flows_into_the_encoder():
    """The data size flows through the encoder (a pooling halves it)."""
    from caffe_atrous.analysis.shapes import infer_shapes
    shapes = infer_shapes(load_text(SEGNET, "in.prototxt").graph())
    pool1 = next(v for b, v in shapes.items() if getattr(b, "name", b) == "pool1")
    assert tuple(pool1)[-2:] == (24, 32)
