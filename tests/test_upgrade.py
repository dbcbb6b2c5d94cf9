"""Legacy V1 files are upgraded to V2 as Caffe's upgrade_net_proto_text does."""

from caffe_atrous.pipeline.loading import load_text
from caffe_atrous.formats import prototxt

from conftest import zoo_text

V1 = '''
name: "old"
input: "data"
input_dim: 1 input_dim: 3 input_dim: 33 input_dim: 33
layers {
  name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1"
  blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0
  convolution_param { num_output: 4 kernel_size: 3 pad: 2 hole: 2 }
}
layers { name: "relu1" type: RELU bottom: "conv1" top: "conv1" }
layers { name: "fc" type: INNER_PRODUCT bottom: "conv1" top: "fc" param: "shared_w" strict_dim: false
  inner_product_param { num_output: 2 } }
layers { name: "loss" type: SOFTMAX_LOSS bottom: "fc" bottom: "fc" softmaxloss_param { ignore_label: 255 } }
'''


def test_v1_layers_become_v2():
    loaded = load_text(V1, "old.prototxt")
    net = loaded.net
    assert loaded.legacy and not net.layers and not net.input and not net.input_dim
    assert [l.name for l in net.layer] == ["input", "conv1", "relu1", "fc", "loss"]
    assert [l.type for l in net.layer] == ["Input", "Convolution", "ReLU", "InnerProduct",
                                           "SoftmaxWithLoss"]
    assert list(net.layer[0].input_param.shape[0].dim) == [1, 3, 33, 33]
    conv = net.layer[1]
    assert [(p.lr_mult, p.decay_mult) for p in conv.param] == [(1, 1), (2, 0)]
    assert list(conv.convolution_param.dilation) == [2] and not conv.convolution_param.HasField("hole")
    assert net.layer[3].param[0].name == "shared_w"
    assert net.layer[4].loss_param.ignore_label == 255
    assert [w.layer for w in loaded.notes] == ["fc"] and "strict_dim" in loaded.notes[0].message
    # line numbers still point at the V1 blocks (the Input layer has none)
    assert loaded.lines[0] is None and loaded.lines[1] == 5


def test_vgg16_v1_and_v2_files_upgrade_to_the_same_network():
    v1 = load_text(zoo_text("vgg16-ilsvrc/VGG_ILSVRC_16_layers_deploy.prototxt"), "v1").net
    v2 = load_text(zoo_text("vgg16-ilsvrc-v2/VGG_ILSVRC_16_layers_deploy.prototxt"), "v2").net
    assert [l.name for l in v1.layer][1:] == [l.name for l in v2.layer]
    for a, b in zip(v1.layer[1:], v2.layer):
        assert a.convolution_param == b.convolution_param and a.pooling_param == b.pooling_param


def test_deeplab_v1_hole_becomes_dilation():
    net = load_text(zoo_text("deeplabv1-largefov/test.prototxt", NUM_LABELS="21"), "dl").net
    fc6 = next(l for l in net.layer if l.name == "fc6")
    assert list(fc6.convolution_param.dilation) == [12]
    text = prototxt.to_text(net)
    assert "hole" not in text and "layers {" not in text
