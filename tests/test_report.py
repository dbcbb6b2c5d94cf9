"""--report and --report-json: per stage strides, receptive fields, sizes and costs."""

import json
import re

import pytest

from caffe_atrous.cli import main
from caffe_atrous.reports.text import UNITS, format_amount

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
    assert "stride 16  81      16 -> 8" in err and "3.86G -> 19.0G x4.93" in err
    assert "732M -> 11.7G x16.00" in err and "62.2MB -> 148MB x2.38" in err
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


@pytest.mark.parametrize("value,macs,size", [
    (0, "0", "0B"), (592, "592", "592B"), (999, "999", "999B"), (1000, "1.00K", "0.977KB"),
    (1280, "1.28K", "1.25KB"), (40600, "40.6K", "39.6KB"), (99950, "100K", "97.6KB"),
    (999500, "1.00M", "976KB"), (7494000, "7.49M", "7.15MB"), (732e6, "732M", "698MB"),
    (19.0e9, "19.0G", "17.7GB")])
def test_each_figure_has_its_own_unit(value, macs, size):
    """3 significant digits in the unit that suits the figure (999.5K reads 1.00M)."""
    assert (format_amount(value, "macs"), format_amount(value, "bytes")) == (macs, size)


def parse_amount(text: str, kind: str) -> float:
    """A figure of the report back to a number."""
    base, units = UNITS[kind]
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Z]*)", text).groups()
    return float(number) * base ** units.index(unit)


def cost_cells(line: str) -> list[list[str]]:
    """The MACs and activations cells of a report row, each as [before, after]."""
    return [cell.split(" x")[0].split(" -> ") for cell in re.split(r"\s{2,}", line)[-2:]]


def test_the_bundled_example_reads_in_small_units(tmp_path, capsys):
    """Every stage row of the example says something: each figure of the text is the
    JSON's to 3 significant digits, and reads 0 only where the JSON has 0 (the input's
    stage computes nothing)."""
    out = tmp_path / "r.json"
    assert main([str(EXAMPLE), "-o", str(tmp_path / "o"), "--report", "--report-json",
                 str(out)]) == 0
    lines = capsys.readouterr().err.splitlines()
    r = json.loads(out.read_text())
    assert [s["stage"] for s in r["stages"]] == ["stride 1", "stride 2", "stride 4", "stride 8",
                                                 "stride 16", "stride 32", "head"]
    for s in r["stages"][1:]:
        assert min(s["macs"]) > 0 and min(s["activation_bytes"]) > 0, s
    assert r["stages"][0]["macs"] == [0, 0] and min(r["stages"][0]["activation_bytes"]) > 0
    rows = [(s["stage"], [s["macs"], s["activation_bytes"]]) for s in r["stages"]]
    rows.append(("total", [r["totals"]["macs"], r["totals"]["activation_bytes"]]))
    for name, figures in rows:
        (line,) = [l for l in lines if re.match(rf"{name}\s{{2,}}", l)]
        assert "0.00G" not in line and "0.0MB" not in line, line       # issue 18
        for cell, values, kind in zip(cost_cells(line), figures, ("macs", "bytes")):
            for text, value in zip(cell, values):
                assert parse_amount(text, kind) == pytest.approx(value, rel=0.005, abs=0), line
                assert (text == "0" or text == "0B") is (value == 0), line
