"""The caffemodel reader and writer: on files made here (V2, V1, V0, legacy
shapes, doubles), on files protobuf serialized with encodings our writer never
uses, and on broken ones."""

import os
import re
import stat

import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from caffe_atrous.core.atomic import atomic_file
from caffe_atrous.core.errors import AtrousError
from caffe_atrous.formats import caffemodel
from caffe_atrous.formats.schema import builtin
from caffe_atrous.formats.wire import encode_field, field_head, walk

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


def unpacked_schema():
    """NetParameter as a proto2 schema without [packed = true]: protobuf then
    writes every dim, float and double as a field of its own, as writers of
    old caffe.proto versions did. Field numbers are caffe.proto's."""
    F = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="unpacked.proto", package="unpacked",
                                               syntax="proto2")
    messages = {
        "BlobShape": [("dim", 1, F.TYPE_INT64, True, None)],
        "BlobProto": [("shape", 7, F.TYPE_MESSAGE, False, "BlobShape"),
                      ("data", 5, F.TYPE_FLOAT, True, None),
                      ("double_data", 8, F.TYPE_DOUBLE, True, None)]
                     + [(n, i, F.TYPE_INT32, False, None)
                        for i, n in enumerate(("num", "channels", "height", "width"), 1)],
        "LayerParameter": [("name", 1, F.TYPE_STRING, False, None),
                           ("type", 2, F.TYPE_STRING, False, None),
                           ("blobs", 7, F.TYPE_MESSAGE, True, "BlobProto")],
        "NetParameter": [("name", 1, F.TYPE_STRING, False, None),
                         ("layer", 100, F.TYPE_MESSAGE, True, "LayerParameter")],
    }
    for name, fields in messages.items():
        m = proto.message_type.add(name=name)
        for fname, number, kind, repeated, type_name in fields:
            f = m.field.add(name=fname, number=number, type=kind,
                            label=F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL)
            if type_name:
                f.type_name = f".unpacked.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("unpacked.NetParameter"))


def test_a_file_protobuf_wrote_unpacked(tmp_path):
    net = unpacked_schema()(name="proto")
    conv = net.layer.add(name="conv", type="Convolution")
    weight = conv.blobs.add()
    weight.shape.dim.extend([2, 3, 1, 2])
    weight.data.extend(range(12))
    conv.blobs.add(double_data=[0.5, -1.25]).shape.dim.append(2)
    fc = net.layer.add(name="fc", type="InnerProduct")
    fc.blobs.add(num=1, channels=1, height=2, width=3, data=[1, 2, 3, 4, 5, 6])
    data = net.SerializeToString()
    (tmp_path / "p.caffemodel").write_bytes(data)
    # the fixture is what it claims: one field per dim, per float, per double
    record = walk(data, 0, len(data))[1]
    blob = walk(data, record.data, record.stop)[2]
    kinds = sorted((f.number, f.wire) for f in walk(data, blob.data, blob.stop))
    assert kinds == [(5, 5)] * 12 + [(7, 2)]
    doubles = walk(data, record.data, record.stop)[3]
    assert sorted((f.number, f.wire) for f in walk(data, doubles.data, doubles.stop)) == \
        [(7, 2)] + [(8, 1)] * 2
    shape = next(f for f in walk(data, blob.data, blob.stop) if f.number == 7)
    assert [(f.number, f.wire) for f in walk(data, shape.data, shape.stop)] == [(1, 0)] * 4
    with caffemodel.Weights(str(tmp_path / "p.caffemodel")) as w:
        c, f = w.by_name()["conv"], w.by_name()["fc"]
        assert [b.shape for b in c.blobs] == [(2, 3, 1, 2), (2,)]
        assert c.blobs[0].array().ravel().tolist() == list(range(12))
        assert c.blobs[1].dtype == "<f8" and c.blobs[1].array().tolist() == [0.5, -1.25]
        assert f.blobs[0].shape == (1, 1, 2, 3) and f.blobs[0].array().sum() == 21


def test_legacy_dims_win_over_shape_as_in_caffe(tmp_path):
    net = caffe_pb2.NetParameter()
    blob = net.layer.add(name="fc", type="InnerProduct").blobs.add(num=1, channels=1, height=2,
                                                                     width=2, data=[1, 2, 3, 4])
    blob.shape.dim.extend([4])
    (tmp_path / "m.caffemodel").write_bytes(net.SerializeToString())
    with caffemodel.Weights(str(tmp_path / "m.caffemodel")) as w:
        assert w.layers[0].blobs[0].shape == (1, 1, 2, 2)


def layer_with_blob(blob_payload: bytes) -> bytes:
    return encode_field(100, encode_field(1, b"x") + encode_field(7, blob_payload))


DAMAGE = {
    "truncate": (None, r"truncated or corrupt caffemodel \(field 100 needs \d+ bytes, \d+ are "
                       r"left\); download or copy it again"),
    "garbage": (bytes(range(256)) * 4, r"corrupt caffemodel \(field number 0 at byte 0\)"),
    "empty": (b"", r": empty file, not a caffemodel$"),
    "text": (b'name: "a prototxt"\nlayer { name: "x" }\n',
             r"is a text file, not a binary caffemodel: give the \.caffemodel, not a \.prototxt"),
    "no layers": (encode_field(1, b"net"), r"holds no layers: is this a caffemodel\?"),
    "long number": (b"\xff" * 11, r"corrupt caffemodel \(a number is too long\)"),
    "wire type": (b"\x0f\x00", r"corrupt caffemodel \(unknown wire type 7 at byte 0\)"),
    "blob data overrun": (layer_with_blob(field_head(5, 100) + bytes(8)),
                          r"corrupt caffemodel \(field 5 needs 100 bytes, 8 are left\)"),
    "float past end": (layer_with_blob(b"\x2d\x00\x00"),
                       r"corrupt caffemodel \(a 4-byte value runs past the end\)"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_broken_files_each_give_their_own_error(tmp_path, damage):
    path = tmp_path / "m.caffemodel"
    write(path, [("conv1", "Convolution", [np.ones((8, 3, 3, 3), "f4")])])
    data, pattern = DAMAGE[damage]
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2] if data is None else data)
    with pytest.raises(AtrousError) as e:
        caffemodel.Weights(str(path))
    assert str(e.value).startswith(str(path) + ": ")
    assert re.search(pattern, str(e.value)), str(e.value)


def test_fork_parameters_with_colliding_numbers_are_never_decoded(tmp_path):
    # field 143 is PSPNet's interp_param and BVLC's input_param; here it holds bytes that
    # are not a valid InputParameter. Field 152 (PSPNet bn_param) is unknown to BVLC.
    pieces = [encode_field(1, b"interp"), encode_field(2, b"Interp"),
              encode_field(143, b"\x18\x08\x20\x02"), encode_field(152, b"\x1d\x00\x00\x00\x3f")]
    with caffemodel.Writer(str(tmp_path / "f.caffemodel")) as w:
        w.add_record(pieces)
    with caffemodel.Weights(str(tmp_path / "f.caffemodel")) as w:
        (layer,) = w.layers
        assert (layer.name, layer.type, layer.blobs) == ("interp", "Interp", [])
        assert [w.buffer[f.start:f.stop] for f in layer.fields] == pieces


def test_atomic_file_leaves_nothing_on_error_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.caffemodel"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_file(str(target)) as fh:
            fh.write(b"new, half written")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.caffemodel"]


def test_atomic_file_has_the_permissions_of_a_plain_open(tmp_path):
    umask = os.umask(0o022)
    try:
        with atomic_file(str(tmp_path / "a")) as fh:
            fh.write(b"x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o644
    assert (tmp_path / "a").read_bytes() == b"x" and os.listdir(tmp_path) == ["a"]
