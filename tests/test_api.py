"""The Python API (caffe_atrous.convert, verify, init_weights, preset, Conversion): its
names and signatures are stable, it takes paths, text and messages of any schema, it
raises one exception type, warns through `warnings`, and prints nothing."""

import inspect
import subprocess
import sys
import warnings

import pytest

import caffe_atrous as ca
from caffe_atrous.formats.schema import builtin
from conftest import EXAMPLE, ROOT, conv, layer, net, pool, zoo_path

# the tests that are not about warnings leave them to the warnings test
pytestmark = pytest.mark.filterwarnings("ignore::caffe_atrous.AtrousWarning")

PUBLIC = {
    "convert": "(net, output_stride: 'int | None' = 8, *, from_layer: 'str | None' = None, "
               "exact: 'bool' = False, multi_grid: 'Sequence[int] | None' = None, "
               "fc_to_conv: 'bool' = False, decimate: 'Sequence[int] | None' = None, "
               "truncate_after: 'str | None' = None, input_shape: 'Sequence[int] | None' = None, "
               "assume_same_grid: 'Sequence[str]' = (), align: 'bool' = False, proto=None, "
               "weights=None, weights_out=None, keep_layout: 'bool' = True, "
               "name: 'str | None' = None, "
               "warn: 'bool' = True) -> 'Conversion'",
    "verify": "(original, converted, weights, *, new_weights=None, blob: 'str | None' = None, "
              "input_shape: 'Sequence[int] | None' = None, engine: 'str' = 'auto', "
              "seed: 'int' = 0, tolerance: 'float' = 0.0001, proto=None)",
    "init_weights": "(net, out, *, seed: 'int' = 0, input_shape: 'Sequence[int] | None' = None, "
                    "proto=None) -> 'dict[str, list[tuple[int, ...]]]'",
    "preset": "(name_or_path) -> 'dict[str, Any]'",
}


def test_the_public_names_and_their_signatures_are_stable():
    assert set(ca.__all__) == {"convert", "verify", "init_weights", "preset", "Conversion",
                               "Change", "AtrousError", "AtrousWarning", "ConversionWarning",
                               "__version__"}
    for name, signature in PUBLIC.items():
        assert str(inspect.signature(getattr(ca, name))) == signature, name
    assert ca.Change._fields == ("layer", "type", "before", "after", "reasons")


def test_no_subpackage_shadows_a_public_name():
    import caffe_atrous.verification.compare  # noqa: F401 - importing it sets an attribute
    packages = {p.name for p in (ROOT / "caffe_atrous").iterdir() if p.is_dir()}
    assert packages & set(ca.__all__) == set()
    assert callable(ca.verify) and callable(ca.convert)


def test_help_reads_as_reference_documentation():
    text = subprocess.run([sys.executable, "-c", "import caffe_atrous; help(caffe_atrous)"],
                          cwd=ROOT, capture_output=True, text=True, check=True,
                          env={"PAGER": "cat", "PATH": "/usr/bin:/bin"}).stdout
    assert "ca.convert(" in text and "LAYERS:" in text
    for name in ("convert", "verify", "init_weights", "preset"):
        assert inspect.getdoc(getattr(ca, name)), name
    for name, member in inspect.getmembers(ca.Conversion):
        if not name.startswith("_"):
            assert inspect.getdoc(member), name


def test_a_path_text_and_our_message_convert_alike(capsys):
    text = EXAMPLE.read_text()
    by_path = ca.convert(str(EXAMPLE), 8)
    by_pathlike = ca.convert(EXAMPLE, 8)
    by_text = ca.convert(text, 8)
    ours = builtin().NetParameter()
    from caffe_atrous.formats.prototxt import parse
    ours.CopyFrom(parse(text)[0])
    by_message = ca.convert(ours, 8)
    assert by_path.text == by_pathlike.text == by_text.text
    assert type(by_message.net) is type(ours) and by_message.net == by_path.net
    assert by_path.output_stride == (32, 8)
    assert {c.layer for c in by_path.changes} >= {"conv4_1_3x3", "conv5_1_3x3"}
    change = next(c for c in by_path.changes if c.layer == "conv4_1_3x3")
    assert change.before == "k3 s2 p1 d1" and change.after == "k3 s1 p2 d2" and change.reasons
    assert capsys.readouterr() == ("", "")            # nothing printed


def test_a_message_of_another_schema_comes_back_in_its_own_class(tmp_path):
    """A compiled caffe_pb2 of BVLC's schema (as pycaffe has), in a process of its own."""
    protoc = pytest.importorskip("grpc_tools.protoc")
    proto = zoo_path("_proto/bvlc.proto")
    (tmp_path / "caffe.proto").write_text(proto.read_text())
    assert protoc.main(["protoc", f"-I{tmp_path}", f"--python_out={tmp_path}",
                        str(tmp_path / "caffe.proto")]) == 0
    code = f"""
import sys; sys.path.insert(0, {str(tmp_path)!r})
import caffe_pb2
from google.protobuf import text_format
import caffe_atrous as ca
msg = text_format.Parse(open({str(EXAMPLE)!r}).read(), caffe_pb2.NetParameter())
out = ca.convert(msg, 16, warn=False)
assert type(out.net) is caffe_pb2.NetParameter, type(out.net)
layer = [l for l in out.net.layer if l.name == "conv5_1_3x3"][0]
print(list(layer.convolution_param.dilation), out.output_stride)
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[2] (32, 16)"


def test_warnings_go_through_the_warnings_module_and_can_be_made_errors():
    text = net(conv("c1", "data", s=2), conv("c2", "c1", s=2), pool("p1", "c2", k=3, s=1, p=1),
               conv("c3", "p1"))
    with pytest.warns(ca.AtrousWarning, match="p1"):
        result = ca.convert(text, 2)
    assert result.warnings and result.warnings[0].layer == "p1"
    with warnings.catch_warnings():
        warnings.simplefilter("error", ca.AtrousWarning)
        with pytest.raises(ca.AtrousWarning):
            ca.convert(text, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ca.convert(text, 2, warn=False)                  # asked not to


def test_errors_are_one_type_with_where_and_what_to_do():
    text = net(conv("c1", "data", s=2), layer("fc", "InnerProduct", "c1", body="inner_product_param "
                                               "{ num_output: 3 }"))
    with pytest.raises(ca.AtrousError) as err:
        ca.convert(text, 1, name="head.prototxt")
    assert err.value.file == "head.prototxt" and err.value.layer == "fc" and err.value.line
    assert "--fc-to-conv" in err.value.message
    with pytest.raises(ca.AtrousError, match="output_stride must be a whole number"):
        ca.convert(text, 0)
    with pytest.raises(ca.AtrousError, match="no such file"):
        ca.convert("missing.prototxt")
    with pytest.raises(ca.AtrousError, match="takes a path"):
        ca.convert(42)


def test_write_is_atomic_and_never_over_the_input(tmp_path):
    src = tmp_path / "net.prototxt"
    src.write_text(EXAMPLE.read_text())
    result = ca.convert(src, 16)
    with pytest.raises(ca.AtrousError, match="never overwrites its input"):
        result.write(src)
    assert src.read_text() == EXAMPLE.read_text()
    result.write(tmp_path / "out.prototxt")
    assert result.is_written_to(tmp_path / "out.prototxt")
    assert not result.is_written_to(src)
    assert "+" in result.diff() and "dilation: 2" in result.diff()


def test_weights_check_write_and_report(tmp_path):
    w = tmp_path / "w.caffemodel"
    written = ca.init_weights(EXAMPLE, w, seed=1)
    assert "conv1" in written
    result = ca.convert(EXAMPLE, 8, exact=True, weights=w, weights_out=tmp_path / "c.caffemodel")
    assert result.weights_report.missing == [] and result.weights_report.mismatched == []
    assert len(result.weights_report.matched) == len(written)
    assert (tmp_path / "c.caffemodel").stat().st_size > 0
    result.write(tmp_path / "c.prototxt")
    report = result.report()
    assert report["output_stride"] == [32, 8]
    assert "stride" in result.report_text()
    pytest.importorskip("cv2")
    check = ca.verify(EXAMPLE, tmp_path / "c.prototxt", w, engine="opencv")
    assert check.ok and check.max_rel < 1e-4


def test_a_preset_gives_convert_its_keyword_arguments():
    assert ca.preset("deeplab-v3") == {"output_stride": 16, "multi_grid": (1, 2, 4)}
    kwargs = ca.preset("exact-os16")
    assert kwargs == {"output_stride": 16, "exact": True}
    assert ca.convert(EXAMPLE, **kwargs).text == ca.convert(EXAMPLE, 16, exact=True).text
