"""The checked-in caffe_pb2.py is what the pinned protoc makes of proto/caffe.proto."""

import subprocess
import sys

from conftest import ROOT


def test_generated_module_is_fresh(tmp_path):
    pytest_protoc = [sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT / 'proto'}",
                     f"--python_out={tmp_path}", str(ROOT / "proto" / "caffe.proto")]
    subprocess.run(pytest_protoc, check=True)
    fresh = (tmp_path / "caffe_pb2.py").read_bytes()
    current = (ROOT / "caffe_atrous" / "formats" / "caffe_pb2.py").read_bytes()
    assert fresh == current, "caffe_pb2.py is stale: run `make proto` and commit the result"
