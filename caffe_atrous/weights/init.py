"""Random weights for any network, written as Caffe's net.save writes a model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..analysis.params import ParamShapes, has_params
from ..core.errors import AtrousError
from ..formats import caffemodel, netspec
from ..graph.kinds import BATCH_NORM, BIAS, CHANNEL, PSP_BN, SCALE, kind_of
from ..graph.reader import read_layers
from ..graph.records import LayerSpec
from ..pipeline.loading import Loaded
from .check import expected_params

if TYPE_CHECKING:
    import numpy as np


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
