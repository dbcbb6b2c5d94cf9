"""The caffemodel of a converted network: the stored one checked against it, and
written anew where the conversion changed layer definitions (an InnerProduct made a
convolution gets its weight reshaped). The written file is checked against the
converted network too, before it takes its name: what Caffe would refuse to load
is never written."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.errors import AtrousError, UsageError
from ..core.files import same_file
from ..formats import caffemodel
from ..pipeline.conversion import Result
from ..pipeline.loading import Loaded
from .check import WeightsReport, check, expected_params, raise_for

if TYPE_CHECKING:
    import numpy as np


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


def for_converted(result: Result, out_name: str, weights_path: str, weights_out: str | None,
                  input_shape=None) -> WeightsReport:
    """Check that the caffemodel fits the converted network (an AtrousError when it
    does not), and with `weights_out` write the converted network's caffemodel."""
    from ..formats.weights_out import write_converted
    converted = result.converted(out_name)
    heads = result.plan.heads()                 # classifiers made convolutions (--fc-to-conv)
    params = expected_params(converted, input_shape)
    with caffemodel.Weights(weights_path) as w:
        report = check(converted, w, input_shape, params=params,
                       stored={n: h.stored_shapes() for n, h in heads.items()})
        raise_for(report, weights_path)
        if weights_out:
            if same_file(weights_path, weights_out):
                raise UsageError("--weights-out is the input caffemodel; choose another file")
            write_converted(converted.net, w, weights_out, replace=head_blobs(w, heads),
                            check=lambda path: check_written(converted, path, params,
                                                             weights_out))
    return report


def check_written(converted: Loaded, path: str, params, name: str) -> None:
    """The caffemodel written for `converted` (at `path`, to be `name`) must fit it
    as the input fitted: every layer's blobs, in number and shape. It is made to,
    so a misfit is a bug of caffe_atrous, told as one, naming the layer."""
    with caffemodel.Weights(path) as w:
        report = check(converted, w, params=params)
    problems = report.mismatched + [(n, "no blobs written") for n in report.missing]
    if problems:
        layer, what = problems[0]
        raise AtrousError(f"internal check failed: the caffemodel written does not fit the "
                          f"converted network ({what}); please report this with the input files",
                          file=name, layer=layer)
