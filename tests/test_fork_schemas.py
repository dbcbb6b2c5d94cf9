"""The built-in schema holds every fork's schema, checked against the forks' own files.

For each caffe.proto in ../shared/zoo/_proto (one per fork that docs/forks.md names),
every field of every message a network file can reach from its NetParameter must be
in the built-in schema's message of the same name, with a compatible type, label and
default, and every value of its enums. The places where a fork cannot be matched
exactly are listed in EXCEPTIONS, each with the reason; an entry no fork needs any
more is an error too. Then networks written for these tests, using the fields the
schema lacked before (training-time fields of DeepLab v2, PSPNet, SegNet, ENet,
Faster R-CNN, Microsoft's MIL layers and DeepLab v1's V1 layers), convert, and every
one of those fields reaches the output unchanged."""

from __future__ import annotations

import subprocess
import sys
from typing import NamedTuple

import pytest
from google.protobuf import descriptor_pb2

from caffe_atrous.formats import prototxt
from caffe_atrous.formats.schema import builtin
from caffe_atrous.formats.upgrade import _HANDLED
from caffe_atrous.graph.parameters import READERS, type_fields
from caffe_atrous.pipeline.conversion import convert_text
from caffe_atrous.pipeline.loading import load_text
from caffe_atrous.rewrite.plan import Options
from conftest import ROOT, ZOO, zoo_path

# The forks' schemas in the zoo (its MANIFEST.tsv says where each comes from).
FORKS = ("bvlc", "ssd-weiliu89", "pspnet-hszhao", "deeplab-v2", "deeplab-v1",
         "fast-rcnn-rbgirshick", "microsoft-caffe", "caffe-rfcn-daijifeng001",
         "segnet-alexgkendall", "enet-timosaemann")

F = descriptor_pb2.FieldDescriptorProto
OLD_CONV = ("deeplab-v1", "fast-rcnn-rbgirshick", "segnet-alexgkendall")

# (message, field, what differs) -> (the forks where it differs, why the built-in
# schema is right anyway). Messages by their name in the built-in schema.
EXCEPTIONS: dict[tuple[str, str, str], tuple[tuple[str, ...], str]] = {
    ("ConvolutionParameter", "pad", "label"): (
        OLD_CONV, "one value in forks older than N-d convolution, repeated (one per axis) in "
                  "BVLC; a repeated field reads a single value too"),
    ("ConvolutionParameter", "kernel_size", "label"): (OLD_CONV, "as pad"),
    ("ConvolutionParameter", "stride", "label"): (OLD_CONV, "as pad"),
    ("UniqueLabelParameter", "ignore_label", "type"): (
        ("deeplab-v1",), "float in DeepLab v1, int32 in DeepLab v2 and PSPNet: labels are "
                         "integers, and an integer parses as either"),
    ("AnnotatedDataParameter", "anno_type", "type"): (
        ("ssd-weiliu89",), "SSD takes the enum from AnnotatedDatum, a data record no network "
                           "file reaches; the built-in schema has the same enum (its values "
                           "are checked) inside AnnotatedDataParameter"),
    ("LossParameter", "normalize", "default"): (
        ("enet-timosaemann", "fast-rcnn-rbgirshick", "segnet-alexgkendall"),
        "true in forks older than BVLC's normalization field, unset in BVLC, whose loss "
        "layers then follow normalization; caffe_atrous never reads it"),
    ("ImageDataParameter", "batch_size", "default"): (
        ("deeplab-v1", "segnet-alexgkendall"), "none in these forks, 1 in BVLC; Caffe needs "
                                               "it set either way"),
}


class Problem(NamedTuple):
    message: str            # the built-in schema's name for it
    field: str
    what: str               # message, missing, label, required, type, enum, default
    detail: str


class Proto:
    """The messages and enums of one compiled schema, by name without the package."""

    def __init__(self, data: bytes):
        self.messages: dict[str, descriptor_pb2.DescriptorProto] = {}
        self.enums: dict[str, descriptor_pb2.EnumDescriptorProto] = {}
        for f in descriptor_pb2.FileDescriptorSet.FromString(data).file:
            for m in f.message_type:
                self._add(m, "")
            for e in f.enum_type:
                self.enums[e.name] = e

    def _add(self, m, prefix: str) -> None:
        name = prefix + m.name
        self.messages[name] = m
        for e in m.enum_type:
            self.enums[f"{name}.{e.name}"] = e
        for n in m.nested_type:
            self._add(n, name + ".")

    def reachable(self) -> list[str]:
        """The messages a network file can reach from NetParameter."""
        seen, todo = [], ["NetParameter"]
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.append(name)
                todo.extend(short(f.type_name) for f in self.messages[name].field
                            if f.type == F.TYPE_MESSAGE)
        return seen


def short(type_name: str) -> str:
    return type_name.removeprefix(".caffe.")


def compile_proto(path, out_dir) -> bytes:
    out = out_dir / f"{path.stem}.desc"
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{path.parent}",
                    f"--descriptor_set_out={out}", str(path)], check=True)
    return out.read_bytes()


def renames(fork: Proto) -> dict[str, str]:
    """Fork message name -> built-in name. DeepLab v1's NetParameter has only V1
    `layers`, whose message it calls LayerParameter: that is our V1LayerParameter."""
    net = {f.name: f for f in fork.messages["NetParameter"].field}
    if "layer" not in net and short(net["layers"].type_name) == "LayerParameter":
        return {"LayerParameter": "V1LayerParameter"}
    return {}


def ours_name(name: str, rename: dict[str, str]) -> str:
    head, dot, rest = name.partition(".")
    return rename.get(head, head) + dot + rest


def effective_default(f, proto: Proto):
    """What a reader gets when the field is absent (None: repeated or a message)."""
    if f.label == F.LABEL_REPEATED or f.type in (F.TYPE_MESSAGE, F.TYPE_GROUP):
        return None
    given = f.default_value if f.HasField("default_value") else None
    if f.type == F.TYPE_ENUM:
        return given or proto.enums[short(f.type_name)].value[0].name
    if f.type in (F.TYPE_FLOAT, F.TYPE_DOUBLE):
        return float(given or 0)
    if f.type == F.TYPE_BOOL:
        return given == "true"
    if f.type in (F.TYPE_STRING, F.TYPE_BYTES):
        return given or ""
    return int(given or 0)


def compare_field(f, o, fork: Proto, ours: Proto, rename) -> list[tuple[str, str]]:
    """(what, detail) for each way field `o` of ours fails to read fork field `f`."""
    out = []
    if (f.label == F.LABEL_REPEATED) != (o.label == F.LABEL_REPEATED):
        out.append(("label", f"{F.Label.Name(f.label)} in the fork, {F.Label.Name(o.label)} here"))
    if o.label == F.LABEL_REQUIRED and f.label != F.LABEL_REQUIRED:
        out.append(("required", "required here, not in the fork"))
    if f.type != o.type:
        out.append(("type", f"{F.Type.Name(f.type)} in the fork, {F.Type.Name(o.type)} here"))
    elif f.type_name and ours_name(short(f.type_name), rename) != short(o.type_name):
        out.append(("type", f"{short(f.type_name)} in the fork, {short(o.type_name)} here"))
    if f.type == F.TYPE_ENUM and o.type == F.TYPE_ENUM:
        have = {v.name for v in ours.enums[short(o.type_name)].value}
        lacking = [v.name for v in fork.enums[short(f.type_name)].value if v.name not in have]
        if lacking:
            out.append(("enum", f"no value {', '.join(lacking)}"))
    if f.type == o.type:
        theirs, mine = effective_default(f, fork), effective_default(o, ours)
        if theirs != mine and None not in (theirs, mine):
            out.append(("default", f"{theirs!r} in the fork, {mine!r} here"))
    return out


def problems(fork: Proto, ours: Proto) -> list[Problem]:
    rename = renames(fork)
    found = []
    for name in fork.reachable():
        mine = ours_name(name, rename)
        if mine not in ours.messages:
            found.append(Problem(mine, "", "message", "no such message"))
            continue
        have = {o.name: o for o in ours.messages[mine].field}
        for f in fork.messages[name].field:
            if f.name not in have:
                found.append(Problem(mine, f.name, "missing", "no such field"))
                continue
            found.extend(Problem(mine, f.name, what, detail)
                         for what, detail in compare_field(f, have[f.name], fork, ours, rename))
    return found


@pytest.fixture(scope="module")
def ours() -> Proto:
    return Proto((ROOT / "caffe_atrous" / "formats" / "caffe.desc").read_bytes())


@pytest.fixture(scope="module")
def fork_problems(ours, tmp_path_factory) -> dict[str, list[Problem]]:
    out_dir = tmp_path_factory.mktemp("fork-schemas")
    return {fork: problems(Proto(compile_proto(zoo_path(f"_proto/{fork}.proto"), out_dir)), ours)
            for fork in FORKS}


def test_every_schema_in_the_zoo_is_checked():
    zoo_path("_proto/MANIFEST.tsv")
    assert sorted(p.stem for p in (ZOO / "_proto").glob("*.proto")) == sorted(FORKS)


@pytest.mark.parametrize("fork", FORKS)
def test_the_built_in_schema_reads_every_field_of(fork, fork_problems):
    unexplained = [p for p in fork_problems[fork]
                   if fork not in EXCEPTIONS.get((p.message, p.field, p.what), ((), ""))[0]]
    assert unexplained == []


def test_every_exception_is_still_needed(fork_problems):
    seen = {(fork, p.message, p.field, p.what) for fork, ps in fork_problems.items() for p in ps}
    stale = [(fork, *key) for key, (forks, _) in EXCEPTIONS.items() for fork in forks
             if (fork, *key) not in seen]
    assert stale == []


def test_a_fork_schema_with_a_field_the_built_in_one_lacks_is_caught(ours, tmp_path):
    """The check itself: a new field, a changed label and type, a new enum value."""
    source = zoo_path("_proto/bvlc.proto").read_text()
    changes = {"optional float dropout_ratio = 1 [default = 0.5];":
               "repeated double dropout_ratio = 1;\n  optional uint32 keep_every = 77;",
               "    STOCHASTIC = 2;": "    STOCHASTIC = 2;\n    MEDIAN = 77;"}
    for old, new in changes.items():
        assert old in source
        source = source.replace(old, new)
    (tmp_path / "fork.proto").write_text(source)
    (tmp_path / "out").mkdir()
    found = problems(Proto(compile_proto(tmp_path / "fork.proto", tmp_path / "out")), ours)
    assert sorted((p.message, p.field, p.what) for p in found) == [
        ("DropoutParameter", "dropout_ratio", "label"),
        ("DropoutParameter", "dropout_ratio", "type"),
        ("DropoutParameter", "keep_every", "missing"),
        ("PoolingParameter", "pool", "enum"),
        ("SPPParameter", "pool", "enum"),
        ("V0LayerParameter", "pool", "enum")]


# -- what the rest of caffe_atrous derives from the schema ------------------------

def test_every_v1_parameter_has_a_v2_field_for_the_upgrade():
    """upgrade.py copies every V1 *_param it does not handle itself into the V2
    field of the same name: that field must exist, with the same message."""
    schema = builtin()
    v2 = schema.LayerParameter.DESCRIPTOR.fields_by_name
    lacking = [(fd.name, fd.message_type and fd.message_type.name)
               for fd in schema.V1LayerParameter.DESCRIPTOR.fields
               if fd.name not in _HANDLED and (fd.name not in v2 or
                                               v2[fd.name].message_type is not fd.message_type)]
    assert lacking == []


def test_layer_types_still_find_their_parameter_fields():
    """Type X reads the field whose message is XParameter: the new messages add types
    (MIL, DomainTransform, ...) and take none from another field."""
    desc = builtin().LayerParameter.DESCRIPTOR
    table = type_fields(desc)
    for fd in desc.fields:
        message = fd.message_type
        if message and message.name.endswith("Parameter") and fd.name.endswith("_param"):
            assert table[message.name.removesuffix("Parameter")] == fd.name
    assert {t: table[t] for t in ("MIL", "MILData", "DomainTransform", "BiasChannel",
                                  "AdaptiveBiasChannel", "UniqueLabel", "Convolution",
                                  "Deconvolution", "Interp", "BN", "Upsample")} == {
        "MIL": "mil_param", "MILData": "mil_data_param",
        "DomainTransform": "domain_transform_param", "BiasChannel": "bias_channel_param",
        "AdaptiveBiasChannel": "adaptive_bias_channel_param",
        "UniqueLabel": "unique_label_param", "Convolution": "convolution_param",
        "Deconvolution": "convolution_param", "Interp": "interp_param", "BN": "bn_param",
        "Upsample": "upsample_param"}
    assert set(READERS) <= set(table.values())


# -- networks that use the fields the schema lacked --------------------------------

def conv(name, bottom, s=1, n=16):
    stride = f" stride: {s}" if s != 1 else ""
    return (f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}"\n'
            f'  convolution_param {{ num_output: {n} kernel_size: 3 pad: 1{stride} }} }}\n')


# DeepLab v2 / PSPNet training: multi-scale crops, BatchNorm that updates its
# statistics, the CRF's labels, domain transform and the weak-supervision layers.
DEEPLAB_V2 = (
    'name: "deeplab-v2-train"\n'
    'layer { name: "data" type: "ImageSegData" top: "data" top: "label" top: "data_dim"\n'
    '  transform_param { mirror: true crop_height: 305 crop_width: 337\n'
    '    scale_factors: 0.5 scale_factors: 0.75 scale_factors: 1.25\n'
    '    mean_value: 104.008 mean_value: 116.669 mean_value: 122.675 }\n'
    '  image_data_param { source: "train.txt" batch_size: 2 shuffle: true\n'
    '    label_type: PIXEL ignore_label: 255 } }\n'
    + conv("conv1", "data", s=2) +
    'layer { name: "conv1_bn" type: "BatchNorm" bottom: "conv1" top: "conv1"\n'
    '  batch_norm_param { use_global_stats: false update_global_stats: true } }\n'
    + conv("conv2", "conv1", s=2) + conv("conv3", "conv2", n=21) +
    'layer { name: "labels" type: "UniqueLabel" bottom: "label" top: "labels"\n'
    '  unique_label_param { max_labels: 4 ignore_label: 255 ignore_label: 0 force_label: 0 } }\n'
    'layer { name: "bias" type: "BiasChannel" bottom: "conv3" bottom: "labels" top: "biased"\n'
    '  bias_channel_param { bg_bias: 5 fg_bias: 7 ignore_label: 255 label_type: PIXEL\n'
    '    background_label: 0 } }\n'
    'layer { name: "adaptive" type: "AdaptiveBiasChannel" bottom: "biased" bottom: "labels"\n'
    '  top: "adapted" adaptive_bias_channel_param { num_iter: 2 bg_portion: 0.4 fg_portion: 0.2\n'
    '    suppress_others: false margin_others: 1 } }\n'
    'layer { name: "edges" type: "Convolution" bottom: "data" top: "edges"\n'
    '  convolution_param { num_output: 1 kernel_size: 3 pad: 1 } }\n'
    'layer { name: "dt" type: "DomainTransform" bottom: "adapted" bottom: "edges"\n'
    '  bottom: "data_dim" top: "dt"\n'
    '  domain_transform_param { num_iter: 3 spatial_sigma: 50 range_sigma: 3 min_weight: 0.01 } }\n'
    'layer { name: "crf" type: "DenseCRF" bottom: "dt" bottom: "data_dim" bottom: "data"\n'
    '  top: "crf" dense_crf_param { max_iter: 10 pos_w: 3 pos_xy_std: 3 bi_w: 4\n'
    '    bi_xy_std: 121 bi_rgb_std: 5 output_probability: false } }\n'
)

# SegNet / ENet training: class weights in the loss, Bayesian SegNet's test-time
# dropout, and ENet's ImageData label_divide_factor.
SEGNET = (
    'name: "segnet-train"\n'
    'layer { name: "data" type: "ImageData" top: "data" top: "label"\n'
    '  image_data_param { source: "train.txt" batch_size: 4 new_height: 96 new_width: 128\n'
    '    label_divide_factor: 8 } }\n'
    + conv("conv1", "data", s=2) + conv("conv2", "conv1", s=2) +
    'layer { name: "drop" type: "Dropout" bottom: "conv2" top: "conv2"\n'
    '  dropout_param { dropout_ratio: 0.5 sample_weights_test: true } }\n'
    + conv("conv3", "conv2", n=3) +
    'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "conv3" bottom: "label" top: "loss"\n'
    '  loss_param { ignore_label: 11 weight_by_label_freqs: true\n'
    '    class_weighting: 0.2595 class_weighting: 0.1826 class_weighting: 4.5640 } }\n'
)

# Faster R-CNN, Microsoft, R-FCN: dropout scaled at test time.
FASTER = (
    'name: "faster-train"\n'
    'input: "data"\n'
    'input_shape { dim: 1 dim: 3 dim: 64 dim: 64 }\n'
    + conv("conv1", "data", s=2) + conv("conv2", "conv1", s=2) +
    'layer { name: "drop" type: "Dropout" bottom: "conv2" top: "conv2"\n'
    '  dropout_param { dropout_ratio: 0.3 scale_train: false } }\n'
    + conv("conv3", "conv2")
)

# Microsoft's multiple-instance learning (visual concepts): its data layer and MIL.
MIL = (
    'name: "mil"\n'
    'layer { name: "data" type: "MILData" top: "data" top: "label"\n'
    '  mil_data_param { source: "train.h5" num_scales: 1 scale_factor: 1 channels: 3\n'
    '    images_per_batch: 1 n_classes: 1000 label_file: "labels.h5" root_dir: "/images"\n'
    '    ext: "jpg" randomize: false } }\n'
    + conv("conv1", "data", s=2) + conv("conv2", "conv1", s=2) + conv("fc8", "conv2", n=1000) +
    'layer { name: "sigmoid" type: "Sigmoid" bottom: "fc8" top: "fc8_sigmoid" }\n'
    'layer { name: "mil" type: "MIL" bottom: "fc8_sigmoid" top: "mil"\n'
    '  mil_param { type: NOR } }\n'
    'layer { name: "loss" type: "EuclideanLoss" bottom: "mil" bottom: "label" top: "loss" }\n'
)

# (name, network, first layer whose stride goes, layers whose parameters are checked)
V2_CASES = [
    ("deeplab-v2", DEEPLAB_V2, "conv2", ("data", "conv1_bn", "labels", "bias", "adaptive",
                                         "dt", "crf")),
    ("segnet", SEGNET, "conv2", ("data", "drop", "loss")),
    ("faster-rcnn", FASTER, "conv2", ("drop",)),
    ("mil", MIL, "conv2", ("data", "mil")),
]


def params(layer) -> dict:
    """A layer's parameter messages (every set *_param field), by field name."""
    return {fd.name: value for fd, value in layer.ListFields() if fd.name.endswith("_param")}


def by_name(net, names) -> dict:
    layers = {layer.name: layer for layer in net.layer}
    return {name: params(layers[name]) for name in names}


@pytest.mark.parametrize("layout", [True, False], ids=["layout", "canonical"])
@pytest.mark.parametrize("name,text,start,checked", V2_CASES, ids=[c[0] for c in V2_CASES])
def test_fork_training_fields_reach_the_output(name, text, start, checked, layout):
    before = by_name(prototxt.parse(text, "in.prototxt")[0], checked)
    result = convert_text(text, "in.prototxt", Options(output_stride=None, from_layer=start),
                          layout=layout)
    assert result.plan.changes, "the test must convert something"
    assert "dilation: 2" in result.text
    assert by_name(prototxt.parse(result.text, "out.prototxt")[0], checked) == before


def test_fork_training_fields_parse_with_their_values():
    net = prototxt.parse(DEEPLAB_V2, "in.prototxt")[0]
    layers = {layer.name: layer for layer in net.layer}
    tp = layers["data"].transform_param
    assert list(tp.scale_factors) == [0.5, 0.75, 1.25]
    assert (tp.crop_height, tp.crop_width) == (305, 337)
    assert layers["conv1_bn"].batch_norm_param.update_global_stats is True
    assert layers["crf"].dense_crf_param.output_probability is False
    assert layers["dt"].domain_transform_param.min_weight == pytest.approx(0.01)
    assert list(layers["labels"].unique_label_param.ignore_label) == [255, 0]
    segnet = {layer.name: layer for layer in prototxt.parse(SEGNET, "in.prototxt")[0].layer}
    loss = segnet["loss"].loss_param
    assert loss.weight_by_label_freqs and loss.class_weighting[2] == pytest.approx(4.564)
    assert not loss.HasField("normalization")
    assert segnet["drop"].dropout_param.sample_weights_test is True
    assert segnet["drop"].dropout_param.scale_train is True          # the forks' default
    assert segnet["data"].image_data_param.label_divide_factor == 8
    mil = {layer.name: layer for layer in prototxt.parse(MIL, "in.prototxt")[0].layer}
    assert mil["mil"].mil_param.DESCRIPTOR.fields_by_name["type"].enum_type.values_by_number[
        mil["mil"].mil_param.type].name == "NOR"
    assert mil["data"].mil_data_param.n_classes == 1000


def test_the_data_size_comes_from_crop_height_and_width():
    """DeepLab v2 / PSPNet: crop_height and crop_width, when both are set, are the
    crop (over crop_size), as their data transformer takes them."""
    data = load_text(DEEPLAB_V2, "in.prototxt").specs()[0]
    assert data.params.shape(0) == (2, None, 305, 337)
    both = DEEPLAB_V2.replace("{ mirror: true", "{ mirror: true crop_size: 321")
    assert load_text(both, "in.prototxt").specs()[0].params.shape(0) == (2, None, 305, 337)
    one = DEEPLAB_V2.replace("crop_width: 337", "crop_size: 321")
    assert load_text(one, "in.prototxt").specs()[0].params.shape(0) == (2, None, 321, 321)


def test_the_command_line_converts_a_segnet_training_file(tmp_path):
    src, out = tmp_path / "segnet_train.prototxt", tmp_path / "out.prototxt"
    src.write_text(SEGNET)
    done = subprocess.run([sys.executable, "-m", "caffe_atrous", str(src), "-o", str(out),
                           "--from", "conv2"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert by_name(prototxt.parse(out.read_text(), "out")[0], ("data", "drop", "loss")) == \
        by_name(prototxt.parse(SEGNET, "in")[0], ("data", "drop", "loss"))


# DeepLab v1 (V1 layers): its weak-supervision and label layers, which a V1 file
# names by enum and which are upgraded to V2 with their parameters.
DEEPLAB_V1 = (
    'name: "deeplab-v1-weak"\n'
    'input: "data"\n'
    'input_dim: 1 input_dim: 3 input_dim: 64 input_dim: 64\n'
    'input: "label"\n'
    'input_dim: 1 input_dim: 1 input_dim: 64 input_dim: 64\n'
    'layers { name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1"\n'
    '  convolution_param { num_output: 8 kernel_size: 3 pad: 1 stride: 2 } }\n'
    'layers { name: "conv2" type: CONVOLUTION bottom: "conv1" top: "conv2"\n'
    '  convolution_param { num_output: 8 kernel_size: 3 pad: 1 stride: 2 } }\n'
    'layers { name: "conv3" type: CONVOLUTION bottom: "conv2" top: "conv3"\n'
    '  convolution_param { num_output: 21 kernel_size: 3 pad: 1 } }\n'
    'layers { name: "gain" type: GAIN_CHANNEL bottom: "conv3" top: "conv3"\n'
    '  gain_channel_param { num_output_nz: 21 drift: 0.001 norm_mean: false\n'
    '    gain_filler { type: "constant" value: 1 } } }\n'
    'layers { name: "labels" type: UNIQUE_LABEL bottom: "label" top: "labels"\n'
    '  unique_label_param { max_labels: 3 ignore_label: 255 } }\n'
    'layers { name: "censor" type: CENSOR_LABEL bottom: "label" bottom: "labels" top: "censored"\n'
    '  censor_label_param { ignore_label: 255 } }\n'
    'layers { name: "overlay" type: IGNORE_OVERLAY bottom: "label" bottom: "censored"\n'
    '  top: "overlaid" ignore_overlay_param { ignore_label: 255 } }\n'
    'layers { name: "bias" type: BIAS_CHANNEL bottom: "conv3" bottom: "labels" top: "biased"\n'
    '  bias_channel_param { bg_bias: 1 fg_bias: 3 ignore_label: 255 } }\n'
    'layers { name: "adaptive" type: ADAPTIVE_BIAS_CHANNEL bottom: "biased" bottom: "labels"\n'
    '  top: "adapted" adaptive_bias_channel_param { num_iter: 3 fg_portion: 0.3 } }\n'
    'layers { name: "dominant" type: DOMINANT_CHANNEL bottom: "adapted" top: "dominant"\n'
    '  dominant_channel_param { top_k: 2 } }\n'
    'layers { name: "aggregate" type: CHANNEL_AGGREGATOR bottom: "adapted" top: "aggregated"\n'
    '  channel_aggregator_param { label_map_file: "map.txt" } }\n'
    'layers { name: "onehot" type: ONEHOT bottom: "label" top: "onehot"\n'
    '  onehot_param { num_labels: 21 } }\n'
    'layers { name: "hist" type: HISTOGRAM bottom: "label" top: "hist"\n'
    '  histogram_param { num_labels: 21 ignore_label: 255 } }\n'
    'layers { name: "err" type: RELATIVE_ERROR bottom: "onehot" bottom: "adapted" top: "err" }\n'
    'layers { name: "l2" type: EUCLIDEAN_LOSS bottom: "onehot" bottom: "adapted" top: "l2"\n'
    '  euclidean_loss_param { type: L2sqrt } }\n'
)

V1_NEW_TYPES = {"gain": "GainChannel", "labels": "UniqueLabel", "censor": "CensorLabel",
                "overlay": "IgnoreOverlay", "bias": "BiasChannel",
                "adaptive": "AdaptiveBiasChannel", "dominant": "DominantChannel",
                "aggregate": "ChannelAggregator", "onehot": "OneHot", "hist": "Histogram",
                "err": "RelativeError", "l2": "EuclideanLoss"}


@pytest.mark.parametrize("layout", [True, False], ids=["layout", "canonical"])
def test_deeplab_v1_layers_are_upgraded_with_their_parameters(layout):
    v1 = prototxt.parse(DEEPLAB_V1, "in.prototxt")[0]
    before = {layer.name: params(layer) for layer in v1.layers}
    result = convert_text(DEEPLAB_V1, "in.prototxt", Options(output_stride=None,
                                                               from_layer="conv2"), layout=layout)
    assert result.plan.changes and "dilation: 2" in result.text
    out = {layer.name: layer for layer in prototxt.parse(result.text, "out.prototxt")[0].layer}
    assert {name: out[name].type for name in V1_NEW_TYPES} == V1_NEW_TYPES
    for name in V1_NEW_TYPES:
        assert params(out[name]) == before[name], name
