"""--weights-out on caffemodels as Caffe writes them (every layer's whole
definition with its blobs, V2 and V1), and the hook that changes a layer's
kind and its blob shapes."""

import errno
import fcntl
import os
import threading

import numpy as np
import pytest
from google.protobuf import text_format

from caffe_atrous.cli import main
from caffe_atrous.pipeline.loading import load_text
from caffe_atrous.core.errors import AtrousError
from caffe_atrous.formats import caffemodel, pieces, weights_out
from caffe_atrous.formats.schema import builtin
from caffe_atrous.formats.weights_out import write_converted
from caffe_atrous.formats.wire import encode_field
from caffe_atrous.weights.check import expected_params

from conftest import ROOT, conv, layer, net, pool

caffe_pb2 = builtin()
FORK_FIELD = encode_field(7777, b"fork")        # a field no schema here knows
V1_NET = ROOT / "tests" / "golden" / "v1_tiny_vgg" / "input.prototxt"
# Stride 2 -> 1 in p1 and c3; c2 dilated by 2, c3 and c4 by 4 (output stride 8 -> 2).
NET = net(conv("c1", "data", s=2), pool("p1", "c1", k=3, s=2, p=1), conv("c2", "p1"),
          conv("c3", "c2", s=2), conv("c4", "c3"), layer("r4", "ReLU", "c4", "c4"), size=33)


def caffe_saved(text: str, path, legacy_dims=False, fork_field=True) -> caffe_pb2.NetParameter:
    """The caffemodel Caffe's Net::ToProto (net.save) writes for a network:
    each layer's whole definition, parameters included, then its blobs (V1
    blobs with the 4-D legacy dims old Caffe wrote)."""
    model = caffe_pb2.NetParameter()
    text_format.Merge(text, model)
    shapes = expected_params(load_text(text, "x"))
    rng = np.random.default_rng(0)
    for record in list(model.layer) + list(model.layers):
        for shape in shapes.get(record.name, []):
            blob = record.blobs.add()
            if legacy_dims:
                blob.num, blob.channels, blob.height, blob.width = (1,) * (4 - len(shape)) + shape
            else:
                blob.shape.dim.extend(shape)
            blob.data.extend(rng.standard_normal(int(np.prod(shape))).astype("f4"))
        if fork_field:
            record.MergeFromString(FORK_FIELD)       # kept by protobuf as an unknown field
    path.write_bytes(model.SerializeToString())
    return model


def parse(path) -> dict:
    model = caffe_pb2.NetParameter()
    model.ParseFromString(path.read_bytes())
    assert not model.layers                          # always written as V2
    return {l.name: l for l in model.layer}


def converted_layers(path) -> dict:
    """The layers of the converted prototxt."""
    return {l.name: l for l in text_format.Merge(path.read_text(), caffe_pb2.NetParameter()).layer}


def records(path) -> dict:
    with caffemodel.Weights(str(path)) as w:
        return {l.name: (w.buffer[l.head:l.stop], [w.buffer[f.start:f.stop] for f in l.fields])
                for l in w.layers}


def run(tmp_path, net_path, weights, *options):
    out, model = tmp_path / "out.prototxt", tmp_path / "out.caffemodel"
    assert main([str(net_path), "-o", str(out), "--weights", str(weights),
                 "--weights-out", str(model), "-q", *options]) == 0
    return out, model


def test_v2_records_carry_the_converted_parameters_and_the_same_blobs(tmp_path):
    (tmp_path / "n.prototxt").write_text(NET)
    stored = caffe_saved(NET, tmp_path / "n.caffemodel")
    out, model = run(tmp_path, tmp_path / "n.prototxt", tmp_path / "n.caffemodel",
                     "--output-stride", "2")
    written, want, before = parse(model), converted_layers(out), {l.name: l for l in stored.layer}
    assert list(written) == ["data", "c1", "p1", "c2", "c3", "c4", "r4"]
    for name, record in written.items():
        assert record.type == want[name].type
        assert record.convolution_param == want[name].convolution_param, name
        assert record.pooling_param == want[name].pooling_param, name
        assert [b.SerializeToString() for b in record.blobs] == \
            [b.SerializeToString() for b in before[name].blobs]
    # hand-computed: the strides of p1 and c3 removed, c2 dilated by 2, c3 and c4 by 4
    assert before["p1"].pooling_param.stride == 2 and written["p1"].pooling_param.stride == 1
    assert list(before["c3"].convolution_param.stride) == [2]
    c2, c3, c4 = (written[n].convolution_param for n in ("c2", "c3", "c4"))
    assert (list(c2.dilation), list(c2.pad)) == ([2], [2])
    # a file that never writes `stride: 1` does not get one where a stride is removed
    assert (list(c3.stride), list(c3.dilation), list(c3.pad)) == ([], [4], [4])
    assert (list(c4.dilation), list(c4.pad)) == ([4], [4])
    # what the conversion does not touch is copied byte for byte, fork fields included
    old, new = records(tmp_path / "n.caffemodel"), records(model)
    assert all(FORK_FIELD in fields for _, fields in new.values())
    assert [n for n in new if new[n][0] == old[n][0]] == ["data", "c1", "r4"]


def test_converting_again_writes_the_same_file(tmp_path):
    (tmp_path / "n.prototxt").write_text(NET)
    caffe_saved(NET, tmp_path / "n.caffemodel")
    out, model = run(tmp_path, tmp_path / "n.prototxt", tmp_path / "n.caffemodel",
                     "--output-stride", "2")
    again = tmp_path / "again"
    again.mkdir()
    _, model2 = run(again, out, model, "--output-stride", "2")
    assert model2.read_bytes() == model.read_bytes()


def test_v1_caffemodel_becomes_v2_records_with_converted_parameters(tmp_path):
    stored = caffe_saved(V1_NET.read_text(), tmp_path / "v1.caffemodel", legacy_dims=True,
                         fork_field=False)
    out, model = run(tmp_path, V1_NET, tmp_path / "v1.caffemodel", "--output-stride", "2",
                     "--truncate-after", "pool3")
    written, want, before = parse(model), converted_layers(out), {l.name: l for l in stored.layers}
    assert list(written) == ["conv1", "relu1", "pool1", "conv2", "pool2", "conv3", "pool3"]
    for name, record in written.items():
        definition = type(record)()
        definition.CopyFrom(record)
        definition.ClearField("blobs")
        assert definition == want[name], name
        assert [b.SerializeToString() for b in record.blobs] == \
            [b.SerializeToString() for b in before[name].blobs]
    # hand-computed: pool2 and pool3 lose their stride, conv3 is dilated by 2, and conv2's
    # DeepLab v1 `hole` is written as the dilation it means
    assert before["conv2"].convolution_param.hole == 2 and before["pool2"].pooling_param.stride == 2
    p2, p3 = written["pool2"].pooling_param, written["pool3"].pooling_param
    assert (p2.kernel_size, p2.stride, p2.pad) == (p3.kernel_size, p3.stride, p3.pad) == (3, 1, 1)
    c2, c3 = written["conv2"].convolution_param, written["conv3"].convolution_param
    assert not c2.HasField("hole") and list(c2.dilation) == [2]
    assert (list(c3.dilation), list(c3.pad)) == ([2], [2])
    assert written["conv1"].blobs[0].num == 8               # legacy dims kept as stored


def hand_made_fc(path):
    """A V2 record of an InnerProduct with a 4x12 weight, as Caffe saves it."""
    model = caffe_pb2.NetParameter(name="fc-net")
    fc = model.layer.add(name="fc", type="InnerProduct", bottom=["x"], top=["fc"])
    fc.inner_product_param.num_output = 4
    weight = fc.blobs.add()
    weight.shape.dim.extend([4, 12])
    weight.data.extend(np.arange(48, dtype="f4"))
    fc.blobs.add(data=[1, 2, 3, 4]).shape.dim.append(4)
    fc.MergeFromString(FORK_FIELD)
    path.write_bytes(model.SerializeToString())
    return model


def as_convolution():
    net_ = caffe_pb2.NetParameter(name="fc-net")
    text_format.Merge('layer { name: "fc" type: "Convolution" bottom: "x" top: "fc" '
                      'convolution_param { num_output: 4 kernel_size: 2 } }', net_)
    return net_


def test_a_layer_can_change_kind_and_blob_shape_keeping_its_values(tmp_path):
    stored = hand_made_fc(tmp_path / "fc.caffemodel")
    with caffemodel.Weights(str(tmp_path / "fc.caffemodel")) as w:
        write_converted(as_convolution(), w, str(tmp_path / "conv.caffemodel"),
                        reshape={"fc": [(4, 3, 2, 2)]})
    fc = parse(tmp_path / "conv.caffemodel")["fc"]
    assert fc.type == "Convolution" and not fc.HasField("inner_product_param")
    assert fc.convolution_param.num_output == 4 and list(fc.convolution_param.kernel_size) == [2]
    assert (list(fc.bottom), list(fc.top)) == (["x"], ["fc"])
    assert list(fc.blobs[0].shape.dim) == [4, 3, 2, 2]
    assert fc.blobs[0].data == stored.layer[0].blobs[0].data
    assert fc.blobs[1].SerializeToString() == stored.layer[0].blobs[1].SerializeToString()
    assert FORK_FIELD in records(tmp_path / "conv.caffemodel")["fc"][1]


def test_a_legacy_blob_takes_a_new_shape_instead_of_its_dims(tmp_path):
    model = caffe_pb2.NetParameter()
    v1 = model.layers.add(name="fc", type=caffe_pb2.V1LayerParameter.INNER_PRODUCT)
    v1.blobs.add(num=1, channels=1, height=4, width=12, data=np.arange(48, dtype="f4"))
    (tmp_path / "v1.caffemodel").write_bytes(model.SerializeToString())
    with caffemodel.Weights(str(tmp_path / "v1.caffemodel")) as w:
        write_converted(as_convolution(), w, str(tmp_path / "conv.caffemodel"),
                        reshape={"fc": [(4, 3, 2, 2)]})
    blob = parse(tmp_path / "conv.caffemodel")["fc"].blobs[0]
    assert list(blob.shape.dim) == [4, 3, 2, 2] and not blob.HasField("num")
    assert blob.data == model.layers[0].blobs[0].data


@pytest.mark.parametrize("reshape,message", [
    ({"fc": [(4, 3, 3, 3)]}, r"layer 'fc': blob 0 holds 48 values, which cannot take the shape "
                             r"4x3x3x3"),
    ({"fc": [None, None, (1,)]}, r"layer 'fc': 3 blob shapes given for 2 stored blobs"),
])
def test_a_shape_that_does_not_fit_is_an_error_and_writes_nothing(tmp_path, reshape, message):
    hand_made_fc(tmp_path / "fc.caffemodel")
    with caffemodel.Weights(str(tmp_path / "fc.caffemodel")) as w:
        with pytest.raises(AtrousError, match=message):
            write_converted(as_convolution(), w, str(tmp_path / "conv.caffemodel"),
                            reshape=reshape)
    assert os.listdir(tmp_path) == ["fc.caffemodel"]


def test_a_name_in_two_phases_is_written_once(tmp_path):
    train = ('layer { name: "data" type: "Input" top: "data" include { phase: TRAIN } '
             'input_param { shape { dim: 1 dim: 3 dim: 9 dim: 9 } } }\n')
    test = train.replace("TRAIN", "TEST").replace("dim: 9", "dim: 5")
    caffe_saved(train + conv("c1", "data"), tmp_path / "m.caffemodel")      # Caffe saves TRAIN
    converted = text_format.Merge(train + test + conv("c1", "data"), caffe_pb2.NetParameter())
    with caffemodel.Weights(str(tmp_path / "m.caffemodel")) as w:
        assert write_converted(converted, w, str(tmp_path / "out.caffemodel")) == 2
    with caffemodel.Weights(str(tmp_path / "out.caffemodel")) as w:
        assert [l.name for l in w.layers] == ["data", "c1"]


def planned(tmp_path):
    """NET saved as Caffe saves it, the converted net (output stride 2), and
    the output file to write."""
    (tmp_path / "n.prototxt").write_text(NET)
    caffe_saved(NET, tmp_path / "n.caffemodel")
    out, _ = run(tmp_path, tmp_path / "n.prototxt", tmp_path / "n.caffemodel",
                 "--output-stride", "2")
    converted = text_format.Merge(out.read_text(), caffe_pb2.NetParameter())
    folder = tmp_path / "written"
    folder.mkdir()
    return tmp_path / "n.caffemodel", converted, folder / "out.caffemodel"


@pytest.mark.parametrize("size,ring", [(1, 1), (7, 2), (4099, 4), (1 << 20, 4)])
@pytest.mark.parametrize("preadv", [True, False])
def test_buffered_output_is_the_planned_bytes(tmp_path, monkeypatch, size, ring, preadv):
    """Buffers of any size, spans that cross them at offsets other than the input's,
    and the copy from the map where there is no preadv: the same bytes."""
    source, converted, out = planned(tmp_path)
    monkeypatch.setattr(pieces, "_BUFFER", size)
    monkeypatch.setattr(pieces, "_RING", ring)
    if not preadv:
        monkeypatch.delattr(os, "preadv")
    with caffemodel.Weights(str(source)) as w:
        plan, count = weights_out.plan_output(converted, w)
        data = bytes(w.buffer)
        assert write_converted(converted, w, str(out)) == count == 7
    expected, shifted = b"", []
    for p in plan:
        if isinstance(p, tuple):
            shifted.append(p[0] - len(expected))
        expected += p if isinstance(p, bytes) else data[p[0]:p[1]]
    assert out.read_bytes() == expected
    assert any(isinstance(p, bytes) for p in plan) and len(set(shifted)) > 2


def reader_alive() -> bool:
    return any(t.name == "caffe_atrous pieces reader" for t in threading.enumerate())


@pytest.mark.parametrize("failure,message", [
    ("error", r"n.caffemodel: cannot read: Input/output error"),
    ("shorter", r"n.caffemodel: the file got shorter while it was read; try again"),
])
def test_a_failing_read_leaves_no_file(tmp_path, monkeypatch, failure, message):
    source, converted, out = planned(tmp_path)
    monkeypatch.setattr(pieces, "_BUFFER", 64)
    real, calls = os.preadv, []

    def preadv(fd, buffers, offset):
        calls.append(offset)
        if len(calls) == 5:
            if failure == "shorter":
                return 0
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real(fd, buffers, offset)
    monkeypatch.setattr(os, "preadv", preadv)
    with caffemodel.Weights(str(source)) as w:
        with pytest.raises(AtrousError, match=message):
            write_converted(converted, w, str(out))
    assert len(calls) == 5 and os.listdir(out.parent) == [] and not reader_alive()


def test_a_failing_write_stops_the_reader_and_leaves_no_file(tmp_path, monkeypatch):
    source, converted, out = planned(tmp_path)
    monkeypatch.setattr(pieces, "_BUFFER", 64)
    monkeypatch.setattr(pieces, "_RING", 2)
    real, calls = pieces._write_all, []

    def write_all(fd, data):
        calls.append(len(data))
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, data)
    monkeypatch.setattr(pieces, "_write_all", write_all)
    with caffemodel.Weights(str(source)) as w:
        with pytest.raises(AtrousError, match=r"out.caffemodel: cannot write: No space left"):
            write_converted(converted, w, str(out))
    assert len(calls) == 3 and os.listdir(out.parent) == [] and not reader_alive()


@pytest.mark.parametrize("error", [None, errno.EOPNOTSUPP, errno.EBADF, errno.ENOSPC])
def test_blocks_are_reserved_where_the_file_system_can(tmp_path, monkeypatch, error):
    """The output's blocks are allocated first, with the file open for appending
    (so glibc does not write a byte per block where the file system cannot);
    not being able to is no error, a disk without the space is."""
    source, converted, out = planned(tmp_path)
    with caffemodel.Weights(str(source)) as w:
        expected = sum(pieces.size(p) for p in weights_out.plan_output(converted, w)[0])
    asked = []

    def fallocate(fd, offset, length):
        asked.append((offset, length, bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND)))
        if error:
            raise OSError(error, os.strerror(error))
    monkeypatch.setattr(os, "posix_fallocate", fallocate)
    with caffemodel.Weights(str(source)) as w:
        if error == errno.ENOSPC:
            with pytest.raises(AtrousError, match="cannot write: No space left on device"):
                write_converted(converted, w, str(out))
            assert os.listdir(out.parent) == []
        else:
            write_converted(converted, w, str(out))
            assert out.stat().st_size == expected
    assert asked == [(0, expected, True)]


def test_a_record_whose_definition_is_stored_twice_is_rewritten(tmp_path):
    """A record is copied as it is only when it holds each definition field once,
    with the converted bytes: here `type` is there twice, so it is written once."""
    path = tmp_path / "twice.caffemodel"
    fc = hand_made_fc(path).layer[0]
    fc.type = "Convolution"
    fc.ClearField("inner_product_param")
    fc.convolution_param.num_output = 4
    fc.convolution_param.kernel_size.append(2)
    record = fc.SerializeToString() + encode_field(2, b"Convolution")
    path.write_bytes(encode_field(100, record))
    with caffemodel.Weights(str(path)) as w:
        write_converted(as_convolution(), w, str(tmp_path / "out.caffemodel"))
    ((_, fields),) = records(tmp_path / "out.caffemodel").values()
    assert fields.count(encode_field(2, b"Convolution")) == 1
    assert parse(tmp_path / "out.caffemodel")["fc"].type == "Convolution"
