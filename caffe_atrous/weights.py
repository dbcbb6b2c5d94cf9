"""Weights for a network: check a caffemodel against it, write one for it, or
make random ones.

Every layer with parameters must find its blobs in the caffemodel by name,
with the shapes Caffe would allocate (analysis/params.py); Caffe itself aborts
on any mismatch, so this check says so first, by layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .analysis.params import ParamShapes, param_shapes
from .analysis.shapes import fmt_shape, infer_shapes
from .convert import Loaded
from .errors import AtrousError
from .formats import caffemodel, netspec


@dataclass
class WeightsReport:
    matched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, str]] = field(default_factory=list)    # (layer, what)
    unused: list[str] = field(default_factory=list)                     # in the file, not the net

    def line(self) -> str:
        return (f"weights: {len(self.matched)} layers match, {len(self.missing)} missing, "
                f"{len(self.mismatched)} mismatched")


def expected_params(loaded: Loaded, input_shape=None) -> ParamShapes:
    """Parameter blob shapes of every layer, over all phases."""
    out: ParamShapes = {}
    for g in loaded.graphs():
        out.update(param_shapes(g, infer_shapes(g, input_shape=input_shape)))
    return out


def _fits(stored: tuple[int, ...], expected: tuple[int, ...]) -> bool:
    """Caffe's rule: equal shapes, or a legacy 4-D blob equal to the expected
    shape padded with leading 1s."""
    if tuple(stored) == tuple(expected):
        return True
    return len(stored) == 4 and len(expected) <= 4 and \
        tuple(stored) == (1,) * (4 - len(expected)) + tuple(expected)


def check(loaded: Loaded, weights: caffemodel.Weights, input_shape=None) -> WeightsReport:
    expected = expected_params(loaded, input_shape)
    stored = weights.by_name()
    report = WeightsReport()
    for name, shapes in expected.items():
        layer = stored.get(name)
        if layer is None:
            report.missing.append(name)
            continue
        got = [b.shape for b in layer.blobs]
        if len(got) != len(shapes):
            report.mismatched.append((name, f"{len(got)} blobs stored, {len(shapes)} expected"))
        else:
            bad = [(g, e) for g, e in zip(got, shapes) if not _fits(g, e)]
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


def random_weights(loaded: Loaded, out_path: str, seed: int = 0, input_shape=None) -> int:
    """Random weights for every layer with parameters: variance-scaled
    convolutions and inner products, BatchNorm statistics that keep activations
    finite, scales near 1. Returns the number of layers written."""
    import numpy as np                      # here: checking weights does not need it
    rng = np.random.default_rng(seed)
    expected = expected_params(loaded, input_shape)
    specs = {s.name: s for s in netspec.read_layers(loaded.net)}
    unknown = [s.name for s in specs.values() if _has_params(s) and s.name not in expected]
    if unknown:
        raise AtrousError("cannot size the parameters of this layer (its input size is unknown); "
                          "give --input-shape", layer=unknown[0])
    with caffemodel.Writer(out_path, netspec.net_name(loaded.net)) as w:
        for name, shapes in expected.items():
            spec = specs[name]
            w.add(name, spec.type, [caffemodel.encode_blob(a) for a in _init(spec, shapes, rng)])
    return len(expected)


def _has_params(spec: netspec.LayerSpec) -> bool:
    if spec.type in ("Scale", "Bias"):
        return len(spec.bottoms) == 1
    return spec.conv is not None or spec.ip is not None or \
        spec.type in ("BatchNorm", "BN", "PReLU", "Normalize")


def _init(spec: netspec.LayerSpec, shapes, rng) -> list[np.ndarray]:
    """Random values for one layer's parameter blobs."""
    import numpy as np
    t = spec.type
    if t == "BatchNorm":                    # mean, variance (> 0), scale factor 1
        c = shapes[0]
        return [rng.normal(0, 0.1, c).astype("f4"), rng.uniform(0.5, 1.5, c).astype("f4"),
                np.ones(shapes[2], "f4")]
    if t == "BN":                           # PSPNet: slope, bias, mean, variance
        c = shapes[0]
        return [rng.uniform(0.8, 1.2, c).astype("f4"), rng.normal(0, 0.1, c).astype("f4"),
                rng.normal(0, 0.1, c).astype("f4"), rng.uniform(0.5, 1.5, c).astype("f4")]
    if t == "PReLU":
        return [np.full(shapes[0], 0.25, "f4")]
    if t in ("Scale", "Normalize"):         # factors near 1, then an optional bias
        return [rng.uniform(0.8, 1.2, shapes[0]).astype("f4")] + \
            [rng.normal(0, 0.1, s).astype("f4") for s in shapes[1:]]
    if t == "Bias":
        return [rng.normal(0, 0.1, s).astype("f4") for s in shapes]
    weight = shapes[0]
    if spec.ip is not None:                 # (out, in), or (in, out) when transposed
        fan_in = weight[0] if spec.ip.transpose else weight[1]
    else:                                   # convolution: (out, in / group, kh, kw)
        fan_in = int(np.prod(weight[1:]))
    out = [rng.normal(0, np.sqrt(2.0 / max(fan_in, 1)), weight).astype("f4")]
    return out + [rng.normal(0, 0.05, s).astype("f4") for s in shapes[1:]]
