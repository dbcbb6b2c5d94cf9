"""The checkout as a user installs it: a clean copy, built by the standard front end, and a
fresh venv to install it in. Shared by tests/test_install.py and bench/cli_speed.py; each runs
the commands its own way."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

# What the build must not see: setuptools would take the file list of a stale
# caffe_atrous.egg-info/SOURCES.txt (from the editable install) over the project's settings.
LEFTOVERS = (".git", ".venv", "*.egg-info", "build", "dist", "__pycache__", ".pytest_cache", "demo")


def clean_copy(root: Path, dest: Path) -> Path:
    """`root` copied to `dest` without the editable install's leftovers."""
    shutil.copytree(root, dest, ignore=shutil.ignore_patterns(*LEFTOVERS))
    return dest


def build_command(source: Path, dist: Path, wheel_only: bool = False) -> list[str]:
    """`python -m build` into `dist`: the sdist and, from it alone, the wheel (or the wheel
    only). Without isolation the build uses this venv's pinned setuptools: no download."""
    return [sys.executable, "-m", "build", *(["--wheel"] if wheel_only else []), "--no-isolation",
            "--outdir", str(dist), str(source)]


def venv_command(venv: Path) -> list[str]:
    """A venv without a pip of its own (that saves seconds); `pip` installs into it."""
    return [sys.executable, "-m", "venv", "--without-pip", str(venv)]


def pip(venv: Path, *args) -> list[str]:
    """A pip command of this venv acting on the Python of `venv`."""
    return [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
            "--disable-pip-version-check", *map(str, args)]
