"""Numerical proof: run the original and the converted network with the same
weights on the same random input, and compare.

With the exact rule the converted network's output at every m-th position
(m: the stride removed upstream of the compared blob) equals the original's.
The report also names, by layer, what makes a conversion inexact by
construction (the seed convention, poolings and global poolings over a denser
blob), so a failure is explained and a pass is not mistaken for more than it is.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field

import numpy as np

from . import runners
from .analysis import strides as st
from .analysis.cost import receptive_fields
from .analysis.shapes import fmt_shape, infer_shapes
from .convert import Loaded, load_text, read_text, truncate
from .formats import netspec, prototxt
from .formats.facts import Source
from .errors import AtrousError, ConversionWarning, UsageError
from .graph import Graph
from .rewrite.exactness import inexact_reason
from .window import Pair, fmt_pair


@dataclass
class Report:
    engine: str
    input_shape: tuple[int, ...]
    input_note: str
    blob: str
    orig_shape: tuple
    new_shape: tuple
    factor: Pair
    region: tuple[int, int]
    band: int
    max_abs: float
    max_rel: float
    tolerance: float
    inexact: list[tuple[ConversionWarning, bool]] = field(default_factory=list)  # (finding, upstream)

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.max_rel)) and self.max_rel <= self.tolerance

    def lines(self) -> list[str]:
        every = fmt_pair(self.factor)
        out = [f"verify: engine {self.engine}; input {fmt_shape(self.input_shape)}"
               f"{self.input_note}",
               f"verify: compared blob '{self.blob}': original {fmt_shape(self.orig_shape)}, "
               f"converted {fmt_shape(self.new_shape)} sampled every {every}; region "
               f"{self.region[0]}x{self.region[1]}"
               + (f" (a border band of {self.band} left out: the input size is not aligned)"
                  if self.band else ""),
               f"verify: max abs error {self.max_abs:.3g}, max relative error {self.max_rel:.3g} "
               f"(tolerance {self.tolerance:g})"]
        for finding, upstream in self.inexact:
            where = "before the compared blob" if upstream else "after the compared blob"
            out.append(f"verify: inexact by construction ({where}): {finding}")
        out.append("verify: " + ("PASS: the converted network computes the original's output at "
                                 "every sampled position" if self.ok else
                                 "FAIL: the converted network's output differs from the original's"))
        return out


def _top_factors(orig: Graph, new: Graph, s0, s1) -> dict[str, Pair | None]:
    """Removed factor of every blob (by name, last writer), converted vs original;
    s0, s1: the two graphs' cumulative strides."""
    out: dict[str, Pair | None] = {}
    for b0 in orig.inputs:
        out[b0.name] = (1, 1) if s0.get(b0) is not None else None
    for l0, l1 in zip(orig.layers, new.layers):
        for b0, b1 in zip(orig.tops(l0), new.tops(l1)):
            out[b0.name] = st.removed_factor(s0.get(b0), s1.get(b1))
    return out


def diagnose(orig: Graph, new: Graph, s0, s1) -> list[tuple[int, ConversionWarning]]:
    """What makes `new` differ from the exact conversion of `orig`, by layer
    (exactness.py decides); s0, s1: the two graphs' cumulative strides."""
    if [l.name for l in orig.layers] != [l.name for l in new.layers]:
        raise AtrousError("the two networks do not have the same layers in the same order; "
                          "is NEW a conversion of ORIG?")
    found = []
    for l0, l1 in zip(orig.layers, new.layers):
        b0, b1 = orig.bottoms(l0), new.bottoms(l1)
        m = st.removed_factor(s0.get(b0[0]), s1.get(b1[0])) if b0 and b1 else None
        why = inexact_reason(l0, l1.window, l1.is_global_pool, m)
        if why:
            found.append((l0.index, ConversionWarning(l0.name, why)))
    return found


def _aligned(size: int, stride: int) -> bool:
    return (size - 1) % stride == 0


def _declared_shape(image) -> tuple | None:
    if image.producer is None:
        return image.shape
    source = image.producer.params
    index = list(image.producer.tops).index(image.name)
    return source.shape(index) if isinstance(source, Source) else None


def _choose_input(image, total: int, input_shape) -> tuple[tuple[int, ...], str]:
    """The given input shape, or the declared one moved to the nearest total*k+1."""
    if input_shape is not None:
        return tuple(input_shape), ""
    declared = _declared_shape(image)
    if declared is None or len(declared) != 4 or None in declared:
        raise UsageError("the network does not declare its input size; give --input-shape")
    _, c, h, w = declared
    h2 = total * max(1, round((h - 1) / total)) + 1
    w2 = total * max(1, round((w - 1) / total)) + 1
    note = "" if (h2, w2) == (h, w) else (
        f" (the declared {h}x{w} moved to {h2}x{w2} = {total}k+1, where Caffe's rounding agrees "
        "at every stride)")
    return (1, c, h2, w2), note


def _choose_blob(orig: Graph, factors: dict, blob: str | None) -> str:
    """The blob asked for, or the last one both networks keep a spatial layout for."""
    names = {b.name for b in orig.blobs}
    if blob is None:
        candidates = [b.name for b in reversed(orig.blobs) if factors.get(b.name) is not None]
        if not candidates:
            raise UsageError("no blob keeps a spatial layout in both networks; name one with --blob")
        return candidates[0]
    if blob not in names:
        raise UsageError(f"--blob {blob}: the original network has no such blob")
    if factors.get(blob) is None:
        raise UsageError(f"--blob {blob}: this blob has no spatial layout in both networks "
                         "(it follows a global pooling or a classifier); choose an earlier one")
    return blob


def _run_both(runner, nets: list[Loaded], weights_path: str, inputs: dict, blob: str,
              writer: str) -> list[np.ndarray]:
    with tempfile.TemporaryDirectory(prefix="caffe_atrous_verify_") as tmp:
        outs = []
        for i, loaded in enumerate(nets):
            path = os.path.join(tmp, f"net{i}.prototxt")
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(prototxt.to_text(loaded.net))
            out = runner.run(path, weights_path, inputs, {blob: writer})[blob]
            if out.ndim != 4:
                raise UsageError(f"blob '{blob}' is not 4-D in the engine's output; choose another --blob")
            outs.append(out)
    return outs


def verify(orig_path: str, new_path: str, weights_path: str, blob: str | None = None,
           input_shape: tuple[int, ...] | None = None, engine: str = "auto", seed: int = 0,
           tolerance: float = 1e-4, schema=None) -> Report:
    """Compare the converted network with the original in an engine; see Report.
    `schema`: a fork's schema (--proto) for both prototxt files."""
    if not os.path.isfile(weights_path):
        raise UsageError("no such file", file=weights_path)
    orig_l = load_text(read_text(orig_path), orig_path, schema)
    new_l = load_text(read_text(new_path), new_path, schema)
    orig_names, new_names = netspec.layer_names(orig_l.net), netspec.layer_names(new_l.net)
    if new_names and len(new_names) < len(orig_names) and orig_names[:len(new_names)] == new_names:
        orig_l = truncate(orig_l, new_names[-1])        # NEW was made with --truncate-after
    orig, new = orig_l.graph(), new_l.graph()
    strides0, strides1 = st.cumulative_strides(orig), st.cumulative_strides(new)
    findings = diagnose(orig, new, strides0, strides1)
    factors = _top_factors(orig, new, strides0, strides1)

    images = [b for b in orig.inputs if b.producer is None or b.producer.type == "Input"]
    if len(images) != 1:
        raise UsageError("verify needs a network with one input blob (an `input` or Input layer); "
                         "found " + (", ".join(b.name for b in images) or "none"), file=orig_path)
    image = images[0]
    total = int(max(st.output_stride(strides0), 1))
    input_shape, note = _choose_input(image, total, input_shape)
    blob = _choose_blob(orig, factors, blob)
    m = factors[blob]
    writer = next((l.name for l in reversed(orig.layers) if blob in l.tops), blob)

    # Both networks end at the compared blob: a classifier head sized for another
    # input (or made global) does not get in the way.
    if writer in netspec.layer_names(orig_l.net):
        orig_l, new_l = truncate(orig_l, writer), truncate(new_l, writer)
    for loaded in (orig_l, new_l):
        infer_shapes(loaded.graph(), input_shape=input_shape)   # both must size

    x = np.random.default_rng(seed).standard_normal(input_shape).astype(np.float32)
    runner = runners.get(engine)
    out0, out1 = _run_both(runner, [orig_l, new_l], weights_path, {image.name: x}, blob, writer)

    sampled = out1[:, :, ::m[0], ::m[1]]
    rows, cols = min(out0.shape[2], sampled.shape[2]), min(out0.shape[3], sampled.shape[3])
    band = 0
    if not (_aligned(input_shape[2], total) and _aligned(input_shape[3], total)):
        s = next((v for b, v in strides0.items() if b.name == blob and v is not None), (1, 1))
        rf = receptive_fields(orig, strides0)
        field = max((rf.get(id(b)) or 1 for b in orig.blobs if b.name == blob), default=1)
        band = math.ceil(field / max(int(s[0]), 1)) + 1
        rows, cols = max(rows - band, 0), max(cols - band, 0)
    if rows == 0 or cols == 0:
        raise UsageError(f"nothing left to compare in '{blob}' at this input size; give a larger "
                         "--input-shape (of the form 32k+1)")
    a = out0[:, :, :rows, :cols].astype(np.float64)
    b = sampled[:, :, :rows, :cols].astype(np.float64)
    max_abs = float(np.max(np.abs(a - b)))
    scale = float(np.max(np.abs(a)))
    max_rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else math.inf)
    compared_index = max((l.index for l in orig.layers if l.name == writer), default=-1)
    inexact = [(f, idx <= compared_index) for idx, f in findings]
    return Report(runner.version(), tuple(input_shape), note, blob, tuple(out0.shape),
                  tuple(out1.shape), m, (rows, cols), band, max_abs, max_rel, tolerance, inexact)
