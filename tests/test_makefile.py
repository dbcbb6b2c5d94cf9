"""The docs' pattern rule (docs/reports.md), run by make: build, no-op rebuild, rebuild after touch."""

import os
import shutil
import subprocess
import time
import sys

import pytest

from conftest import EXAMPLE, ROOT

def readme_rule() -> str:
    """The pattern rule exactly as the docs show it (its code block, unindented)."""
    text = (ROOT / "docs" / "reports.md").read_text()
    section = text[text.index("## In a Makefile"):]
    block = [l[4:] for l in section.splitlines()[1:] if l.startswith("    ")]
    rule = block[: next((i for i, l in enumerate(block[1:], 1) if not l.startswith("\t")),
                        len(block))]
    assert rule[0] == "%_os8.prototxt: %.prototxt" and "caffe_atrous" in rule[1]
    return "\n".join(rule) + "\n"


@pytest.fixture
def project(tmp_path):
    if shutil.which("make") is None:
        pytest.fail("make is needed: the project's own Makefile uses it")
    (tmp_path / "Makefile").write_text(readme_rule())
    shutil.copy(EXAMPLE, tmp_path / "net.prototxt")
    return tmp_path


def make(folder, target):
    # `python` in the rule is the one running the tests (the project's venv)
    env = dict(os.environ, PYTHONPATH=str(ROOT), LC_ALL="C",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    return subprocess.run(["make", "--no-print-directory", target], cwd=folder, env=env,
                          capture_output=True, text=True)


def test_pattern_rule(project):
    first = make(project, "net_os8.prototxt")
    assert first.returncode == 0, first.stderr
    out = project / "net_os8.prototxt"
    assert "dilation: 2" in out.read_text()
    stamp = out.stat().st_mtime_ns

    again = make(project, "net_os8.prototxt")
    assert again.returncode == 0 and "is up to date" in again.stdout
    assert out.stat().st_mtime_ns == stamp

    later = time.time() + 2
    os.utime(project / "net.prototxt", (later, later))
    rebuilt = make(project, "net_os8.prototxt")
    assert rebuilt.returncode == 0 and "caffe_atrous" in rebuilt.stdout
    assert out.stat().st_mtime_ns != stamp


def test_failed_conversion_leaves_no_target(project):
    (project / "bad.prototxt").write_text('layer { name: "a" type: "Convolution" bottom: "x" }\n')
    result = make(project, "bad_os8.prototxt")
    assert result.returncode != 0 and "caffe_atrous: error:" in result.stderr
    assert not (project / "bad_os8.prototxt").exists()
