"""The tool as its users install it: built by the standard front end, installed with pip into a
fresh venv outside the repository, and run from a folder that holds no part of the repository.

The editable install that `make` uses keeps the code next to configs/ and proto/, so it cannot
show what a wheel leaves out. Here `python -m build` makes the sdist and, from the sdist alone,
the wheel; pip installs the wheel with the `verify` extra at the pinned versions (constraints.txt).
Building and installing take most of this module's time, so one session fixture does both once.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

from caffe_atrous import __version__

from conftest import EXAMPLE, ROOT
from wheels import build_command, clean_copy, pip, venv_command

PRESETS = sorted(p.name for p in (ROOT / "configs").glob("*.yaml"))


@dataclass(frozen=True)
class Installed:
    sdist: Path
    wheel: Path
    venv: Path
    work: Path                      # an empty folder outside the repository: the cwd of each run

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def script(self) -> Path:
        return self.venv / "bin" / "caffe-atrous"

    def run(self, *args) -> subprocess.CompletedProcess:
        """A command of the installed copy, from `work`, with nothing of the repository in reach."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env["PATH"] = str(self.venv / "bin") + os.pathsep + env.get("PATH", "")
        return subprocess.run([str(a) for a in args], cwd=self.work, env=env,
                              capture_output=True, text=True)


def checked(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"{' '.join(proc.args)}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Installed:
    source = clean_copy(ROOT, tmp_path_factory.mktemp("source") / "caffe-atrous")
    dist = tmp_path_factory.mktemp("dist")
    checked(subprocess.run(build_command(source, dist), capture_output=True, text=True))
    (sdist,), (wheel,) = dist.glob("*.tar.gz"), dist.glob("*.whl")
    venv = tmp_path_factory.mktemp("venv")
    checked(subprocess.run(venv_command(venv), capture_output=True, text=True))
    checked(subprocess.run(pip(venv, "install", "--quiet", "--no-compile",
                               "-c", ROOT / "constraints.txt", f"{wheel}[verify]"),
                           capture_output=True, text=True))
    work = tmp_path_factory.mktemp("work")
    for folder in (venv, work):
        assert not folder.resolve().is_relative_to(ROOT.resolve())
    return Installed(sdist, wheel, venv, work)


def test_wheel_and_sdist_carry_the_presets(installed):
    assert PRESETS, "configs/ holds no preset"
    names = zipfile.ZipFile(installed.wheel).namelist()
    assert [n for n in PRESETS if f"caffe_atrous/configs/{n}" not in names] == []
    with tarfile.open(installed.sdist) as sdist:
        top = sdist.getnames()[0].split("/")[0]
        members = set(sdist.getnames())
    assert [n for n in PRESETS if f"{top}/configs/{n}" not in members] == []
    assert f"{top}/proto/caffe.proto" in members and f"{top}/constraints.txt" in members
    assert f"{top}/scripts/report-deps.sh" in members          # `make test` runs it
    assert "caffe_atrous/reports/html/draw.py" in names


def test_pip_show_lists_the_presets(installed):
    files = checked(installed.run(*pip(installed.venv, "show", "-f", "caffe-atrous")))
    listed = {line.strip() for line in files.stdout.splitlines()}
    assert [n for n in PRESETS if f"caffe_atrous/configs/{n}" not in listed] == []
    assert any(line.endswith("bin/caffe-atrous") for line in listed)


def test_the_installed_package_is_the_one_that_runs(installed):
    where = checked(installed.run(installed.python, "-c",
                                  "import caffe_atrous, sys; print(caffe_atrous.__file__); "
                                  "print(*sys.path, sep='\\n')")).stdout.splitlines()
    assert Path(where[0]).is_relative_to(installed.venv)
    assert installed.script.read_text().splitlines()[0] == f"#!{installed.python}"
    assert not [p for p in where[1:] if p and Path(p).resolve().is_relative_to(ROOT.resolve())]


def test_version(installed):
    assert checked(installed.run(installed.script, "--version")).stdout.strip() == \
        f"caffe-atrous {__version__}"


def test_convert_with_a_bundled_preset(installed):
    shutil.copy(EXAMPLE, installed.work / "net.prototxt")
    proc = checked(installed.run(installed.script, "net.prototxt", "-o", "net_os8.prototxt",
                                 "--config", "deeplab-v2"))
    assert proc.stderr.strip().splitlines()[-1] == "converted 6 layers: output stride 32 -> 8"
    # the same bytes as the copy under test in this repository
    here = subprocess.run([sys.executable, "-m", "caffe_atrous", str(EXAMPLE), "-o", "-",
                           "--config", "deeplab-v2", "-q"], capture_output=True, text=True)
    assert (installed.work / "net_os8.prototxt").read_text() == checked(here).stdout


def test_the_python_api_from_the_installed_wheel(installed):
    shutil.copy(EXAMPLE, installed.work / "net.prototxt")
    code = ("import caffe_atrous as ca; r = ca.convert('net.prototxt', 16, warn=False); "
            "print(r.text)")
    out = checked(installed.run(installed.python, "-c", code)).stdout
    assert out == ca_text(16)
    site = next((installed.venv / "lib").glob("python*/site-packages"))
    assert (site / "caffe_atrous" / "py.typed").is_file()


def ca_text(stride: int) -> str:
    """What this checkout's API converts the example to (print adds a newline)."""
    import caffe_atrous as ca
    return ca.convert(EXAMPLE, stride, warn=False).text + "\n"


def test_init_weights_and_verify(installed):
    shutil.copy(EXAMPLE, installed.work / "seed.prototxt")
    run = installed.run
    checked(run(installed.script, "init-weights", "seed.prototxt", "-o", "seed.caffemodel"))
    checked(run(installed.script, "seed.prototxt", "-o", "seed_os8.prototxt",
                "--config", "exact-os8", "--weights", "seed.caffemodel"))
    proc = checked(run(installed.script, "verify", "seed.prototxt", "seed_os8.prototxt",
                       "seed.caffemodel", "--engine", "opencv"))
    assert "OpenCV" in proc.stdout + proc.stderr


def test_running_writes_nothing_into_the_installed_package(installed):
    site, = (installed.venv / "lib").glob("python3*/site-packages")
    record = site / f"caffe_atrous-{__version__}.dist-info" / "RECORD"
    recorded = {line.split(",")[0] for line in record.read_text().splitlines()}
    shutil.copy(EXAMPLE, installed.work / "again.prototxt")
    checked(installed.run(installed.script, "again.prototxt", "-o", "again_os16.prototxt",
                          "--config", "r-fcn", "--report"))
    present = {p.relative_to(site).as_posix() for p in (site / "caffe_atrous").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert present - recorded == set()


def test_readme_names_every_extra_a_user_installs():
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Install\n"):text.index("\n## ", text.index("## Install\n") + 1)]
    named = set(re.findall(r"^\| `([\w-]+)` \|", section, re.M))
    extras = set(metadata.metadata("caffe-atrous").get_all("Provides-Extra")) - {"test", "dev"}
    assert named == extras
