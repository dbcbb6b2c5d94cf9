"""The table of layer kinds (graph/kinds.py) is the one place that classifies layer
types: every type the shipped schema names is in it or left unknown on purpose, and
the modules that ask about types agree with it."""

from caffe_atrous.analysis import grids, shapes
from caffe_atrous.formats.schema import builtin
from caffe_atrous.graph import kinds
from caffe_atrous.graph.reader import schema_layer_types
from caffe_atrous.pipeline.conversion import convert_text
from caffe_atrous.rewrite import heads
from caffe_atrous.rewrite.plan import Options


def test_every_type_of_the_built_in_schema_has_a_kind():
    types = schema_layer_types(builtin())
    assert {"Convolution", "Interp", "BN", "HingeLoss", "PriorBox", "Upsample"} <= types
    missing = sorted(t for t in types if t not in kinds.KINDS and t not in kinds.UNKNOWN_ON_PURPOSE)
    assert missing == []


def test_no_type_is_both_known_and_unknown_on_purpose():
    assert set(kinds.KINDS) & set(kinds.UNKNOWN_ON_PURPOSE) == set()


def test_the_modules_read_the_table():
    assert grids.SAME_GRID == kinds.types_where(grid=kinds.SAME)
    assert grids.NON_SPATIAL == kinds.types_where(grid=kinds.LEAVES)
    assert shapes.SCALAR_TOPS == kinds.types_where(shape=kinds.SCALAR) == heads.LOSSES
    assert "HingeLoss" in grids.NON_SPATIAL and "HingeLoss" in shapes.SCALAR_TOPS
    assert heads.ELEMENTWISE <= shapes.SAME_SHAPE | {"Split"}


HINGE = """
name: "hinge"
input: "data"
input_shape { dim: 1 dim: 3 dim: 64 dim: 64 }
input: "label"
input_shape { dim: 1 dim: 1 dim: 1 dim: 1 }
layer { name: "c1" type: "Convolution" bottom: "data" top: "c1"
  convolution_param { num_output: 8 kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "c2" type: "Convolution" bottom: "c1" top: "c2"
  convolution_param { num_output: 8 kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "c3" type: "Convolution" bottom: "c2" top: "c3"
  convolution_param { num_output: 8 kernel_size: 3 pad: 1 } }
layer { name: "loss" type: "HingeLoss" bottom: "c3" bottom: "label" top: "loss" }
"""


def test_a_hinge_loss_on_a_feature_map_converts_exactly():
    result = convert_text(HINGE, "hinge.prototxt", Options(output_stride=2, mode="exact"))
    changed = {c.layer.name for c in result.plan.ordered()}
    assert changed == {"c2", "c3"}
    assert "dilation: 2" in result.text
    assert not any("HingeLoss" in w.message for w in result.warnings)
