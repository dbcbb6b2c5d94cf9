"""Benchmark: the command line converting Kaiming's ResNet-152 deploy prototxt,
against Caffe's own C++ `upgrade_net_proto_text` on the same file (the Caffe
build that `make caffe` leaves under ~/.cache/caffe-atrous/), or, where that
build is absent, against a bare `python -c 'import google.protobuf'`.

caffe_atrous runs twice over: as users run it, from a wheel of this checkout
installed into a fresh virtual environment (its dependencies are this venv's,
by a path entry, so nothing is downloaded), and as developers run it here,
from the editable install of .venv, whose import hook setuptools adds to every
start of Python. The goal applies to the first.

The commands run in turn in fresh processes, so that they share the machine's
load; the result is the ratio of the medians, wall clock and CPU time (user +
system), measured in this one run. Run with `make bench`.
"""

from __future__ import annotations

import glob
import os
import resource
import site
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NET = ROOT.parent / "shared" / "zoo" / "resnet152-kaiming" / "ResNet-152-deploy.prototxt"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "caffe-atrous"
RUNS = int(os.environ.get("BENCH_RUNS", "9"))
GOAL = 4.0
sys.path.insert(0, str(ROOT / "tests"))

from wheels import build_command, clean_copy, pip, venv_command  # noqa: E402


def caffe_tool() -> str | None:
    """upgrade_net_proto_text.bin of a `make caffe` build, if there is one."""
    found = sorted(glob.glob(str(CACHE / "*" / "caffe" / "build" / "tools" /
                                 "upgrade_net_proto_text.bin")))
    return found[-1] if found else None


def installed_python(tmp: Path) -> str:
    """The Python of a fresh venv holding a wheel of this checkout."""
    dist, venv = tmp / "dist", tmp / "venv"
    source = clean_copy(ROOT, tmp / "source")
    quiet = {"check": True, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    subprocess.run(build_command(source, dist, wheel_only=True), **quiet)
    subprocess.run(venv_command(venv), **quiet)
    python = venv / "bin" / "python"
    (wheel,) = dist.glob("*.whl")
    subprocess.run(pip(venv, "install", "--quiet", "--no-deps", wheel), **quiet)
    packages = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                              check=True, capture_output=True, text=True).stdout.strip()
    # protobuf, numpy, yaml: this venv's copies, as a plain path entry (its .pth files,
    # the editable hook among them, are not read from there)
    Path(packages, "bench-deps.pth").write_text(site.getsitepackages()[0] + "\n")
    return str(python)


def timed(argv: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run; the command must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, env=env, cwd="/", stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(commands: dict[str, list[str]], env: dict) -> dict[str, tuple[float, float]]:
    """Median (wall, cpu) of each command over RUNS rounds, the commands in turn."""
    for argv in commands.values():
        timed(argv, env)                        # writes the compiled modules once
    runs: dict[str, list] = {k: [] for k in commands}
    for _ in range(RUNS):
        for label, argv in commands.items():
            runs[label].append(timed(argv, env))
    return {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
            for k, v in runs.items()}


def main() -> int:
    if not NET.is_file():
        print(f"bench: needs {NET} (../shared/zoo beside the repository)", file=sys.stderr)
        return 2
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)     # as installed: compiled modules are cached
    tool = caffe_tool()
    with tempfile.TemporaryDirectory(prefix="caffe_atrous_bench_") as tmp:
        args = [str(NET), "-o", os.path.join(tmp, "os8.prototxt"), "-q"]
        if tool:
            base = [tool, str(NET), os.path.join(tmp, "upgraded.prototxt")]
            base_name = "Caffe's upgrade_net_proto_text (C++)"
        else:
            base = [sys.executable, "-c", "import google.protobuf"]
            base_name = "python -c 'import google.protobuf' (no `make caffe` build found)"
        commands = {"base": base,
                    "installed": [installed_python(Path(tmp)), "-m", "caffe_atrous", *args],
                    "editable": [sys.executable, "-m", "caffe_atrous", *args]}
        med = measure(commands, env)
    lines = NET.read_text().count("\n")
    print(f"CLI speed: {NET.name} ({lines} lines) to output stride 8; median of {RUNS} runs "
          "each, in turn, each in a fresh process")
    print(f"{'':50}{'wall':>9}{'cpu':>9}{'wall ratio':>12}{'cpu ratio':>11}")
    names = {"base": base_name, "installed": "caffe_atrous, installed from a wheel",
             "editable": "caffe_atrous, editable install (.venv)"}
    for label, name in names.items():
        wall, cpu = med[label]
        ratios = "" if label == "base" else \
            f"{wall / med['base'][0]:>11.2f}x{cpu / max(med['base'][1], 1e-9):>10.2f}x"
        print(f"{name:50}{wall:>8.3f}s{cpu:>8.3f}s{ratios}")
    if tool:
        print(f"goal: the installed CLI at most {GOAL:g}x the C++ tool")
    return 0


if __name__ == "__main__":
    sys.exit(main())
