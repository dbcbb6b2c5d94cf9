"""Benchmark: the command line converting Kaiming's ResNet-152 deploy prototxt,
against Caffe's own C++ `upgrade_net_proto_text` on the same file (the Caffe
build that `make caffe` leaves under ~/.cache/caffe-atrous/), or, where that
build is absent, against a bare `python -c 'import google.protobuf'`.

Both commands run alternately in fresh processes, so that they share the
machine's load; the result is the ratio of the medians, wall clock and CPU
time (user + system), measured in this one run. Run with `make bench`.
"""

from __future__ import annotations

import glob
import os
import resource
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


def caffe_tool() -> str | None:
    """upgrade_net_proto_text.bin of a `make caffe` build, if there is one."""
    found = sorted(glob.glob(str(CACHE / "*" / "caffe" / "build" / "tools" /
                                 "upgrade_net_proto_text.bin")))
    return found[-1] if found else None


def timed(argv: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run; the command must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> int:
    if not NET.is_file():
        print(f"bench: needs {NET} (../shared/zoo beside the repository)", file=sys.stderr)
        return 2
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)     # as installed: compiled modules are cached
    tool = caffe_tool()
    with tempfile.TemporaryDirectory(prefix="caffe_atrous_bench_") as tmp:
        ours = [sys.executable, "-m", "caffe_atrous", str(NET), "-o", os.path.join(tmp, "os8.prototxt"),
                "-q"]
        if tool:
            base = [tool, str(NET), os.path.join(tmp, "upgraded.prototxt")]
            base_name = "Caffe's upgrade_net_proto_text (C++)"
        else:
            base = [sys.executable, "-c", "import google.protobuf"]
            base_name = "python -c 'import google.protobuf' (no `make caffe` build found)"
        timed(ours, env)                              # writes the compiled modules once
        runs = {"base": [], "ours": []}
        for _ in range(RUNS):
            runs["base"].append(timed(base, env))
            runs["ours"].append(timed(ours, env))
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
           for k, v in runs.items()}
    lines = NET.read_text().count("\n")
    print(f"CLI speed: {NET.name} ({lines} lines) to output stride 8; median of {RUNS} runs "
          "each, alternating, each in a fresh process")
    print(f"{'':46}{'wall':>9}{'cpu':>9}")
    print(f"{base_name:46}{med['base'][0]:>8.3f}s{med['base'][1]:>8.3f}s")
    print(f"{'caffe_atrous':46}{med['ours'][0]:>8.3f}s{med['ours'][1]:>8.3f}s")
    wall = med["ours"][0] / med["base"][0]
    cpu = med["ours"][1] / max(med["base"][1], 1e-9)
    goal = f" (goal with the C++ tool: at most {GOAL:g}x)" if tool else ""
    print(f"ratio caffe_atrous / baseline: wall {wall:.2f}x, cpu {cpu:.2f}x{goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
