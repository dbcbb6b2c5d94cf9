"""The caffemodel reader and writer, on files made here (V2, V1, V0, legacy
shapes, doubles) and on broken ones."""

import numpy as np
import pytest

from caffe_atrous.errors import AtrousError
from caffe_atrous.formats import caffemodel
from caffe_atrous.formats.schema import builtin

caffe_pb2 = builtin()


def write(path, layers):
    with caffemodel.Writer(str(path), "net") as w:
        for name, type_, arrays in layers:
            w.add(name, type_, [caffemodel.encode_blob(a) for a in arrays])


def test_round_trip_keeps_names_types_shapes_and_values(tmp_path):
    rng = np.random.default_rng(1)
    conv = rng.standard_normal((4, 3, 3, 3)).astype("f4")
    bias = rng.standard_normal(4).astype("f4")
    write(tmp_path / "m.caffemodel", [("conv1", "Convolution", [conv, bias]),
                                      ("relu", "ReLU", [])])
    with caffemodel.Weights(str(tmp_path / "m.caffemodel")) as w:
        assert w.name == "net" and [l.name for l in w.layers] == ["conv1", "relu"]
        c = w.by_name()["conv1"]
        assert c.type == "Convolution" and [b.shape for b in c.blobs] == [(4, 3, 3, 3), (4,)]
        assert np.array_equal(c.blobs[0].array(), conv) and np.array_equal(c.blobs[1].array(), bias)


def test_written_file_is_a_valid_netparameter(tmp_path):
    write(tmp_path / "m.caffemodel", [("fc", "InnerProduct", [np.ones((2, 3), "f4")])])
    net = caffe_pb2.NetParameter()
    net.ParseFromString((tmp_path / "m.caffemodel").read_bytes())
    assert net.layer[0].name == "fc" and list(net.layer[0].blobs[0].shape.dim) == [2, 3]
    assert list(net.layer[0].blobs[0].data) == [1.0] * 6


def test_v1_v0_legacy_shapes_and_doubles(tmp_path):
    net = caffe_pb2.NetParameter(name="old")
    v1 = net.layers.add(name="conv1", type=caffe_pb2.V1LayerParameter.CONVOLUTION)
    blob = v1.blobs.add(num=2, channels=1, height=1, width=3)
    blob.data.extend([1, 2, 3, 4, 5, 6])
    v1.blobs.add(num=1, channels=1, height=1, width=2).double_data.extend([0.5, 0.25])
    v0 = net.layers.add()
    v0.layer.name = "fc_v0"
    v0.layer.type = "innerproduct"
    v0.layer.blobs.add(num=1, channels=1, height=2, width=2).data.extend([1, 1, 1, 1])
    (tmp_path / "old.caffemodel").write_bytes(net.SerializeToString())
    with caffemodel.Weights(str(tmp_path / "old.caffemodel")) as w:
        conv, fc = w.layers
        assert (conv.name, conv.type, conv.legacy) == ("conv1", "Convolution", True)
        assert conv.blobs[0].shape == (2, 1, 1, 3) and conv.blobs[0].array().sum() == 21
        assert conv.blobs[1].dtype == "<f8" and conv.blobs[1].array().ravel().tolist() == [0.5, 0.25]
        assert (fc.name, fc.type, fc.blobs[0].shape) == ("fc_v0", "innerproduct", (1, 1, 2, 2))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "text"])
def test_broken_files_give_a_clear_error(tmp_path, damage):
    path = tmp_path / "m.caffemodel"
    write(path, [("conv1", "Convolution", [np.ones((8, 3, 3, 3), "f4")])])
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": bytes(range(256)) * 4,
                      "empty": b"", "text": b'name: "a prototxt"\nlayer { name: "x" }\n'}[damage])
    with pytest.raises(AtrousError) as e:
        caffemodel.Weights(str(path))
    assert str(e.value).startswith(str(path) + ": ")
    assert any(w in str(e.value) for w in ("truncated or corrupt", "empty", "no layers"))


def test_fork_parameters_with_colliding_numbers_are_never_decoded(tmp_path):
    # field 143 is PSPNet's interp_param and BVLC's input_param; here it holds bytes that
    # are not a valid InputParameter. Field 152 (PSPNet bn_param) is unknown to BVLC.
    pieces = [caffemodel.encode_field(1, b"interp"), caffemodel.encode_field(2, b"Interp"),
              caffemodel.encode_field(143, b"\x18\x08\x20\x02"),
              caffemodel.encode_field(152, b"\x1d\x00\x00\x00\x3f")]
    with caffemodel.Writer(str(tmp_path / "f.caffemodel")) as w:
        w.add_record(pieces)
    with caffemodel.Weights(str(tmp_path / "f.caffemodel")) as w:
        (layer,) = w.layers
        assert (layer.name, layer.type, layer.blobs) == ("interp", "Interp", [])
        assert [bytes(raw) for _, _, raw in layer.fields()] == [bytes(p) for p in pieces]
