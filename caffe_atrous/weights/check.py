"""Weights for a network: check a caffemodel against it, write one for it, or
make random ones.

Every layer with parameters must find its blobs in the caffemodel by name,
with the shapes Caffe would allocate (analysis/params.py); Caffe itself aborts
on any mismatch, so this check says so first, by layer.
"""

from __future__ import annotations

from ..analysis.params import ParamShapes, has_params, param_shapes
from ..analysis.shapes import fmt_shape, infer_shapes
from ..pipeline.conversion import Result
from ..pipeline.loading import Loaded
from ..core.errors import AtrousError, UsageError
from ..core.files import same_file
from ..formats import caffemodel, netspec
from ..graph.kinds import BATCH_NORM, BIAS, CHANNEL, PSP_BN, SCALE, kind_of
from ..graph.reader import read_layers
from ..graph.records import LayerSpec


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


def _fits(stored: tuple[int, ...], expected: tuple[int, ...]) -> bool:
    """Caffe's rule: equal shapes, or a legacy 4-D blob equal to the expected
    shape padded with leading 1s."""
    if tuple(stored) == tuple(expected):
        return True
    return len(stored) == 4 and len(expected) <= 4 and \
        tuple(stored) == (1,) * (4 - len(expected)) + tuple(expected)


def check(loaded: Loaded, weights: caffemodel.Weights, input_shape=None,
          stored: dict[str, list[tuple[int, ...]]] | None = None) -> WeightsReport:
    """Does every layer find its blobs, with the shapes Caffe allocates? `stored`:
    the shapes to expect in the file instead, by layer (a classifier made a
    convolution is stored as the InnerProduct it was)."""
    expected = {**expected_params(loaded, input_shape), **(stored or {})}
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


def head_blobs(weights: caffemodel.Weights, heads: dict) -> dict[str, list[np.ndarray]]:
    """The blobs of every classifier made a convolution (rewrite/heads.Head):
    the InnerProduct's weight read as (N, C, kh, kw), same values in the same
    order (transposed first when it was stored transposed), decimated where the
    head says; the bias keeps the kept outputs."""
    stored = weights.by_name()
    out = {}
    for name, h in heads.items():
        blobs = [b.array() for b in stored[name].blobs]
        w = blobs[0].reshape(h.stored_shapes()[0])
        if h.transpose:
            w = w.T
        w = w.reshape(h.num_output0, h.channels0, *h.kernel0)
        w = w[::h.out_step, ::h.in_step, ::h.taps, ::h.taps]
        out[name] = [w] + [b.reshape(-1)[::h.out_step] for b in blobs[1:]]
    return out


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


def for_converted(result: Result, out_name: str, weights_path: str, weights_out: str | None,
                  input_shape=None) -> str:
    """Check that the caffemodel fits the converted network (and with `weights_out`,
    write the converted network's caffemodel); the summary line."""
    from ..formats.weights_out import write_converted
    converted = result.converted(out_name)
    heads = result.plan.heads()                 # classifiers made convolutions (--fc-to-conv)
    with caffemodel.Weights(weights_path) as w:
        report = check(converted, w, input_shape,
                       stored={n: h.stored_shapes() for n, h in heads.items()})
        raise_for(report, weights_path)
        if weights_out:
            if same_file(weights_path, weights_out):
                raise UsageError("--weights-out is the input caffemodel; choose another file")
            write_converted(converted.net, w, weights_out, replace=head_blobs(w, heads))
    return report.line()


def random_weights(loaded: Loaded, out_path: str, seed: int = 0, input_shape=None) -> ParamShapes:
    """Random weights for every layer with parameters: variance-scaled
    convolutions and inner products, BatchNorm statistics that keep activations
    finite, scales near 1. Returns the layers written, with their blob shapes.

    The file is what Caffe's net.save writes: a record for every layer (once
    per name), holding its whole definition and phase, with its blobs. Layers
    without parameters get their record too, as in Caffe's files: they cost a
    few bytes, and a converted caffemodel rewrites exactly these records (a
    pooling's stride) the way it would in a user's file."""
    import numpy as np                      # here: checking weights does not need it
    rng = np.random.default_rng(seed)
    expected = expected_params(loaded, input_shape)
    specs = read_layers(loaded.net)
    unknown = [s.name for s in specs if has_params(s) and s.name not in expected]
    if unknown:
        raise AtrousError("cannot size the parameters of this layer (its input size is unknown); "
                          "give --input-shape", layer=unknown[0])
    written: set[str] = set()
    with caffemodel.Writer(out_path, netspec.net_name(loaded.net)) as w:
        for layer, spec in zip(loaded.net.layer, specs):
            if spec.name in written:        # e.g. a TRAIN and a TEST data layer
                continue
            written.add(spec.name)
            shapes = expected.get(spec.name, [])
            blobs = [caffemodel.encode_blob(a) for a in _init(spec, shapes, rng)] if shapes else []
            # a net loaded for inference saves its layers with phase TEST; one
            # that runs only in training comes from the training net
            w.add_layer(layer, blobs, "TEST" if "TEST" in spec.phases else "TRAIN")
    return expected


def _init(spec: LayerSpec, shapes, rng) -> list[np.ndarray]:
    """Random values for one layer's parameter blobs."""
    import numpy as np
    kind = kind_of(spec.type)
    layout = kind.weights if kind is not None and spec.conv is None and spec.ip is None else None
    if layout == BATCH_NORM:                # mean, variance (> 0), scale factor 1
        c = shapes[0]
        return [rng.normal(0, 0.1, c).astype("f4"), rng.uniform(0.5, 1.5, c).astype("f4"),
                np.ones(shapes[2], "f4")]
    if layout == PSP_BN:                    # PSPNet: slope, bias, mean, variance
        c = shapes[0]
        return [rng.uniform(0.8, 1.2, c).astype("f4"), rng.normal(0, 0.1, c).astype("f4"),
                rng.normal(0, 0.1, c).astype("f4"), rng.uniform(0.5, 1.5, c).astype("f4")]
    if layout == CHANNEL and spec.type == "PReLU":      # negative slopes
        return [np.full(shapes[0], 0.25, "f4")]
    if layout in (SCALE, CHANNEL):          # factors near 1, then an optional bias
        return [rng.uniform(0.8, 1.2, shapes[0]).astype("f4")] + \
            [rng.normal(0, 0.1, s).astype("f4") for s in shapes[1:]]
    if layout == BIAS:
        return [rng.normal(0, 0.1, s).astype("f4") for s in shapes]
    weight = shapes[0]
    if spec.ip is not None:                 # (out, in), or (in, out) when transposed
        fan_in = weight[0] if spec.ip.transpose else weight[1]
    else:                                   # convolution: (out, in / group, kh, kw)
        fan_in = int(np.prod(weight[1:]))
    out = [rng.normal(0, np.sqrt(2.0 / max(fan_in, 1)), weight).astype("f4")]
    return out + [rng.normal(0, 0.05, s).astype("f4") for s in shapes[1:]]
