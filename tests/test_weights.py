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


def wrong_weights(tmp_path, drop=None, reshape=None):
    """The seed example's random weights with one layer dropped or reshaped."""
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
            out.add(layer.name, layer.type, [caffemodel.encode_blob(a) for a in arrays])
    return bad


@pytest.mark.parametrize("case,pattern", [
    ("missing", r"1 layer\(s\) with parameters have no weights in it \(conv4_2_3x3\)"),
    ("shape", r"layer 'conv4_1_3x3': blob shape 16x3x3x3 stored, 16x16x3x3 expected"),
    ("other", r"no layer of the network has weights in it .* another network"),
    ("truncated", r"truncated or corrupt caffemodel"),
])
def test_bad_weights_are_clear_errors(tmp_path, capsys, case, pattern):
    if case == "missing":
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
