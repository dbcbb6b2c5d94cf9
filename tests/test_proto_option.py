"""`--proto FILE`: a user's own fork's caffe.proto, compiled at run time (grpcio-tools'
protoc) and cached by its sha256, used for reading and writing."""

import hashlib
import os
import subprocess
import sys

import pytest
from google.protobuf import text_format

from caffe_atrous.cli import main
from caffe_atrous.pipeline.conversion import convert_text
from caffe_atrous.formats import protoc
from caffe_atrous.rewrite.plan import Options

from conftest import EXAMPLE, ROOT, zoo_path, zoo_text
from test_forks import ENET, SEGNET

SSD = "ssd300-vgg16/deploy.prototxt"
PSPNET = "pspnet101-voc2012/pspnet101_VOC2012_473.prototxt"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Every test starts with an empty cache of its own."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder))
    return folder / "caffe-atrous" / "proto"


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("caffe_atrous: error: "), err
    return err[0]


@pytest.mark.parametrize("layout", [[], ["--canonical"]], ids=["layout", "canonical"])
def test_ssd_with_its_own_proto_gives_the_builtin_output(tmp_path, layout):
    ssd, proto = zoo_path(SSD), zoo_path("_proto/ssd-weiliu89.proto")
    own, ours = tmp_path / "own.prototxt", tmp_path / "ours.prototxt"
    assert main([str(ssd), "-o", str(own), "--output-stride", "8", "--proto", str(proto)] + layout) == 0
    assert main([str(ssd), "-o", str(ours), "--output-stride", "8"] + layout) == 0
    assert own.read_text() == ours.read_text()
    assert "dilation: 2" in own.read_text()


def test_pspnet_with_bvlc_proto_names_file_line_and_field(tmp_path, capsys):
    psp, proto = zoo_path(PSPNET), zoo_path("_proto/bvlc.proto")
    out = tmp_path / "o.prototxt"
    assert main([str(psp), "-o", str(out), "--proto", str(proto)]) == 1
    line = next(i for i, text in enumerate(psp.read_text().splitlines(), 1) if "bn_param" in text)
    error = one_line_error(capsys)
    assert f"{psp}:{line}:" in error and "unknown field 'bn_param' in LayerParameter" in error
    assert f"not in {proto}" in error and not out.exists()


def test_builtin_unknown_field_error_names_proto(tmp_path, capsys):
    bad = tmp_path / "bad.prototxt"
    bad.write_text('layer { name: "c" type: "Convolution" bottom: "x" top: "c"\n'
                   '  convolution_param { num_output: 1 kernal_size: 3 } }\n')
    assert main([str(bad)]) == 1
    error = one_line_error(capsys)
    assert f"{bad}:2:37: unknown field 'kernal_size' in ConvolutionParameter" in error
    assert "give your fork's caffe.proto with --proto FILE" in error


def test_errors_do_not_assume_the_package_is_caffe(tmp_path, capsys):
    proto = tmp_path / "mine.proto"
    proto.write_text(zoo_path("_proto/bvlc.proto").read_text().replace("package caffe;",
                                                                       "package mycaffe;"))
    bad = tmp_path / "bad.prototxt"
    bad.write_text('layer { name: "p" type: "Pooling" bottom: "x" top: "p"\n'
                   '  pooling_param { pool: MAXX kernel_size: 2 } }\n'
                   'layer { name: "c" type: "Convolution" bottom: "p" top: "c"\n'
                   '  convolution_param { kernal_size: 3 } }\n')
    assert main([str(bad), "--proto", str(proto)]) == 1
    assert "unknown value MAXX for PoolingParameter.PoolMethod" in one_line_error(capsys)
    bad.write_text(bad.read_text().replace("MAXX", "MAX"))
    assert main([str(bad), "--proto", str(proto)]) == 1
    assert f"{bad}:4:23: unknown field 'kernal_size' in ConvolutionParameter: it is not in " \
           f"{proto}" in one_line_error(capsys)


def test_compiled_once_then_cached_by_sha256(tmp_path, cache):
    """The second run finds the cache and does not start protoc: here a protoc that
    fails and leaves a mark stands in for the real one."""
    proto = tmp_path / "caffe.proto"
    proto.write_bytes(zoo_path("_proto/bvlc.proto").read_bytes())
    stub = tmp_path / "stub" / "grpc_tools"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("")
    mark = tmp_path / "protoc-ran"
    (stub / "protoc.py").write_text(f"open({str(mark)!r}, 'w').close()\n"
                                    "raise SystemExit('stub protoc: not the real one')\n")
    env = dict(os.environ, PYTHONPATH=f"{stub.parent}{os.pathsep}{ROOT}")

    def run():
        return subprocess.run([sys.executable, "-m", "caffe_atrous", str(EXAMPLE), "-o", "-",
                               "--proto", str(proto)], capture_output=True, text=True, env=env,
                              cwd=tmp_path)

    first = run()                                    # empty cache: the stub runs and fails
    assert first.returncode == 1 and mark.exists() and "stub protoc" in first.stderr
    mark.unlink()
    assert main([str(EXAMPLE), "-o", str(tmp_path / "a.prototxt"), "--proto", str(proto)]) == 0
    digest = hashlib.sha256(proto.read_bytes()).hexdigest()
    assert [p.name for p in cache.iterdir()] == [f"{digest}.desc"]
    second = run()
    assert second.returncode == 0, second.stderr
    assert not mark.exists()
    assert second.stdout == (tmp_path / "a.prototxt").read_text()
    assert [p.name for p in (ROOT / "caffe_atrous").rglob("*.desc")] == ["caffe.desc"]


def test_without_grpcio_tools_says_what_to_install(monkeypatch, capsys):
    real = protoc.importlib.util.find_spec
    monkeypatch.setattr(protoc.importlib.util, "find_spec",
                        lambda name, *a: None if name == "grpc_tools" else real(name, *a))
    assert main([str(EXAMPLE), "--proto", str(zoo_path("_proto/bvlc.proto"))]) == 2
    assert "pip install 'caffe-atrous[proto]'" in one_line_error(capsys)


def test_a_proto_that_does_not_compile_gives_protocs_message(tmp_path, capsys, cache):
    proto = tmp_path / "bad.proto"
    proto.write_text('syntax = "proto2";\npackage caffe;\nmessage NetParameter {\n'
                     '  optional strin name = 1;\n}\n')
    assert main([str(EXAMPLE), "--proto", str(proto)]) == 1
    error = one_line_error(capsys)
    assert error.startswith(f"caffe_atrous: error: {proto}:4:") and "does not compile" in error
    assert '"strin" is not defined' in error
    assert not cache.exists() or not list(cache.iterdir())


def test_a_proto_without_net_parameter_is_refused(tmp_path, capsys, cache):
    proto = tmp_path / "other.proto"
    proto.write_text('syntax = "proto2";\npackage other;\nmessage Thing { optional int32 x = 1; }\n')
    assert main([str(EXAMPLE), "--proto", str(proto)]) == 1
    assert f"{proto}: has no message NetParameter" in one_line_error(capsys)
    assert not cache.exists() or not list(cache.iterdir())


def test_a_missing_proto_is_a_usage_error(tmp_path, capsys):
    assert main([str(EXAMPLE), "--proto", str(tmp_path / "nope.proto")]) == 2
    assert "nope.proto: --proto: no such file" in one_line_error(capsys)


def test_preset_key_proto(tmp_path, capsys):
    preset = tmp_path / "fork.yaml"
    preset.write_text(f"proto: {zoo_path('_proto/bvlc.proto')}\noutput-stride: 8\n")
    out = tmp_path / "o.prototxt"
    assert main([str(zoo_path(PSPNET)), "-o", str(out), "--config", str(preset)]) == 1
    assert f"not in {zoo_path('_proto/bvlc.proto')} (--proto)" in one_line_error(capsys)
    assert main([str(EXAMPLE), "-o", str(out), "--config", str(preset)]) == 0
    assert "dilation: 2" in out.read_text()


def test_weights_init_and_rewrite_with_a_users_schema(tmp_path):
    """init-weights and --weights-out with --proto write what the built-in schema writes
    (BVLC's numbers are the same in both), and the user's schema decodes the result."""
    proto = str(zoo_path("_proto/bvlc.proto"))
    w_own, w_ours = tmp_path / "own.caffemodel", tmp_path / "ours.caffemodel"
    assert main(["init-weights", str(EXAMPLE), "-o", str(w_own), "--proto", proto]) == 0
    assert main(["init-weights", str(EXAMPLE), "-o", str(w_ours)]) == 0
    assert w_own.read_bytes() == w_ours.read_bytes()
    # a caffemodel as Caffe saves it: every layer's definition with its blobs
    schema = protoc.load(proto)
    full = schema.NetParameter()
    text_format.Parse(EXAMPLE.read_text(), full)
    blobs = {l.name: l.blobs for l in schema.NetParameter.FromString(w_own.read_bytes()).layer}
    for layer in full.layer:
        layer.blobs.extend(blobs.get(layer.name, []))
    trained = tmp_path / "trained.caffemodel"
    trained.write_bytes(full.SerializeToString())
    c_own, c_ours = tmp_path / "own_os8.caffemodel", tmp_path / "ours_os8.caffemodel"
    assert main([str(EXAMPLE), "-o", str(tmp_path / "a.prototxt"), "--weights", str(trained),
                 "--weights-out", str(c_own), "--proto", proto]) == 0
    assert main([str(EXAMPLE), "-o", str(tmp_path / "b.prototxt"), "--weights", str(trained),
                 "--weights-out", str(c_ours)]) == 0
    assert c_own.read_bytes() == c_ours.read_bytes()
    net = schema.NetParameter.FromString(c_own.read_bytes())
    dilated = {l.name for l in net.layer if list(l.convolution_param.dilation) == [2]}
    assert dilated == {"conv4_1_3x3", "conv4_2_3x3"}


def test_verify_takes_proto(tmp_path, capsys):
    if not os.environ.get("CI"):
        pytest.importorskip("cv2", reason="OpenCV is installed by `make test`")
    proto = str(zoo_path("_proto/bvlc.proto"))
    new, weights = tmp_path / "new.prototxt", tmp_path / "w.caffemodel"
    assert main(["init-weights", str(EXAMPLE), "-o", str(weights), "--proto", proto]) == 0
    assert main([str(EXAMPLE), "-o", str(new), "--exact", "--proto", proto]) == 0
    assert main(["verify", str(EXAMPLE), str(new), str(weights), "--engine", "opencv",
                 "--proto", proto]) == 0
    assert "PASS" in capsys.readouterr().out


@pytest.mark.parametrize("path,fork,opts", [
    ("deeplabv2-vgg16-aspp-l/test.prototxt", "deeplab-v2", {"output_stride": 4}),
    ("rfcn-resnet101-py/test_agnostic.prototxt", "caffe-rfcn-daijifeng001", {"output_stride": 8}),
    ("pspnet50-ade20k/pspnet50_ADE20K_473.prototxt", "pspnet-hszhao",
     {"output_stride": 4, "truncate_after": "conv5_3"}),
], ids=["deeplab-v2", "r-fcn", "pspnet"])
def test_each_fork_with_its_own_proto_gives_the_builtin_output(path, fork, opts):
    """These are already dilated; one step further converts fork layers' neighbours."""
    text = zoo_text(path)
    truncate = opts.pop("truncate_after", None)
    own = convert_text(text, path, Options(**opts), truncate, schema=protoc.load(
        str(zoo_path(f"_proto/{fork}.proto"))))
    ours = convert_text(text, path, Options(**opts), truncate)
    assert own.plan.changes and own.text == ours.text


@pytest.mark.parametrize("text,start", [(SEGNET, "conv3"), (ENET, "bottleneck1")],
                         ids=["segnet", "enet"])
def test_segnet_and_enet_nets_with_enets_proto_give_the_builtin_output(text, start):
    """The built-in union of their fields reads and writes as ENet's own schema does."""
    enet = protoc.load(str(zoo_path("_proto/enet-timosaemann.proto")))
    own = convert_text(text, "n.prototxt", Options(output_stride=None, from_layer=start),
                       schema=enet, layout=False)
    ours = convert_text(text, "n.prototxt", Options(output_stride=None, from_layer=start),
                        layout=False)
    assert own.plan.changes and own.text == ours.text


@pytest.mark.parametrize("fork,why", [
    ("deeplab-v1", "NetParameter has no field input_shape, layer: a schema of V1 `layers` only"),
    ("segnet-alexgkendall", "ConvolutionParameter has no field dilation: this fork's Caffe has "
                            "no dilated convolution"),
])
def test_schemas_that_cannot_hold_a_conversion_are_refused(fork, why, capsys):
    proto = zoo_path(f"_proto/{fork}.proto")
    assert main([str(EXAMPLE), "--proto", str(proto)]) == 1
    error = one_line_error(capsys)
    assert f"{proto}: {why}" in error and "convert without --proto" in error
