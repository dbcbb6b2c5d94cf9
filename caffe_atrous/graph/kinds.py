"""The table of layer kinds: what each Caffe layer type does to the grid, to blob
shapes and to weights. Every module that asks "what kind of layer is this?" reads
this table; none keeps a list of type names of its own.

    grid     SAME      keeps its (first) input's grid (activations, BN, Concat, Crop)
             LEAVES    its output is not a map on the image (InnerProduct, losses)
             WINDOW    a sliding window: stride x s (Convolution, Pooling)
             RESAMPLE  makes the grid finer or resizes it (Deconvolution, Interp, Upsample)
             SOURCE    brings data into the network (Data, Input)
    shape    SAME      its first top has its first bottom's shape
             SCALAR    every top is a scalar (losses, Accuracy)
             RULE      analysis/shapes.py has a rule for it (often from its record)
             UNKNOWN   caffe_atrous does not size its output
    weights  the layout of its parameter blobs (analysis/params.py sizes them,
             weights/init.py fills them); None: it has none, or its record says
             (Convolution, InnerProduct)
    per_position  computes each position from that position alone (ReLU, Dropout):
             a classifier head made a convolution stays a head through it

Fork types that use a known parameter message under a name of their own
(a "DepthwiseConvolution" with convolution_param) are known by their record, not
by this table. A type in neither is unknown: the planner assumes it keeps its
input's grid and says so (--assume-same-grid).
"""

from __future__ import annotations

from typing import NamedTuple

SAME, LEAVES, WINDOW, RESAMPLE, SOURCE = "same", "leaves", "window", "resample", "source"
SCALAR, RULE, UNKNOWN = "scalar", "rule", "unknown"

# Parameter blob layouts (see analysis/params.py).
BATCH_NORM = "batch_norm"       # mean (C), variance (C), moving-average factor (1)
PSP_BN = "psp_bn"               # PSPNet's BN: slope, bias, mean, variance, each (1, C, 1, 1)
SCALE = "scale"                 # factors over the axes scale_param names, then a bias
BIAS = "bias"                   # a bias over the axes bias_param names
CHANNEL = "channel"             # one value per channel, or one shared (PReLU, Normalize)


class Kind(NamedTuple):
    """What one layer type does; see the module docstring for the values."""

    grid: str
    shape: str = UNKNOWN
    weights: str | None = None
    per_position: bool = False


def _kinds(names: str, kind: Kind) -> dict[str, Kind]:
    return dict.fromkeys(names.split(), kind)


ELEMENTWISE = Kind(SAME, SAME, per_position=True)
LOSS = Kind(LEAVES, SCALAR)

KINDS: dict[str, Kind] = {
    # per-position activations and copies
    **_kinds("ReLU ELU Sigmoid TanH AbsVal BNLL Power Exp Log Threshold Clip Swish ReLU6 Mish "
             "Dropout GainChannel", ELEMENTWISE),
    "PReLU": Kind(SAME, SAME, CHANNEL, per_position=True),
    "Split": Kind(SAME, RULE, per_position=True),
    # normalisations over channels or the map: same grid and shape, not per position
    **_kinds("LRN MVN Softmax", Kind(SAME, SAME)),
    "BatchNorm": Kind(SAME, SAME, BATCH_NORM),
    "BN": Kind(SAME, SAME, PSP_BN),
    "Scale": Kind(SAME, SAME, SCALE),
    "Bias": Kind(SAME, SAME, BIAS),
    "Normalize": Kind(SAME, SAME, CHANNEL),
    # plumbing over channels or copies
    **_kinds("Concat Eltwise Slice Axpy Crop Silence", Kind(SAME, RULE)),
    # DeepLab's CRF, domain transform and channel biases refine maps on their own grid;
    # DeepLab v1's label-map layers keep the grid of the map they rewrite
    **_kinds("DenseCRF DomainTransform BiasChannel AdaptiveBiasChannel OneHot ChannelAggregator",
             Kind(SAME)),
    **_kinds("CensorLabel IgnoreOverlay", Kind(SAME, SAME)),
    # sliding windows and resamplers (their records carry the geometry)
    **_kinds("Convolution Pooling", Kind(WINDOW, RULE)),
    **_kinds("Deconvolution Interp Upsample", Kind(RESAMPLE, RULE)),
    # outputs that are not maps on the image
    **_kinds("InnerProduct Flatten Reshape Permute ROIPooling PSROIPooling", Kind(LEAVES, RULE)),
    **_kinds("PriorBox DetectionOutput DetectionEvaluate Python ArgMax Reduction Embed "
             "BoxAnnotatorOHEM MatWrite HDF5Output SPP RNN LSTM Parameter UniqueLabel "
             "MIL Histogram", Kind(LEAVES)),
    **_kinds("SoftmaxWithLoss Accuracy EuclideanLoss SigmoidCrossEntropyLoss HingeLoss "
             "InfogainLoss MultinomialLogisticLoss ContrastiveLoss SmoothL1Loss SmoothL1LossOHEM "
             "MultiBoxLoss SegAccuracy RelativeError", LOSS),
    # network inputs
    **_kinds("Data ImageData ImageSegData AnnotatedData DummyData HDF5Data MemoryData WindowData "
             "VideoData Input DenseImageData MILData MatRead", Kind(SOURCE, RULE)),
}

# Type names a schema suggests that caffe_atrous leaves unknown on purpose, and why.
UNKNOWN_ON_PURPOSE: dict[str, str] = {
    "Loss": "LossParameter is shared by the loss layers, not a layer type",
    "Transformation": "TransformationParameter belongs to data layers, not a layer type",
    "Recurrent": "RecurrentParameter is read by the RNN and LSTM layers, not a layer type",
    "Tile": "tiles along any axis: along a spatial one it changes the grid",
    "Im2col": "turns windows into channels: its output is not a map of the input's grid",
    "Padding": "DeepLab v1's padding shifts the grid by its pad",
    "DominantChannel": "DeepLab v1: its output layout depends on its parameters",
}

DATA_TYPES = frozenset(t for t, k in KINDS.items() if k.grid == SOURCE)


def kind_of(layer_type: str) -> Kind | None:
    """The Kind of a layer type, None when caffe_atrous does not know it."""
    return KINDS.get(layer_type)


def types_where(**want) -> frozenset[str]:
    """The layer types whose Kind has every given field value (`grid=SAME`)."""
    return frozenset(t for t, k in KINDS.items()
                     if all(getattr(k, f) == v for f, v in want.items()))
