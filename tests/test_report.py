"""--report and --report-json: per stage strides, receptive fields, sizes and costs."""

import json

from caffe_atrous.cli import main

from conftest import EXAMPLE, zoo_path

R50 = "resnet50-kaiming/ResNet-50-deploy.prototxt"


def report(tmp_path, *args):
    out = tmp_path / "r.json"
    assert main([*map(str, args), "-o", str(tmp_path / "o.prototxt"), "--report-json", str(out),
                 "-q"]) == 0
    return json.loads(out.read_text())


def test_resnet50_macs_match_the_published_figure(tmp_path):
    r = report(tmp_path, zoo_path(R50), "--output-stride", "32")
    macs = r["totals"]["macs"]
    assert macs[0] == macs[1] and 3.8e9 <= macs[0] <= 4.1e9
    assert r["input_shape"] == [1, 3, 224, 224] and r["layers"] == []


def test_output_stride_8_costs_several_times_more(tmp_path):
    r = report(tmp_path, zoo_path(R50), "--output-stride", "8")
    before, after = r["totals"]["macs"]
    assert 4.5 < after / before < 5.5               # 3.86 G -> 19.0 G
    stages = {s["stage"]: s for s in r["stages"]}
    assert stages["stride 16"]["output_stride"] == [16, 8]
    assert stages["stride 16"]["size"] == ["14x14", "28x28"]
    assert stages["stride 32"]["macs"][1] == 16 * stages["stride 32"]["macs"][0]
    # the exact rule keeps every receptive field
    assert all(s["receptive_field"][0] == s["receptive_field"][1] for s in r["stages"]
               if s["stage"] != "head")
    assert {l["name"] for l in r["layers"]} >= {"res4a_branch1", "res5c_branch2b", "pool5"}
    assert r["output_stride"] == [32, 8]


def test_seed_convention_grows_the_receptive_field(tmp_path):
    r = report(tmp_path, EXAMPLE)
    stage = {s["stage"]: s for s in r["stages"]}["stride 16"]
    assert stage["receptive_field"][1] > stage["receptive_field"][0]


def test_report_table(capsys, tmp_path):
    assert main([str(zoo_path(R50)), "-o", str(tmp_path / "o"), "--report"]) == 0
    err = capsys.readouterr().err
    assert "stride 16  81      16 -> 8" in err and "3.86G -> 19.00G x4.93" in err
    assert "res5c_branch2b" in err


def test_report_without_input_size(tmp_path, capsys):
    text = EXAMPLE.read_text().replace("dim: 129 dim: 129", "dim: 0 dim: 0")
    src = tmp_path / "noinput.prototxt"
    src.write_text(text.replace('input_param { shape { dim: 1 dim: 3 dim: 0 dim: 0 } }', ''))
    assert main([str(src), "-o", str(tmp_path / "o"), "--report", "--truncate-after", "conv5_1/relu"]) == 0
    assert "input size unknown" in capsys.readouterr().err


def test_a_windowed_layer_without_bottoms(tmp_path):
    """A convolution that reads nothing starts a map of its own (found by fuzzing: the
    receptive field looked up its first bottom and raised IndexError)."""
    from conftest import conv, net
    text = net(conv("c1", "data", s=2), conv("c2", "c1", s=2)).replace(' bottom: "c1"', "", 1)
    src = tmp_path / "n.prototxt"
    src.write_text(text)
    r = report(tmp_path, src, "--output-stride", "2", "--report")
    stages = {s["stage"]: (s["layers"], s["receptive_field"]) for s in r["stages"]}
    # c2 is a source of its own: stride 1, receptive field 1, like the input
    assert stages == {"stride 1": (2, [1, 1]), "stride 2": (1, [3, 3])}, r["stages"]
