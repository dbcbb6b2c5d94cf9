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
from .choices import aligned, choose_blob, choose_input, image_blob, size_fixed_by
from ..analysis import strides as st
from ..analysis.cost import receptive_fields
from ..analysis.shapes import fmt_shape, infer_shapes
from ..pipeline.loading import Loaded, load_text, read_text, truncate
from ..formats import netspec, prototxt
from ..core.errors import AtrousError, ConversionWarning, UsageError
from ..graph.graph import Graph
from ..rewrite.exactness import inexact_reason
from ..rewrite.heads import ELEMENTWISE

# What may follow a classifier head and still give (N, K) per position.
HEAD_FOLLOWERS = ELEMENTWISE | {"InnerProduct", "Softmax"}
from ..core.window import Pair, coarser_by, fmt_pair, is_denser


@dataclass
class Report:
    """The outcome of a verify run: the engine and input, the compared blob and its shapes,
    the sampling `factor`, the compared region (rows, columns) and border `band` left out,
    the errors against `tolerance`, and the inexact layers (`upstream`: before the blob)."""

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
        """Whether the largest relative error is finite and within `tolerance`."""
        return bool(np.isfinite(self.max_rel)) and self.max_rel <= self.tolerance

    def lines(self) -> list[str]:
        """The report as `verify: ...` lines for the terminal, the PASS or FAIL line last."""
        if is_denser(self.factor):
            shapes = (f"original {fmt_shape(self.orig_shape)}, converted "
                      f"{fmt_shape(self.new_shape)} sampled every {fmt_pair(self.factor)}")
        else:
            every = fmt_pair(coarser_by(self.factor))
            shapes = (f"original {fmt_shape(self.orig_shape)} sampled every {every}, converted "
                      f"{fmt_shape(self.new_shape)}")
        out = [f"verify: engine {self.engine}; input {fmt_shape(self.input_shape)}"
               f"{self.input_note}",
               f"verify: compared blob '{self.blob}': {shapes}; region "
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


def _top_factors(orig: Graph, new: Graph, s0, s1) -> tuple[dict[str, Pair | None], set[str]]:
    """Removed factor of every blob (by name, last writer), converted vs original,
    and the blobs of classifiers made convolutions (an (N, K) original output
    compared with position 0 of every m-th of (N, K, H, W)); s0, s1: the two
    graphs' cumulative strides."""
    out: dict[str, Pair | None] = {}
    for b0 in orig.inputs:
        out[b0.name] = (1, 1) if s0.get(b0) is not None else None
    heads: dict[str, Pair] = {}         # blobs of a classifier made a convolution
    for l0, l1 in zip(orig.layers, new.layers):
        b0 = orig.bottoms(l0)
        into = (out.get(b0[0].name) or heads.get(b0[0].name)) if b0 else None
        follows = l0.ip is not None and l1.conv is not None or \
            (b0 and b0[0].name in heads and l0.type in HEAD_FOLLOWERS)
        for t0, t1 in zip(orig.tops(l0), new.tops(l1)):
            out[t0.name] = st.removed_factor(s0.get(t0), s1.get(t1))
            heads.pop(t0.name, None)
            if follows and into is not None:
                out[t0.name] = heads[t0.name] = into
    return out, set(heads)


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


def _run_both(runner, nets: list[Loaded], weights: list[str], inputs: dict, blob: str,
              writer: str) -> list[np.ndarray]:
    with tempfile.TemporaryDirectory(prefix="caffe_atrous_verify_") as tmp:
        outs = []
        for i, loaded in enumerate(nets):
            path = os.path.join(tmp, f"net{i}.prototxt")
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(prototxt.to_text(loaded.net))
            try:
                out = runner.run(path, weights[i], inputs, {blob: writer})[blob]
            except AtrousError as exc:
                raise _engine_failure(exc, path, loaded, inputs) from None
            if out.ndim == 2:                  # a classifier's (N, K): one position
                out = out[:, :, None, None]
            if out.ndim != 4:
                raise UsageError(f"blob '{blob}' is not 4-D in the engine's output; choose another --blob")
            outs.append(out)
    return outs


def _engine_failure(exc: AtrousError, tmp_path: str, loaded: Loaded, inputs: dict
                    ) -> AtrousError:
    """The engine's error about the network it ran (a copy in a temporary folder),
    told of the user's own file, with the input shape it ran at."""
    message = exc.message.replace(tmp_path, loaded.path)
    shapes = ", ".join(f"'{k}' {fmt_shape(v.shape)}" for k, v in inputs.items())
    return AtrousError(f"{message} (running it with input {shapes}; does the engine support "
                       "every layer of it?)", file=loaded.path, layer=exc.layer,
                       exit_code=exc.exit_code)


def _check_weights(loaded: Loaded, weights_path: str, input_shape=None,
                   original: Loaded | None = None) -> None:
    """The caffemodel must be sound and fit the network, at the size it will run at,
    before an engine reads it: an engine may abort the whole process on a damaged
    file. `original`: the network `loaded` was converted from, to tell a classifier
    made a convolution that still has its InnerProduct weights."""
    from ..formats.caffemodel import Weights
    from ..weights.check import check, expected_params, raise_for
    with Weights(weights_path) as w:
        report = check(loaded, w, input_shape)
        heads = {l.name for l in original.specs() if l.ip is not None} if original else set()
        for name, _ in report.mismatched:
            layer = next((s for s in loaded.specs() if s.name == name), None)
            if name in heads and layer is not None and layer.conv is not None:
                stored = w.by_name()[name].blobs[0].shape
                need = expected_params(loaded, input_shape)[name][0]
                raise UsageError(f"{name}'s stored blob is {fmt_shape(stored)}; the converted "
                                 f"network needs {fmt_shape(need)}: give the converted "
                                 "caffemodel with --new-weights", file=weights_path, layer=name)
        raise_for(report, weights_path)


def _load_pair(orig_path: str, new_path: str, weights: list[str], schema) -> tuple[Loaded, Loaded]:
    """Both networks; ORIG cut where NEW ends when NEW was truncated. (Their weights are
    checked once, at the size they will run at, by verify.)"""
    for path in weights:
        if not os.path.isfile(path):
            raise UsageError("no such file", file=path)
    orig_l = load_text(read_text(orig_path), orig_path, schema)
    new_l = load_text(read_text(new_path), new_path, schema)
    orig_names, new_names = netspec.layer_names(orig_l.net), netspec.layer_names(new_l.net)
    if new_names and len(new_names) < len(orig_names) and orig_names[:len(new_names)] == new_names:
        orig_l = truncate(orig_l, new_names[-1])        # NEW was made with --truncate-after
    return orig_l, new_l


def _region(out0, sampled, blob: str, is_head: bool, aligned: bool, orig: Graph, strides0):
    """Rows and columns to compare, and the border band left out at unaligned sizes."""
    rows, cols = min(out0.shape[2], sampled.shape[2]), min(out0.shape[3], sampled.shape[3])
    band = 0
    if is_head:                      # the original classifier has one position: compare it
        rows, cols = min(rows, 1), min(cols, 1)
    elif not aligned:
        s = next((v for b, v in strides0.items() if b.name == blob and v is not None), (1, 1))
        rf = receptive_fields(orig, strides0)
        field = max((rf.get(id(b)) or 1 for b in orig.blobs if b.name == blob), default=1)
        band = math.ceil(field / max(int(s[0]), 1)) + 1
        rows, cols = max(rows - band, 0), max(cols - band, 0)
    if rows == 0 or cols == 0:
        raise UsageError(f"nothing left to compare in '{blob}' at this input size; give a larger "
                         "--input-shape (of the form 32k+1)")
    return rows, cols, band


def _sample(out0: np.ndarray, out1: np.ndarray, m: Pair) -> tuple[np.ndarray, np.ndarray]:
    """(reference, compared) on the same positions: the converted output sampled
    every m-th position where it is m times denser; the original's sampled every f-th
    where the conversion made it f times coarser (m = 1/f)."""
    if is_denser(m):
        return out0, out1[:, :, ::int(m[0]), ::int(m[1])]
    f = coarser_by(m)
    return out0[:, :, ::f[0], ::f[1]], out1


def _errors(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Largest absolute and relative difference."""
    with np.errstate(invalid="ignore", over="ignore"):   # a non-finite output fails the check
        max_abs = float(np.max(np.abs(a - b)))
    scale = float(np.max(np.abs(a)))
    return max_abs, (max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else math.inf))


def verify(orig_path: str, new_path: str, weights_path: str, blob: str | None = None,
           input_shape: tuple[int, ...] | None = None, engine: str = "auto", seed: int = 0,
           tolerance: float = 1e-4, new_weights: str | None = None, schema=None) -> Report:
    """Compare the converted network with the original in an engine; see Report.
    `new_weights`: the converted network's caffemodel (--weights-out), when its
    classifier became a convolution; by default both use `weights_path`.
    `schema`: a fork's schema (--proto) for both prototxt files."""
    new_weights = new_weights or weights_path
    orig_l, new_l = _load_pair(orig_path, new_path, [weights_path, new_weights], schema)
    orig, new = orig_l.graph(input_shape), new_l.graph(input_shape)
    strides0, strides1 = st.cumulative_strides(orig), st.cumulative_strides(new)
    findings = diagnose(orig, new, strides0, strides1)
    factors, head_blobs = _top_factors(orig, new, strides0, strides1)
    image = image_blob(orig, orig_path)
    # positions line up exactly where the input suits the original's output stride: a
    # denser conversion samples the original's grid, a coarser one is sampled from it
    total = int(max(st.network_output_stride(orig), 1))
    input_shape, note = choose_input(image, total, input_shape, size_fixed_by(orig))
    blob = choose_blob(orig, factors, blob)
    m = factors[blob]
    writer = next((l.name for l in reversed(orig.layers) if blob in l.tops), blob)
    # Both networks end at the compared blob: a classifier head sized for another
    # input (or made global) does not get in the way.
    if writer in netspec.layer_names(orig_l.net):
        orig_l, new_l = truncate(orig_l, writer), truncate(new_l, writer)
    for loaded, w in ((orig_l, weights_path), (new_l, new_weights)):
        infer_shapes(loaded.graph(input_shape), input_shape=input_shape)   # both must size
        _check_weights(loaded, w, input_shape, orig_l if loaded is new_l else None)
    x = np.random.default_rng(seed).standard_normal(input_shape).astype(np.float32)
    runner = runners.get(engine)
    out0, out1 = _run_both(runner, [orig_l, new_l], [weights_path, new_weights], {image.name: x},
                           blob, writer)
    if not np.isfinite(out0).all():
        raise AtrousError(f"the original network's '{blob}' is not finite (NaN or inf) with these "
                          "weights, so there is nothing to compare: does the caffemodel hold NaN or "
                          "inf values?", file=weights_path)
    shape0 = tuple(out0.shape)
    out0, sampled = _sample(out0, out1, m)
    fits = aligned(input_shape[2], total) and aligned(input_shape[3], total)
    rows, cols, band = _region(out0, sampled, blob, blob in head_blobs, fits, orig, strides0)
    max_abs, max_rel = _errors(out0[:, :, :rows, :cols].astype(np.float64),
                               sampled[:, :, :rows, :cols].astype(np.float64))
    compared_index = max((l.index for l in orig.layers if l.name == writer), default=-1)
    inexact = [(f, idx <= compared_index) for idx, f in findings]
    return Report(runner.version(), tuple(input_shape), note, blob, shape0,
                  tuple(out1.shape), m, (rows, cols), band, max_abs, max_rel, tolerance, inexact)
