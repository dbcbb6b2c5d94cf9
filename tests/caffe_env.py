"""Where the real Caffe engines are, and how the tests run things in them.

Two engines: BVLC Caffe (locate/require) and PSPNet's Caffe (locate_pspnet/require_pspnet),
the only one that runs the published PSPNet files (their BN layer).

A build comes from CAFFE_ATROUS_CAFFE_ROOT, or CAFFE_ATROUS_PSPNET_ROOT (a user's own tree: a
fork, a GPU build), or else from the cache of `make caffe` (scripts/build-caffe.sh --print-root
[bvlc|psp]). Its Python is CAFFE_ATROUS_CAFFE_PYTHON, or CAFFE_ATROUS_PSPNET_PYTHON, else the
venv that `make caffe` made beside the build (Debian's python3 with its numpy 1.x, which
pycaffe is compiled against). Everything that touches Caffe runs in a subprocess: Caffe aborts
the whole process on a shape mismatch.
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
PSPNET_SKIP_REASON = "PSPNet Caffe tests skipped: run make caffe"
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


@dataclass(frozen=True)
class _Engine:
    name: str           # scripts/build-caffe.sh's name for it
    root_var: str       # the user's own tree
    python_var: str     # the user's own interpreter
    vendor: str         # where `make caffe` finds the source, beside the clone


BVLC = _Engine("bvlc", "CAFFE_ATROUS_CAFFE_ROOT", "CAFFE_ATROUS_CAFFE_PYTHON",
               "../shared/vendor/caffe")
PSPNET = _Engine("psp", "CAFFE_ATROUS_PSPNET_ROOT", "CAFFE_ATROUS_PSPNET_PYTHON",
                 "../shared/vendor/pspnet-caffe")


def _cache_root(engine: _Engine = BVLC) -> Path | None:
    script = ROOT / "scripts" / "build-caffe.sh"
    done = subprocess.run(["bash", str(script), "--print-root", engine.name],
                          capture_output=True, text=True)
    return Path(done.stdout.strip()) if done.returncode == 0 else None


def _locate(engine: _Engine) -> tuple[Caffe | None, str]:
    given = os.environ.get(engine.root_var)
    python = os.environ.get(engine.python_var)
    cache = _cache_root(engine)
    cache_python = cache / "venv" / "bin" / "python" if cache else None
    if given:
        tree = Path(given)
    elif cache is None:
        return None, f"the source ({engine.vendor}) is not beside the clone"
    elif not (cache / ".built").is_file():
        return None, f"no build at {cache}"
    else:
        tree = cache / "caffe"
    if not python:
        python = str(cache_python) if cache_python and cache_python.exists() else sys.executable
    if not (tree / "python" / "caffe" / "__init__.py").is_file():
        return None, f"{tree} has no python/caffe (is {engine.root_var} a built Caffe tree?)"
    return Caffe(tree, python), ""


def locate() -> tuple[Caffe | None, str]:
    """BVLC Caffe, or None and why not."""
    return _locate(BVLC)


def locate_pspnet() -> tuple[Caffe | None, str]:
    """PSPNet's Caffe, or None and why not."""
    return _locate(PSPNET)


def uses_make_caffe_python(caffe: Caffe) -> bool:
    """True when the interpreter is the venv of `make caffe` (Debian's numpy 1.x)."""
    cache = _cache_root()
    return cache is not None and Path(caffe.python) == cache / "venv" / "bin" / "python"


def _require(found: tuple[Caffe | None, str], what: str, skip_reason: str) -> Caffe:
    caffe, why = found
    if caffe is None:
        if in_ci():
            pytest.fail(f"{what} tests: the build is absent in CI ({why}); .ci/run runs "
                        "make caffe first")
        pytest.skip(f"{skip_reason} ({why})")
    return caffe


def require() -> Caffe:
    """The BVLC Caffe build; skipped where absent, a failure in CI."""
    return _require(locate(), "real-Caffe", SKIP_REASON)


def require_pspnet() -> Caffe:
    """The PSPNet Caffe build; skipped where absent, a failure in CI."""
    return _require(locate_pspnet(), "PSPNet Caffe", PSPNET_SKIP_REASON)


def check(done: subprocess.CompletedProcess, what: str) -> str:
    """stdout of a run that must have succeeded; else a message that names what died."""
    if done.returncode != 0:
        how = "aborted (signal)" if done.returncode < 0 else f"exit {done.returncode}"
        raise AssertionError(f"{what}: {how}\n--- stdout (tail)\n{done.stdout[-3000:]}\n"
                             f"--- stderr (tail)\n{done.stderr[-3000:]}")
    return done.stdout
