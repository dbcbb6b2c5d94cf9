"""A plain conversion's start-up: what the command line imports. Each module
listed here once cost a conversion several milliseconds of a ~0.13 s run
(`make bench` measures the whole); the report, verify, weights and preset code
load only when asked for."""

import os
import subprocess
import sys

from caffe_atrous.pipeline import invariants
from conftest import EXAMPLE, ROOT

NOT_AT_START = ("dataclasses", "inspect", "shutil", "fractions", "numpy", "yaml",
                "google.protobuf.text_format", "google.protobuf.descriptor_pool",
                "google.protobuf.descriptor_pb2", "caffe_atrous.reports.text", "caffe_atrous.verification.compare",
                "caffe_atrous.weights.check", "caffe_atrous.weights.converted",
                "caffe_atrous.weights.init", "caffe_atrous.pipeline.presets")


def _imported_by(argv: list[str]) -> set[str]:
    code = ("import sys\nfrom caffe_atrous.cli import main\n"
            f"code = main({argv!r})\n"
            "print(' '.join(sorted(sys.modules)))\nraise SystemExit(code)\n")
    # without the coverage measurement the test run starts in subprocesses (it imports
    # much of the standard library itself)
    # and without the tests' invariant check, which a user's conversion does not run
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("COVERAGE_") and k != invariants.ENV}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True)
    return set(out.stdout.split())


def test_a_conversion_loads_only_what_it_needs(tmp_path):
    modules = _imported_by([str(EXAMPLE), "-o", str(tmp_path / "out.prototxt"), "-q"])
    assert "caffe_atrous.rewrite.plan" in modules          # the probe does see the conversion
    assert (tmp_path / "out.prototxt").read_text().count("dilation") > 0
    assert sorted(m for m in NOT_AT_START if m in modules) == []


def test_the_help_text_wraps_to_columns(tmp_path):
    env = {"COLUMNS": "60", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "caffe_atrous", "--help"], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True).stdout
    usage = out.split("\n\n")[0].splitlines()
    assert len(usage) > 3 and max(len(line) for line in usage) <= 58
