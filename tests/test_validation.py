"""Caffe's own setup checks (its CHECKs in the layer setup), said first by caffe_atrous.

Each rule: one line on stderr naming the file, the line, the layer, the field and
the value; exit code 1; nothing written.
"""

import pytest

from caffe_atrous.cli import main

from conftest import conv, layer, net, pool

HEAD_LINES = 2          # net() writes `name:` and the Input layer first


def _error(tmp_path, capsys, text, *args):
    src = tmp_path / "bad.prototxt"
    src.write_text(text)
    out = tmp_path / "out.prototxt"
    code = main([str(src), "-o", str(out), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    assert not out.exists()
    assert "internal error" not in err[0]
    return err[0]


def _conv_layer(params, bottom="data", name="c"):
    return (f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}" '
            f"convolution_param {{ {params} }} }}\n")


def _pool_layer(params, bottom="data", name="p"):
    return (f'layer {{ name: "{name}" type: "Pooling" bottom: "{bottom}" top: "{name}" '
            f"pooling_param {{ {params} }} }}\n")


def _located(line, where=HEAD_LINES + 1, name="c"):
    assert line.startswith(f"caffe_atrous: error: "), line
    assert f"bad.prototxt:{where}: layer '{name}': " in line, line


READ_TIME = [
    # (layer text, name, expected fragments)
    (_conv_layer("num_output: 8 kernel_size: 0"), "c", ["kernel_size is 0", "> 0"]),
    (_conv_layer("num_output: 8 kernel_size: 3 stride: 0"), "c", ["stride is 0", "> 0"]),
    (_conv_layer("num_output: 8 kernel_size: 3 dilation: 0"), "c", ["dilation is 0", "> 0"]),
    (_conv_layer("num_output: 0 kernel_size: 3"), "c", ["num_output is 0", "> 0"]),
    (_conv_layer("num_output: 8 kernel_size: 3 group: 0"), "c", ["group is 0", "> 0"]),
    (_conv_layer("num_output: 8 kernel_h: 0 kernel_w: 3"), "c", ["kernel_h is 0"]),
    (_conv_layer("num_output: 8 kernel_size: 3 stride_h: 2 stride_w: 0"), "c", ["stride_w is 0"]),
    (_conv_layer("num_output: 8 kernel_size: 3 kernel_h: 3 kernel_w: 3"), "c",
     ["sets both kernel_size and kernel_h/kernel_w"]),
    (_conv_layer("num_output: 8 kernel_h: 3"), "c", ["kernel_h and kernel_w must be given together"]),
    (_conv_layer("num_output: 8"), "c", ["no kernel_size given"]),
    (_conv_layer("num_output: 8 kernel_size: 3 group: 3"), "c",
     ["group is 3 but num_output 8 does not divide by it"]),
    (_pool_layer("pool: MAX kernel_size: 0 stride: 2"), "p", ["kernel_size is 0"]),
    (_pool_layer("pool: MAX kernel_size: 2 stride: 0"), "p", ["stride is 0"]),
    (_pool_layer("pool: MAX global_pooling: true kernel_size: 3"), "p",
     ["global_pooling: true with a kernel size"]),
    (_pool_layer("pool: MAX kernel_size: 3 pad: 3"), "p", ["pad is 3, not smaller than the kernel (3)"]),
    (_pool_layer("pool: MAX kernel_h: 3 kernel_w: 2 pad_h: 1 pad_w: 2"), "p",
     ["pad_w is 2, not smaller than the kernel (2)"]),
    (_pool_layer("pool: STOCHASTIC kernel_size: 3 pad: 1"), "p", ["pool: STOCHASTIC", "pads only MAX and AVE"]),
    (layer("i", "Interp", "data", body="interp_param { zoom_factor: 0 }"), "i", ["zoom_factor is 0"]),
    (layer("i", "Interp", "data", body="interp_param { shrink_factor: 0 }"), "i", ["shrink_factor is 0"]),
]


@pytest.mark.parametrize("text, name, fragments", READ_TIME,
                         ids=[f"{i}-{f[0][:24]}" for i, (_, _, f) in enumerate(READ_TIME)])
def test_read_time_rule(tmp_path, capsys, text, name, fragments):
    line = _error(tmp_path, capsys, net(text, size=33))
    _located(line, name=name)
    for f in fragments:
        assert f in line, line


@pytest.mark.parametrize("dims", ["0", "-2"])
def test_input_dim_below_one(tmp_path, capsys, dims):
    text = (f'name: "t"\nlayer {{ name: "data" type: "Input" top: "data" input_param {{ shape '
            f'{{ dim: 1 dim: 3 dim: {dims} dim: 9 }} }} }}\n' + conv("c", "data"))
    line = _error(tmp_path, capsys, text)
    assert f"bad.prototxt:2: layer 'data': input_param: shape 1x3x{dims}x9 has a dimension below 1" \
        in line, line


def test_legacy_input_dim_below_one(tmp_path, capsys):
    text = 'input: "data"\ninput_dim: 1 input_dim: 3 input_dim: 0 input_dim: 9\n' + conv("c", "data")
    line = _error(tmp_path, capsys, text)
    assert "bad.prototxt" in line and "input_dim 1x3x0x9 has a dimension below 1" in line, line


def test_group_divides_input_channels(tmp_path, capsys):
    text = net(_conv_layer("num_output: 4 kernel_size: 3 group: 2"), channels=3, size=33)
    line = _error(tmp_path, capsys, text)
    _located(line)
    assert "convolution_param: group is 2 but the 3 input channels do not divide by it" in line


def test_group_divides_channels_of_a_deconvolution(tmp_path, capsys):
    text = net(layer("up", "Deconvolution", "data", body="convolution_param { num_output: 4 "
                     "kernel_size: 4 stride: 2 group: 2 }"), channels=3, size=33)
    line = _error(tmp_path, capsys, text)
    _located(line, name="up")
    assert "group is 2 but the 3 input channels" in line


def test_convolution_kernel_larger_than_padded_input(tmp_path, capsys):
    text = net(_conv_layer("num_output: 4 kernel_size: 11 pad: 1"), size=8)
    line = _error(tmp_path, capsys, text)
    _located(line)
    assert "convolution_param: kernel_size is 11, more than its 8x8 input with pad 1 (10)" in line


def test_dilated_kernel_larger_than_padded_input(tmp_path, capsys):
    text = net(_conv_layer("num_output: 4 kernel_size: 3 dilation: 6"), size=9)
    line = _error(tmp_path, capsys, text)
    _located(line)
    assert "kernel_size 3 with dilation 6 spans 13, more than its 9x9 input with pad 0 (9)" in line


def test_kernel_against_the_given_input_shape(tmp_path, capsys):
    text = net(conv("c1", "data", k=7, s=2, p=1))
    line = _error(tmp_path, capsys, text, "--input-shape", "1,3,4,4")
    _located(line, name="c1")
    assert "kernel_size is 7, more than its 4x4 input with pad 1 (6)" in line


def test_pooling_kernel_larger_than_padded_map(tmp_path, capsys):
    text = net(conv("c1", "data", s=2), _pool_layer("pool: AVE kernel_size: 7", bottom="c1"), size=9)
    line = _error(tmp_path, capsys, text)
    _located(line, where=HEAD_LINES + 2, name="p")
    assert "pooling_param: kernel_size is 7, more than its 5x5 input with pad 0 (5)" in line
    assert "global_pooling: true" in line


def test_global_pooling_has_no_size_limit(tmp_path, capsys):
    text = net(conv("c1", "data", s=2), _pool_layer("pool: AVE global_pooling: true", bottom="c1"),
               size=9)
    src = tmp_path / "ok.prototxt"
    src.write_text(text)
    assert main([str(src), "-o", str(tmp_path / "o.prototxt"), "--output-stride", "1"]) == 0


def test_rules_hold_for_legacy_files(tmp_path, capsys):
    text = ('input: "data"\ninput_dim: 1 input_dim: 3 input_dim: 9 input_dim: 9\n'
            'layers { name: "c" type: CONVOLUTION bottom: "data" top: "c" '
            'convolution_param { num_output: 4 kernel_size: 3 stride: 0 } }\n')
    line = _error(tmp_path, capsys, text)
    assert "bad.prototxt:3: layer 'c': convolution_param: stride is 0" in line, line


def test_output_blob_larger_than_caffe_can_hold(tmp_path, capsys):
    text = net(_conv_layer("num_output: 2147483647 kernel_size: 3 pad: 1"), size=33)
    line = _error(tmp_path, capsys, text)
    _located(line)
    assert "its output 'c' would be 1x2147483647x33x33, 2338609691583 values: more than the " \
           "2147483647 a Caffe blob can hold" in line, line


def test_parameter_blob_larger_than_caffe_can_hold(tmp_path, capsys):
    """init-weights (and --weights) size the parameters: a weight blob Caffe cannot hold."""
    src = tmp_path / "bad.prototxt"
    src.write_text(net(layer("fc", "InnerProduct", "data",
                             body="inner_product_param { num_output: 700000 }"), size=33))
    out = tmp_path / "w.caffemodel"
    assert main(["init-weights", str(src), "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and not out.exists()
    _located(err[0], name="fc")
    assert "its parameter blob would be 700000x3267, 2286900000 values" in err[0], err


def test_converted_value_larger_than_its_field(tmp_path, capsys):
    """Sizes unknown (no input shape), so only the written value can be checked."""
    text = ('input: "data"\n' + conv("c1", "data", s=2) + conv("c2", "c1", s=2)
            + conv("c3", "c2", k=3, p=2000000000))
    line = _error(tmp_path, capsys, text, "--output-stride", "1", "--exact")
    assert "bad.prototxt:4: layer 'c3': pad would become 8000000000 after conversion, more than " \
           "its field holds (4294967295)" in line, line
