"""Published networks from ../shared/zoo.

1. Classification networks converted here give the backbones that DeepLab,
   R-FCN and SSD published (written by hand by their authors).
2. Every classification network converts at output stride 16 and 8, in both
   conventions, keeping its invariants, or fails with the documented error.
"""

import re

import pytest

from caffe_atrous.pipeline.loading import load_text
from caffe_atrous.core.errors import AtrousError
from caffe_atrous.formats import prototxt

from caffe_atrous.pipeline.conversion import convert_text

from conftest import ZOO, convert, windows, zoo_path, zoo_text

R101 = "resnet101-kaiming/ResNet-101-deploy.prototxt"
VGG_V1 = "vgg16-ilsvrc/VGG_ILSVRC_16_layers_deploy.prototxt"
VGG_V2 = "vgg16-ilsvrc-v2/VGG_ILSVRC_16_layers_deploy.prototxt"


def compare(converted: str, reference: str, only=None):
    """Windows of the layers both networks have; returns (common names, differences)."""
    a, b = windows(converted), windows(reference)
    common = [n for n in a if n in b and a[n] is not None and (only is None or n in only)]
    return common, {n: (a[n], b[n]) for n in common if a[n] != b[n]}


def test_resnet101_at_8_is_deeplab_v2():
    out = convert(zoo_text(R101), output_stride=8).text
    common, diff = compare(out, zoo_text("deeplabv2-resnet101/test.prototxt"))
    assert len(common) == 105            # conv1, pool1 and every backbone convolution
    assert set(diff) == {"pool1"}        # DeepLab's own alignment choice (pad 0 -> 1)
    w = windows(out)
    assert w["res4b22_branch2b"].dilation == (2, 2) and w["res5c_branch2b"].dilation == (4, 4)


def test_resnet101_at_16_is_rfcn():
    out = convert(zoo_text(R101), output_stride=16).text
    common, diff = compare(out, zoo_text("rfcn-resnet101-py/test_agnostic.prototxt"))
    assert len(common) == 105 and diff == {}


@pytest.mark.parametrize("vgg", [VGG_V1, VGG_V2])
@pytest.mark.parametrize("reference", ["deeplabv2-vgg16-aspp-l/test.prototxt",
                                       "deeplabv1-largefov/test.prototxt"])
def test_vgg16_at_8_gives_deeplabs_pool4_pool5_conv5(vgg, reference):
    out = convert(zoo_text(vgg), output_stride=8, truncate_after="pool5").text
    names = {"pool4", "pool5", "conv5_1", "conv5_2", "conv5_3"}
    common, diff = compare(out, zoo_text(reference), only=names)
    assert set(common) == names and diff == {}


@pytest.mark.parametrize("vgg", [VGG_V1, VGG_V2])
def test_vgg16_at_16_gives_ssds_pool5(vgg):
    out = convert(zoo_text(vgg), output_stride=16, truncate_after="pool5").text
    common, diff = compare(out, zoo_text("ssd300-vgg16/deploy.prototxt"))
    assert "pool5" in common and len(common) == 18 and diff == {}


# -- every classification network ---------------------------------------------

CLASSIFIERS = [
    R101, "resnet50-kaiming/ResNet-50-deploy.prototxt", "resnet152-kaiming/ResNet-152-deploy.prototxt",
    "resnet50-soeaver/deploy_resnet50.prototxt", "resnext50-32x4d-soeaver/deploy_resnext50-32x4d.prototxt",
    "se-resnet50/SE-ResNet-50.prototxt", "mobilenet-v1-shicai/mobilenet_deploy.prototxt",
    "squeezenet-v1.1/deploy.prototxt", "inception-v3-soeaver/deploy_inception-v3.prototxt",
    "bvlc-googlenet/deploy.prototxt", "bvlc-googlenet/train_val.prototxt",
    "bvlc-alexnet/deploy.prototxt", "bvlc-alexnet/train_val.prototxt", VGG_V1, VGG_V2,
]

# The documented failures: (network, output stride, mode) -> what the error says. The reasons:
IP_HEAD = r"layer 'fc6': InnerProduct reads 'pool5'.*--truncate-after"        # fc6 cannot grow
AUX_HEAD = r"layer 'loss1/fc': InnerProduct reads 'loss1/conv'"               # auxiliary classifier
INCEPTION_POOL = r"layer 'inception_4a/pool': pooling 3x3 reads .* cannot be exact"  # no dilated pooling
ALEX, GOOG, GOOG_TV = "bvlc-alexnet/deploy.prototxt", "bvlc-googlenet/deploy.prototxt", \
    "bvlc-googlenet/train_val.prototxt"
INCEPTION = "inception-v3-soeaver/deploy_inception-v3.prototxt"
EXPECTED_ERRORS = {}
for alex in (ALEX, "bvlc-alexnet/train_val.prototxt"):
    EXPECTED_ERRORS.update({(alex, 16, "seed"): IP_HEAD, (alex, 8, "seed"): IP_HEAD,
                            (alex, 16, "exact"): IP_HEAD,
                            (alex, 8, "exact"): r"layer 'pool5': pooling 3x3 reads 'conv5'.* cannot be exact"})
for vgg in (VGG_V1, VGG_V2):
    EXPECTED_ERRORS.update({(vgg, 16, "seed"): IP_HEAD, (vgg, 8, "seed"): IP_HEAD,
                            (vgg, 16, "exact"): IP_HEAD,
                            (vgg, 8, "exact"): r"layer 'pool5': pooling 2x2 reads 'conv5_3'.* cannot be exact"})
EXPECTED_ERRORS.update({
    (GOOG, 16, "exact"): r"layer 'inception_5a/pool': pooling 3x3 .* cannot be exact",
    (GOOG, 8, "exact"): INCEPTION_POOL,
    (GOOG_TV, 16, "seed"): AUX_HEAD, (GOOG_TV, 8, "seed"): AUX_HEAD, (GOOG_TV, 16, "exact"): AUX_HEAD,
    (GOOG_TV, 8, "exact"): INCEPTION_POOL,
    (INCEPTION, 16, "exact"): r"layer 'inception_c1_pool': pooling 3x3 .* cannot be exact",
    (INCEPTION, 8, "exact"): r"layer 'inception_b1_pool_ave': pooling 3x3 .* cannot be exact",
})


@pytest.mark.parametrize("mode", ["seed", "exact"])
@pytest.mark.parametrize("os_", [16, 8])
@pytest.mark.parametrize("path", CLASSIFIERS)
def test_classifier_converts_or_fails_as_documented(path, os_, mode):
    text = zoo_text(path)
    pattern = EXPECTED_ERRORS.get((path, os_, mode))
    if pattern:
        with pytest.raises(AtrousError, match=pattern):
            convert(text, output_stride=os_, mode=mode)
        return
    r = convert(text, output_stride=os_, mode=mode)
    assert r.plan.stride_after == os_
    assert bool(r.plan.changes) == (r.plan.stride_before > os_)     # SqueezeNet is already at 16


@pytest.mark.parametrize("os_", [16, 8])
@pytest.mark.parametrize("path", CLASSIFIERS)
def test_every_classifier_converts_whole_in_the_default_convention(path, os_):
    """With --fc-to-conv, no classification file of the zoo is refused any more."""
    r = convert(zoo_text(path), output_stride=os_, fc_to_conv=True)
    assert r.plan.stride_after == os_
    heads = set(r.plan.heads())
    spatial = {"fc6", "fc7", "fc8"} if "vgg" in path or "alexnet" in path else set()
    if path == GOOG_TV:
        spatial = {"loss1/fc", "loss1/classifier", "loss2/fc", "loss2/classifier"}
    assert heads == spatial
    assert bool(r.plan.notes) == (not heads)


@pytest.mark.parametrize("path,last", [("bvlc-alexnet/deploy.prototxt", "pool5"),
                                       (VGG_V1, "pool5"), (VGG_V2, "pool5")])
def test_classifier_heads_truncated(path, last):
    text = zoo_text(path)
    for os_ in (16, 8):
        r = convert(text, output_stride=os_, truncate_after=last)
        assert r.plan.stride_after == os_
        assert [l.name for l in r.net.layer][-1] == last


def test_se_resnet_is_converted_with_its_inexact_units_named():
    r = convert(zoo_text("se-resnet50/SE-ResNet-50.prototxt"), output_stride=8, mode="exact")
    named = {w.layer for w in r.warnings if "global" in w.message}
    # one squeeze (global pooling) per unit of stages 4 and 5, plus pool5
    assert len([n for n in named if re.match(r"conv[45]_\d+_global_pool", n)]) == 9
    assert {w.layer for w in r.plan.inexact} >= named


def test_reference_networks_with_templates_fail_clearly():
    text = zoo_path("deeplabv2-resnet101/test.prototxt").read_text()
    with pytest.raises(AtrousError, match=r"^dl.prototxt:21487:17: .*template variable"):
        convert_text(text, "dl.prototxt")


@pytest.mark.parametrize("path", ["deeplabv2-resnet101/test.prototxt", "rfcn-resnet101-py/train_agnostic.prototxt",
                                  "ssd300-vgg16/deploy.prototxt", "pspnet101-voc2012/pspnet101_VOC2012_473.prototxt",
                                  "deeplabv1-largefov/train.prototxt", "fcn8s-voc/val.prototxt"])
def test_reference_networks_parse_and_round_trip(path):
    loaded = load_text(zoo_text(path), path)
    text = prototxt.to_text(loaded.net)
    assert [l.name for l in prototxt.parse(text)[0].layer] == [l.name for l in loaded.net.layer]
    assert loaded.graphs()


ALL = sorted(str(p.relative_to(ZOO)) for p in ZOO.glob("*/*.prototxt"))


@pytest.mark.parametrize("path", ALL or ["(zoo absent)"])
def test_every_zoo_file_parses(path):
    """Every published file parses with the schema (template variables substituted)."""
    loaded = load_text(zoo_text(path), path)
    assert loaded.net.layer and loaded.graphs()
