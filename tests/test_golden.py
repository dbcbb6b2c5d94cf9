"""Golden cases: tests/golden/NAME/args (a command line, paths from the repository
root), expected.prototxt and expected.stderr. UPDATE_GOLDEN=1 rewrites them."""

import os
import shlex
from pathlib import Path

import pytest

from caffe_atrous.cli import main

from conftest import ROOT, in_ci

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "args").is_file())


@pytest.mark.parametrize("case", CASES)
def test_golden(case, tmp_path, capsys, monkeypatch):
    folder = GOLDEN / case
    monkeypatch.chdir(ROOT)
    out = tmp_path / "out.prototxt"
    code = main(shlex.split((folder / "args").read_text()) + ["-o", str(out)])
    stderr = capsys.readouterr().err.replace(str(out), "OUT")
    assert code == 0, stderr
    if os.environ.get("UPDATE_GOLDEN"):
        assert not in_ci(), "UPDATE_GOLDEN rewrites the expected files: never in CI"
        (folder / "expected.prototxt").write_text(out.read_text())
        (folder / "expected.stderr").write_text(stderr)
    assert out.read_text() == (folder / "expected.prototxt").read_text()
    assert stderr == (folder / "expected.stderr").read_text()
