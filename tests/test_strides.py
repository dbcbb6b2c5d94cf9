"""Cumulative strides, which strides get removed, and reachable output strides."""

from fractions import Fraction

import pytest

from caffe_atrous.analysis import strides as st
from caffe_atrous.pipeline.loading import load_text
from caffe_atrous.core.errors import AtrousError

from conftest import conv, layer, net, pool, convert


def graph(text):
    (g,) = load_text(text, "t").graphs()
    return g


CHAIN = net(conv("c1", "data", s=2), pool("p1", "c1"), conv("c2", "p1", s=2),
            conv("c3", "c2", s=2), conv("c4", "c3"), conv("c5", "c4", s=2))


def test_cumulative_strides_multiply():
    g = graph(CHAIN)
    s = {b.name: v for b, v in st.cumulative_strides(g).items() if v is not None}
    assert s == {n: (Fraction(v), Fraction(v)) for n, v in
                 {"data": 1, "c1": 2, "p1": 4, "c2": 8, "c3": 16, "c4": 16, "c5": 32}.items()}
    assert st.largest_stride(st.cumulative_strides(g)) == 32


def test_strides_are_kept_per_axis():
    """A stride on one axis only (stride_h/stride_w) moves that axis alone."""
    g = graph(net(conv("c1", "data", extra="stride_h: 2 stride_w: 1"), conv("c2", "c1", s=2)))
    s = {b.name: v for b, v in st.cumulative_strides(g).items() if v is not None}
    assert s["c1"] == (2, 1) and s["c2"] == (4, 2)
    r = st.removals_for_output_stride(g, 2)
    assert {g.layers[i].name: v for i, v in r.items()} == {"c2": (2, 1)}


def test_output_stride_removes_only_strides_past_the_target():
    g = graph(CHAIN)
    names = {l.index: l.name for l in g.layers}
    r = st.removals_for_output_stride(g, 8)
    assert {names[i]: v for i, v in r.items()} == {"c3": (2, 2), "c5": (2, 2)}
    assert st.largest_stride(st.cumulative_strides(g, r)) == 8
    r = st.removals_for_output_stride(g, 16)
    assert {names[i] for i in r} == {"c5"}


def test_from_layer_removes_that_stride_and_every_later_one():
    g = graph(CHAIN)
    names = {l.index: l.name for l in g.layers}
    r = st.removals_from_layer(g, g.layer("c2").index)
    assert {names[i] for i in r} == {"c2", "c3", "c5"}


def test_reachable_output_strides():
    assert st.reachable_output_strides(graph(CHAIN)) == [1, 2, 4, 8, 16, 32]
    # a stride-4 stem cannot give 2
    g = graph(net(conv("c1", "data", k=11, s=4), conv("c2", "c1", s=2)))
    assert st.reachable_output_strides(g) == [1, 4, 8]


def test_unreachable_output_stride_lists_the_reachable_ones():
    with pytest.raises(AtrousError, match=r"output stride 12 is not reachable .* 1, 2, 4, 8, 16, 32"):
        convert(CHAIN, output_stride=12)


def test_deconvolution_and_non_spatial_layers():
    text = net(conv("c1", "data", s=2), conv("c2", "c1", s=2),
               layer("up", "Deconvolution", "c2",
                     body="convolution_param { num_output: 8 kernel_size: 4 stride: 2 }"),
               layer("fc", "InnerProduct", "c2", body="inner_product_param { num_output: 3 }"))
    s = st.cumulative_strides(graph(text))
    by = {b.name: v for b, v in s.items()}
    assert by["up"] == (Fraction(2), Fraction(2))
    assert by["fc"] is None


TRAIN_VAL = """
name: "tv"
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TRAIN }
  transform_param { crop_size: 65 } data_param { source: "train_lmdb" batch_size: 32 } }
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TEST }
  transform_param { crop_size: 65 } data_param { source: "val_lmdb" batch_size: 10 } }
""" + conv("c1", "data", s=2) + conv("c2", "c1", s=2) + conv("c3", "c2", s=2) + """
layer { name: "drop" type: "Dropout" bottom: "c3" top: "c3" include { phase: TRAIN } }
layer { name: "gap" type: "Pooling" bottom: "c3" top: "gap" pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc" type: "InnerProduct" bottom: "gap" top: "fc" inner_product_param { num_output: 5 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }
layer { name: "acc" type: "Accuracy" bottom: "fc" bottom: "label" top: "acc" include { phase: TEST } }
"""


def test_train_val_with_two_phases():
    graphs = load_text(TRAIN_VAL, "tv").graphs()
    assert [g.phase for g in graphs] == ["TRAIN", "TEST"]
    assert [l.name for l in graphs[0].layers].count("data") == 1
    assert "acc" not in [l.name for l in graphs[0].layers]
    assert "drop" not in [l.name for l in graphs[1].layers]
    r = convert(TRAIN_VAL, output_stride=4)
    assert sorted(c.layer.name for c in r.plan.ordered()) == ["c3"]
    assert r.plan.stride_before == 8 and r.plan.stride_after == 4
    assert r.text.count('source: "train_lmdb"') == 1 and r.text.count('phase: TEST') == 2
