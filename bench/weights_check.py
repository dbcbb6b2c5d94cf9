"""Benchmark: checking a ~230 MB caffemodel against a network, versus a plain
full protobuf parse of the same file. Time and peak memory, as ratios measured
in the same run. Then `--weights-out` on the same file, versus `cp` of it.
Run with `make bench`.

The caffemodel is ResNet-152's with random weights, written by init-weights
as Caffe's net.save writes a model: every layer's whole definition with its
blobs, so a conversion re-encodes only the records of the layers it changes.

Each measurement runs in a fresh process, so its peak resident memory
(ru_maxrss) is its own; the import-only process gives the baseline both share.
The processes run as an installed package does, with its compiled modules
cached (PYTHONDONTWRITEBYTECODE is dropped; a first untimed round fills the cache).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NET = ROOT.parent / "shared" / "zoo" / "resnet152-kaiming" / "ResNet-152-deploy.prototxt"
REPEATS = 3
WEIGHTS_OUT_REPEATS = 9
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

CHILD = r"""
import json, resource, sys, time
mode, net_path, weights_path = sys.argv[1:4]
from caffe_atrous.formats.schema import builtin
from caffe_atrous.formats.caffemodel import Weights
from caffe_atrous.pipeline.loading import load_text
from caffe_atrous.weights.check import check
import numpy
t = time.perf_counter()
if mode == "parse":
    with open(weights_path, "rb") as fh:
        net = builtin().NetParameter()
        net.ParseFromString(fh.read())
    n = len(net.layer)
elif mode == "check":
    loaded = load_text(open(net_path).read(), net_path)
    with Weights(weights_path) as w:
        report = check(loaded, w)
    n = len(report.matched)
    assert not report.missing and not report.mismatched
else:
    n = 0
seconds = time.perf_counter() - t
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_mb": peak_kb / 1024, "layers": n}))
"""


def measure(mode: str, weights: str) -> dict:
    runs = []
    for _ in range(REPEATS):
        out = subprocess.run([sys.executable, "-c", CHILD, mode, str(NET), weights],
                             capture_output=True, text=True, check=True, cwd=ROOT, env=ENV)
        runs.append(json.loads(out.stdout))
    return {"seconds": statistics.median(r["seconds"] for r in runs),
            "peak_mb": max(r["peak_mb"] for r in runs), "layers": runs[0]["layers"]}


def weights_out(weights: str, tmp: str) -> dict[str, float]:
    """Wall time of whole processes, medians over interleaved rounds (after an
    untimed one): `cp` of the caffemodel, the CLI converting the prototxt alone,
    and the CLI with --weights/--weights-out. Outputs go to new files, removed
    after each run."""
    out = os.path.join(tmp, "out.caffemodel")
    cli = [sys.executable, "-m", "caffe_atrous", str(NET), "-o", os.path.join(tmp, "o.prototxt"),
           "-q"]
    commands = {"cp": ["cp", weights, out], "convert": cli,
                "weights-out": cli + ["--weights", weights, "--weights-out", out]}
    times: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(WEIGHTS_OUT_REPEATS + 1):
        for label, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, check=True, cwd=ROOT, stderr=subprocess.DEVNULL, env=ENV)
            times[label].append(time.perf_counter() - start)
            if os.path.exists(out):
                os.unlink(out)
    return {k: statistics.median(v[1:]) for k, v in times.items()}


def print_weights_out(t: dict[str, float], size_mb: float) -> None:
    print(f"\n--weights-out on the same {size_mb:.0f} MB file, whole processes, median of "
          f"{WEIGHTS_OUT_REPEATS} interleaved runs:")
    for label, text in (("cp", "cp of the file (baseline)"), ("convert", "CLI, prototxt only"),
                        ("weights-out", "CLI with --weights/--weights-out")):
        print(f"{text:34}{t[label]:>9.3f}s")
    print(f"ratios over cp: --weights-out run {t['weights-out'] / t['cp']:.2f}x; what "
          f"--weights/--weights-out add to the conversion "
          f"{(t['weights-out'] - t['convert']) / t['cp']:.2f}x")


def main() -> int:
    if not NET.is_file():
        print(f"bench: needs {NET} (../shared/zoo beside the repository)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    from caffe_atrous.pipeline.loading import load_text
    from caffe_atrous.weights.init import random_weights

    with tempfile.TemporaryDirectory(prefix="caffe_atrous_bench_") as tmp:
        weights = os.path.join(tmp, "resnet152.caffemodel")
        random_weights(load_text(NET.read_text(), str(NET)), weights, seed=0)
        size_mb = os.path.getsize(weights) / 2**20
        base = measure("imports", weights)
        parse = measure("parse", weights)
        check = measure("check", weights)
        copy_times = weights_out(weights, tmp)
    print(f"caffemodel: ResNet-152 with random weights, as Caffe saves a model, {size_mb:.0f} MB; "
          f"median of {REPEATS} runs, each in a fresh process")
    print(f"{'':34}{'time':>10}{'peak memory':>14}{'over imports':>14}")
    for label, r in (("imports only (baseline)", base), ("full protobuf parse", parse),
                     ("caffe_atrous weights check", check)):
        print(f"{label:34}{r['seconds']:>9.3f}s{r['peak_mb']:>12.0f}MB"
              f"{r['peak_mb'] - base['peak_mb']:>12.0f}MB")
    extra_parse = parse["peak_mb"] - base["peak_mb"]
    extra_check = check["peak_mb"] - base["peak_mb"]
    print(f"ratios, check / full parse: time {check['seconds'] / parse['seconds']:.2f}x, "
          f"peak memory {check['peak_mb'] / parse['peak_mb']:.2f}x, memory over imports "
          f"{extra_check / max(extra_parse, 1e-9):.3f}x")
    print(f"memory over imports as a share of the file: full parse {extra_parse / size_mb:.2f}, "
          f"check {extra_check / size_mb:.3f}")
    print(f"layers checked: {check['layers']} (all match)")
    print_weights_out(copy_times, size_mb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
