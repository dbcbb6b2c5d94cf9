"""Check a caffemodel against a network.

Every layer with parameters must find its blobs in the caffemodel by name,
with the shapes Caffe would allocate (analysis/params.py); Caffe itself aborts
on any mismatch, so this check says so first, by layer.
"""

from __future__ import annotations

from ..analysis.params import ParamShapes, param_shapes
from ..analysis.shapes import fmt_shape, infer_shapes
from ..core.errors import AtrousError
from ..formats import caffemodel, netspec
from ..pipeline.loading import Loaded


class WeightsReport:
    """Layers whose blobs match, are missing, or do not fit (layer, what);
    `unused`: layers with blobs in the file that the net does not have."""

    __slots__ = ("matched", "missing", "mismatched", "unused")

    def __init__(self) -> None:
        self.matched: list[str] = []
        self.missing: list[str] = []
        self.mismatched: list[tuple[str, str]] = []
        self.unused: list[str] = []

    def line(self) -> str:
        """The summary line: how many layers match, are missing and do not fit."""
        return (f"weights: {len(self.matched)} layers match, {len(self.missing)} missing, "
                f"{len(self.mismatched)} mismatched")


def expected_params(loaded: Loaded, input_shape=None) -> ParamShapes:
    """Parameter blob shapes of every layer, over all phases."""
    out: ParamShapes = {}
    for g in loaded.graphs(input_shape):
        out.update(param_shapes(g, infer_shapes(g, input_shape=input_shape)))
    return out


def _fits(stored: caffemodel.Blob, expected: tuple[int, ...]) -> bool:
    """Caffe's rule (Blob::ShapeEquals): a blob stored with the legacy 4-D dims
    equals the expected shape padded with leading 1s; one stored with `shape`
    equals it exactly (a bias stored as 1x1x1xN is refused)."""
    if stored.legacy:
        return len(expected) <= 4 and tuple(stored.shape) == (1,) * (4 - len(expected)) + \
            tuple(expected)
    return tuple(stored.shape) == tuple(expected)


def check(loaded: Loaded, weights: caffemodel.Weights, input_shape=None,
          stored: dict[str, list[tuple[int, ...]]] | None = None,
          params: ParamShapes | None = None) -> WeightsReport:
    """Does every layer find its blobs, with the shapes Caffe allocates? `stored`:
    the shapes to expect in the file instead, by layer (a classifier made a
    convolution is stored as the InnerProduct it was). `params`: the shapes to
    expect, when already known (expected_params, with `stored` applied)."""
    if params is None:
        params = expected_params(loaded, input_shape)
    expected = {**params, **(stored or {})}
    stored = weights.by_name()
    report = WeightsReport()
    for name, shapes in expected.items():
        layer = stored.get(name)
        if layer is None:
            report.missing.append(name)
            continue
        got = layer.blobs
        if len(got) != len(shapes):
            report.mismatched.append((name, f"{len(got)} blobs stored, {len(shapes)} expected"))
        else:
            bad = [(g.shape, e) for g, e in zip(got, shapes) if not _fits(g, e)]
            if bad:
                g, e = bad[0]
                report.mismatched.append((name, f"blob shape {fmt_shape(g)} stored, "
                                                f"{fmt_shape(e)} expected"))
            elif any(b.count != b.size for b in layer.blobs):
                report.mismatched.append((name, "blob data does not fill its shape"))
            else:
                report.matched.append(name)
    names = set(netspec.layer_names(loaded.net))
    report.unused = [l.name for l in weights.layers if l.blobs and l.name not in names]
    return report


def raise_for(report: WeightsReport, path: str) -> None:
    """Turn a failed check into one clear error."""
    if report.mismatched:
        name, what = report.mismatched[0]
        more = f" (and {len(report.mismatched) - 1} more)" if len(report.mismatched) > 1 else ""
        raise AtrousError(f"{what} in {path}{more}; Caffe would abort loading it: is this the "
                          "caffemodel of this network?", layer=name)
    if report.missing:
        few = ", ".join(report.missing[:3]) + (", ..." if len(report.missing) > 3 else "")
        if not report.matched:
            raise AtrousError(f"no layer of the network has weights in it (missing: {few}): it is "
                              "the caffemodel of another network", file=path)
        raise AtrousError(f"{len(report.missing)} layer(s) with parameters have no weights in it "
                          f"({few}); is it the caffemodel of this network?", file=path)
