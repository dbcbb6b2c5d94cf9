"""Weights on the command line: --weights, --weights-out, init-weights."""

import re

import numpy as np
import pytest
from google.protobuf import text_format

from caffe_atrous.cli import main
from caffe_atrous.pipeline.loading import load_text
from caffe_atrous.formats import caffemodel
from caffe_atrous.formats.schema import builtin
from caffe_atrous.weights.check import expected_params

from conftest import EXAMPLE, conv, net

caffe_pb2 = builtin()


@pytest.fixture
def seed_weights(tmp_path):
    path = tmp_path / "seed.caffemodel"
    assert main(["init-weights", str(EXAMPLE), "-o", str(path), "--seed", "3"]) == 0
    return path


def cli(capsys, *args):
    capsys.readouterr()                      # drop what the setup printed
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def test_init_weights_match_the_networks_parameter_shapes(seed_weights):
    expected = expected_params(load_text(EXAMPLE.read_text(), "ex"))
    with caffemodel.Weights(str(seed_weights)) as w:
        stored = {l.name: [b.shape for b in l.blobs] for l in w.layers if l.blobs}
        assert stored == expected and len(stored) == 61
        bn = w.by_name()["conv1_bn"].blobs
        assert (bn[1].array() > 0).all() and bn[2].array().tolist() == [1.0]   # positive variance
        assert stored["fc10"] == [(10, 128), (10,)]


def test_init_weights_writes_records_as_caffe_saves_them(seed_weights):
    """Net::ToProto: every layer, its whole definition with the phase the net ran
    in, serialized in field-number order (blobs, 7, before phase, 10, and the
    parameters, 100 and up)."""
    net_ = text_format.Merge(EXAMPLE.read_text(), caffe_pb2.NetParameter())
    saved = caffe_pb2.NetParameter.FromString(seed_weights.read_bytes())
    assert [l.name for l in saved.layer] == [l.name for l in net_.layer]
    for layer, record in zip(net_.layer, saved.layer):
        definition = caffe_pb2.LayerParameter()
        definition.CopyFrom(record)
        definition.ClearField("blobs")
        layer.phase = 1                                  # TEST
        assert definition == layer, layer.name
    assert saved.SerializeToString() == seed_weights.read_bytes()     # protobuf's order
    with caffemodel.Weights(str(seed_weights)) as w:
        conv1 = w.by_name()["conv1"]
        assert [f.number for f in conv1.fields] == [1, 2, 3, 4, 7, 10, 106]
        assert not w.by_name()["conv1_relu"].blobs


def test_init_weights_is_deterministic_per_seed(tmp_path):
    a, b, c = (tmp_path / n for n in ("a", "b", "c"))
    for path, seed in ((a, 1), (b, 1), (c, 2)):
        main(["init-weights", str(EXAMPLE), "-o", str(path), "--seed", str(seed)])
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_weights_check_line(tmp_path, capsys, seed_weights):
    code, err = cli(capsys, EXAMPLE, "-o", tmp_path / "o.prototxt", "--weights", seed_weights)
    assert code == 0 and "weights: 61 layers match, 0 missing, 0 mismatched" in err


def test_weights_out_keeps_every_blob_byte_for_byte(tmp_path, capsys, seed_weights):
    out = tmp_path / "os8.caffemodel"
    code, _ = cli(capsys, EXAMPLE, "-o", tmp_path / "o.prototxt", "--weights", seed_weights,
                  "--weights-out", out, "--truncate-after", "conv5_1/relu")
    assert code == 0
    with caffemodel.Weights(str(seed_weights)) as a, caffemodel.Weights(str(out)) as b:
        src = a.by_name()
        names = [l.name for l in a.layers]
        assert [l.name for l in b.layers] == names[: names.index("conv5_1/relu") + 1]
        for layer in b.layers:
            assert [b.buffer[x.start:x.stop] for x in layer.blobs] == \
                [a.buffer[x.start:x.stop] for x in src[layer.name].blobs]


def test_weights_out_rewrites_only_the_records_of_converted_layers(tmp_path, capsys, seed_weights):
    """On a caffemodel as Caffe saves it, a layer the conversion leaves alone
    keeps its record byte for byte; a converted one gets the new definition."""
    out, model = tmp_path / "o.prototxt", tmp_path / "os8.caffemodel"
    code, _ = cli(capsys, EXAMPLE, "-o", out, "--weights", seed_weights, "--weights-out", model)
    assert code == 0
    before = text_format.Merge(EXAMPLE.read_text(), caffe_pb2.NetParameter()).layer
    after = {l.name: l for l in text_format.Merge(out.read_text(), caffe_pb2.NetParameter()).layer}
    changed = {l.name for l in before if l != after[l.name]}
    with caffemodel.Weights(str(seed_weights)) as a, caffemodel.Weights(str(model)) as b:
        stored = a.by_name()
        same = {l.name for l in b.layers
                if b.buffer[l.head:l.stop] == a.buffer[stored[l.name].head:stored[l.name].stop]}
    assert same == {l.name for l in before} - changed
    assert {"conv4_1_3x3", "conv4_2_3x3"} <= changed and len(changed) < len(before) / 4


def wrong_weights(tmp_path, drop=None, reshape=None, bias=None):
    """The seed example's random weights with one layer dropped or reshaped, or
    with fc10's bias (10,) replaced by `bias`: a shape, or () for no bias blob."""
    source = tmp_path / "src.caffemodel"
    main(["init-weights", str(EXAMPLE), "-o", str(source)])
    bad = tmp_path / "bad.caffemodel"
    with caffemodel.Weights(str(source)) as w, caffemodel.Writer(str(bad)) as out:
        for layer in w.layers:
            if layer.name == drop:
                continue
            arrays = [b.array() for b in layer.blobs]
            if layer.name == reshape:
                arrays[0] = np.zeros((arrays[0].shape[0], 3, 3, 3), "f4")
            if layer.name == "fc10" and bias is not None:
                arrays[1:] = [np.zeros(bias, "f4")] if bias else []
            out.add(layer.name, layer.type, [caffemodel.encode_blob(a) for a in arrays])
    return bad


@pytest.mark.parametrize("case,pattern", [
    ("missing", r"1 layer\(s\) with parameters have no weights in it \(conv4_2_3x3\)"),
    ("shape", r"layer 'conv4_1_3x3': blob shape 16x3x3x3 stored, 16x16x3x3 expected"),
    ("other", r"no layer of the network has weights in it .* another network"),
    ("truncated", r"truncated or corrupt caffemodel"),
    # a right weight beside a bias of the wrong shape or number: Caffe aborts on both
    ("bias 1x10", r"layer 'fc10': blob shape 1x10 stored, 10 expected"),
    ("bias 11", r"layer 'fc10': blob shape 11 stored, 10 expected"),
    ("bias 1x1x10x1", r"layer 'fc10': blob shape 1x1x10x1 stored, 10 expected"),
    ("no bias", r"layer 'fc10': 1 blobs stored, 2 expected"),
])
def test_bad_weights_are_clear_errors(tmp_path, capsys, case, pattern):
    if case.startswith("bias "):
        weights = wrong_weights(tmp_path, bias=tuple(int(d) for d in case[5:].split("x")))
    elif case == "no bias":
        weights = wrong_weights(tmp_path, bias=())
    elif case == "missing":
        weights = wrong_weights(tmp_path, drop="conv4_2_3x3")
    elif case == "shape":
        weights = wrong_weights(tmp_path, reshape="conv4_1_3x3")
    elif case == "other":
        other = tmp_path / "other.prototxt"
        other.write_text(net(conv("a", "data"), conv("b", "a")))
        weights = tmp_path / "other.caffemodel"
        main(["init-weights", str(other), "-o", str(weights)])
    else:
        weights = wrong_weights(tmp_path)
        data = weights.read_bytes()
        weights.write_bytes(data[: len(data) - 1000])
    out = tmp_path / "o.prototxt"
    code, err = cli(capsys, EXAMPLE, "-o", out, "--weights", weights, "--weights-out",
                    tmp_path / "w.caffemodel")
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and re.search(pattern, lines[0]), err
    assert not out.exists() and not (tmp_path / "w.caffemodel").exists()


def test_weights_out_needs_weights(tmp_path, capsys):
    code, err = cli(capsys, EXAMPLE, "-o", tmp_path / "o", "--weights-out", tmp_path / "w")
    assert code == 2 and "--weights-out needs --weights" in err


def _two_convolutions(tmp_path, bias_blob):
    """A network of two convolutions (4 outputs each) and a caffemodel whose
    second bias is the BlobProto `bias_blob`."""
    text = net(conv("a", "data", n=4), conv("b", "a", n=4), size=9)
    model = caffe_pb2.NetParameter()
    rng = np.random.default_rng(0)
    for name, shapes in expected_params(load_text(text, "x")).items():
        record = model.layer.add(name=name, type="Convolution")
        for shape in shapes:
            blob = record.blobs.add()
            blob.shape.dim.extend(shape)
            blob.data.extend(rng.standard_normal(int(np.prod(shape))).astype("f4"))
        if name == "b":
            record.blobs[1].CopyFrom(bias_blob)
    path = tmp_path / "w.caffemodel"
    path.write_bytes(model.SerializeToString())
    return load_text(text, "x"), path


@pytest.mark.parametrize("dims,legacy,fits", [
    ((4,), False, True), ((1, 1, 1, 4), True, True),     # Caffe's legacy 4-D form of (4,)
    ((1, 4), False, False), ((1, 1, 1, 4), False, False), ((4, 1, 1, 1), True, False),
    ((5,), False, False)])
def test_every_blob_of_a_layer_is_checked(tmp_path, dims, legacy, fits):
    """Caffe's Blob::ShapeEquals, blob by blob: the bias beside a right weight is
    checked as the weight is, in the forms Caffe accepts and no others."""
    from caffe_atrous.weights.check import check
    blob = caffe_pb2.BlobProto()
    if legacy:
        blob.num, blob.channels, blob.height, blob.width = dims
    else:
        blob.shape.dim.extend(dims)
    blob.data.extend([0.5] * int(np.prod(dims)))
    loaded, path = _two_convolutions(tmp_path, blob)
    with caffemodel.Weights(str(path)) as w:
        report = check(loaded, w)
    if fits:
        assert report.matched == ["a", "b"] and not report.mismatched
    else:
        assert report.matched == ["a"] and [n for n, _ in report.mismatched] == ["b"]
        assert report.mismatched[0][1].startswith("blob shape "), report.mismatched
