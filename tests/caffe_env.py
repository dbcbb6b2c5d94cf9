"""Where the real Caffe is, and how the tests run things in it.

The build comes from CAFFE_ATROUS_CAFFE_ROOT (a user's own Caffe tree: a fork, a GPU build)
or else from the cache of `make caffe` (scripts/build-caffe.sh --print-root). Its Python is
CAFFE_ATROUS_CAFFE_PYTHON, else the venv that `make caffe` made (Debian's python3 with its
numpy 1.x, which pycaffe is compiled against). Everything that touches Caffe runs in a
subprocess: Caffe aborts the whole process on a shape mismatch.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ROOT, in_ci

SKIP_REASON = "real-Caffe tests skipped: run make caffe"
WORKER = Path(__file__).resolve().parent / "caffe_worker.py"


@dataclass(frozen=True)
class Caffe:
    tree: Path          # the Caffe source tree: python/ and build/tools/
    python: str         # an interpreter that can `import caffe` from tree/python

    def tool(self, name: str) -> Path:
        return self.tree / "build" / "tools" / f"{name}.bin"

    def env(self) -> dict[str, str]:
        return dict(os.environ, PYTHONPATH=f"{self.tree / 'python'}{os.pathsep}{ROOT}",
                    GLOG_minloglevel="2")

    def run(self, *args, timeout=900) -> subprocess.CompletedProcess:
        """python ARGS in the Caffe environment (text output captured)."""
        return subprocess.run([self.python, *map(str, args)], env=self.env(), cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout)

    def worker(self, *args, timeout=900) -> subprocess.CompletedProcess:
        return self.run(WORKER, *args, timeout=timeout)


def _cache_root() -> Path | None:
    script = ROOT / "scripts" / "build-caffe.sh"
    done = subprocess.run(["bash", str(script), "--print-root"], capture_output=True, text=True)
    return Path(done.stdout.strip()) if done.returncode == 0 else None


def locate() -> tuple[Caffe | None, str]:
    """The Caffe to test against, or None and why not."""
    given = os.environ.get("CAFFE_ATROUS_CAFFE_ROOT")
    python = os.environ.get("CAFFE_ATROUS_CAFFE_PYTHON")
    cache = _cache_root()
    cache_python = cache / "venv" / "bin" / "python" if cache else None
    if given:
        tree = Path(given)
    elif cache is None:
        return None, "the Caffe source (../shared/vendor/caffe) is not beside the clone"
    elif not (cache / ".built").is_file():
        return None, f"no build at {cache}"
    else:
        tree = cache / "caffe"
    if not python:
        python = str(cache_python) if cache_python and cache_python.exists() else sys.executable
    if not (tree / "python" / "caffe" / "__init__.py").is_file():
        return None, f"{tree} has no python/caffe (is CAFFE_ATROUS_CAFFE_ROOT a built Caffe tree?)"
    return Caffe(tree, python), ""


def uses_make_caffe_python(caffe: Caffe) -> bool:
    """True when the interpreter is the venv of `make caffe` (Debian's numpy 1.x)."""
    cache = _cache_root()
    return cache is not None and Path(caffe.python) == cache / "venv" / "bin" / "python"


def require() -> Caffe:
    """The Caffe build; skipped where absent, a failure in CI."""
    caffe, why = locate()
    if caffe is None:
        if in_ci():
            pytest.fail(f"real-Caffe tests: the build is absent in CI ({why}); .ci/run runs "
                        "make caffe first")
        pytest.skip(f"{SKIP_REASON} ({why})")
    return caffe


def check(done: subprocess.CompletedProcess, what: str) -> str:
    """stdout of a run that must have succeeded; else a message that names what died."""
    if done.returncode != 0:
        how = "aborted (signal)" if done.returncode < 0 else f"exit {done.returncode}"
        raise AssertionError(f"{what}: {how}\n--- stdout (tail)\n{done.stdout[-3000:]}\n"
                             f"--- stderr (tail)\n{done.stderr[-3000:]}")
    return done.stdout
