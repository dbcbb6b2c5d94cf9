"""The checked-in schema (caffe.desc) is what the pinned protoc makes of
proto/caffe.proto, and it lives in a pool of its own."""

import subprocess
import sys

from conftest import ROOT


def test_descriptor_set_is_fresh(tmp_path):
    out = tmp_path / "caffe.desc"
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT / 'proto'}",
                    f"--descriptor_set_out={out}", str(ROOT / "proto" / "caffe.proto")], check=True)
    current = (ROOT / "caffe_atrous" / "formats" / "caffe.desc").read_bytes()
    assert out.read_bytes() == current, "caffe.desc is stale: run `make proto` and commit the result"


def test_schema_stays_out_of_the_default_pool():
    """Another `caffe` package (pycaffe's caffe_pb2) can be registered beside ours."""
    code = (
        "from google.protobuf import descriptor_pool\n"
        "from caffe_atrous.pipeline.conversion import convert_text\n"
        "from caffe_atrous.formats.schema import builtin\n"
        "builtin().NetParameter()\n"
        "pool = descriptor_pool.Default()\n"
        "try:\n"
        "    pool.FindMessageTypeByName('caffe.NetParameter')\n"
        "    raise SystemExit('caffe.NetParameter is in the default pool')\n"
        "except KeyError:\n"
        "    pass\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


COEXIST = """
import sys
order = sys.argv[1]
if order == "caffe-first":
    import caffe_pb2
from caffe_atrous.pipeline.conversion import convert_text
if order == "atrous-first":
    import caffe_pb2
net = caffe_pb2.NetParameter()
from google.protobuf import text_format
text = open(sys.argv[2]).read()
text_format.Parse(text, net)                       # the user's schema keeps working
assert net.layer[0].type == "Input", net.layer[0].type
out = convert_text(text, "seed.prototxt").text
converted = caffe_pb2.NetParameter()
text_format.Parse(out, converted)                  # and reads what caffe_atrous writes
print(" ".join(l.name for l in converted.layer if list(l.convolution_param.dilation) == [2]))
"""


def test_a_users_caffe_pb2_and_caffe_atrous_share_a_process(tmp_path):
    """pycaffe's generated caffe_pb2 (here: BVLC's caffe.proto compiled the same way)
    registers package `caffe` in the default pool; both import orders must work."""
    from conftest import EXAMPLE, zoo_path
    proto = zoo_path("_proto/bvlc.proto")
    (tmp_path / "caffe.proto").write_bytes(proto.read_bytes())
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{tmp_path}",
                    f"--python_out={tmp_path}", str(tmp_path / "caffe.proto")], check=True)
    env = {**__import__("os").environ, "PYTHONPATH": f"{tmp_path}:{ROOT}"}
    for order in ("caffe-first", "atrous-first"):
        done = subprocess.run([sys.executable, "-c", COEXIST, order, str(EXAMPLE)], env=env,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["conv4_1_3x3", "conv4_2_3x3"], order


def test_upb_route_and_public_route_build_the_same_messages(monkeypatch):
    """Start-up takes upb's pool directly (schema.backend); protobuf's public
    pool must read and write the same bytes."""
    from caffe_atrous.pipeline.conversion import convert_text
    from caffe_atrous.formats import schema
    from conftest import EXAMPLE
    assert schema.backend() is not None and schema.backend()[0].__module__ == "google._upb._message"
    text = EXAMPLE.read_text()
    fast = convert_text(text, "seed.prototxt")
    data = (ROOT / "caffe_atrous" / "formats" / "caffe.desc").read_bytes()
    monkeypatch.setattr(schema, "backend", schema._public)
    public = schema.Schema(data, "public route")
    assert public.NetParameter is not schema.builtin().NetParameter     # two pools, two classes
    slow = convert_text(text, "seed.prototxt", schema=public)
    assert slow.text == fast.text
    assert slow.net.SerializeToString() == fast.net.SerializeToString()


def test_pure_python_protobuf_takes_the_public_route(tmp_path):
    """With PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python the command line still converts."""
    from conftest import EXAMPLE
    out = tmp_path / "os8.prototxt"
    env = {**__import__("os").environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
    code = ("from caffe_atrous.formats import schema; from caffe_atrous.cli import main; "
            "assert schema.backend()[0].__module__ == 'google.protobuf.descriptor_pool'; "
            f"raise SystemExit(main([{str(EXAMPLE)!r}, '-o', {str(out)!r}, '-q']))")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env)
    assert "dilation: 2" in out.read_text()
