"""verify finds its own way: the input size a classifier head needs, the converted
caffemodel it asks for, and engine or environment failures told as what they are, naming
the user's files (never a temporary one)."""

import subprocess
import sys

import pytest

from caffe_atrous.cli import main
from conftest import EXAMPLE, ROOT, conv, layer, net, pool

pytest.importorskip("cv2")

TEMP = "caffe_atrous_verify_"


def _vgg_like() -> str:
    """A small VGG: five stride-2 poolings, then fc6 over the 7x7 map of a 224 input."""
    body, x = [], "data"
    for i in range(1, 6):
        body += [conv(f"conv{i}", x, n=4), pool(f"pool{i}", f"conv{i}")]
        x = f"pool{i}"
    body += [layer("fc6", "InnerProduct", x, body="inner_product_param { num_output: 8 }"),
             layer("relu6", "ReLU", "fc6", "fc6"),
             layer("fc7", "InnerProduct", "fc6", body="inner_product_param { num_output: 3 }")]
    return net(*body, size=224)


@pytest.fixture
def head(tmp_path):
    """(original, converted, original weights, converted weights) of an fc-to-conv head."""
    orig, new = tmp_path / "vgg.prototxt", tmp_path / "vgg_fcn.prototxt"
    w, w2 = tmp_path / "vgg.caffemodel", tmp_path / "vgg_fcn.caffemodel"
    orig.write_text(_vgg_like())
    assert main(["init-weights", str(orig), "-o", str(w), "-q"]) == 0
    assert main([str(orig), "-o", str(new), "--fc-to-conv", "--exact", "--output-stride", "32",
                 "--weights", str(w), "--weights-out", str(w2), "-q"]) == 0
    return orig, new, w, w2


def test_a_classifier_head_runs_at_the_size_it_needs(head, capsys):
    orig, new, w, w2 = head
    assert main(["verify", str(orig), str(new), str(w), "--new-weights", str(w2),
                 "--engine", "opencv"]) == 0
    out = capsys.readouterr().out
    assert "1x3x224x224 (the declared size: 'fc6' needs it)" in out
    assert "PASS" in out and TEMP not in out


def test_forgetting_the_converted_weights_is_said_before_any_engine_runs(head, capsys):
    orig, new, w, _ = head
    assert main(["verify", str(orig), str(new), str(w), "--engine", "opencv"]) == 2
    err = capsys.readouterr().err
    assert "fc6's stored blob is 8x196; the converted network needs 8x4x7x7: give the " \
           "converted caffemodel with --new-weights" in err
    assert err.count("\n") == 1 and TEMP not in err


def test_an_engine_that_cannot_load_a_layer_names_the_users_file(tmp_path, capsys):
    text = net(conv("c1", "data", s=2), layer("bn", "BN", "c1", "c1"), conv("c2", "c1", s=2),
               conv("c3", "c2"))
    orig, new, w = tmp_path / "bn.prototxt", tmp_path / "bn_os2.prototxt", tmp_path / "bn.caffemodel"
    orig.write_text(text)
    assert main(["init-weights", str(orig), "-o", str(w), "-q"]) == 0
    assert main([str(orig), "-o", str(new), "--exact", "--output-stride", "2", "-q"]) == 0
    assert main(["verify", str(orig), str(new), str(w), "--engine", "opencv"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"caffe_atrous: error: {orig}: OpenCV could not run this network")
    assert "BN" in err
    assert TEMP not in err and "/tmp" not in err.replace(str(tmp_path), "")
    assert "input 'data' 1x3x65x65" in err


def test_an_engine_that_fails_while_running_names_the_users_file(tmp_path, capsys, monkeypatch):
    from caffe_atrous.core.errors import AtrousError
    from caffe_atrous.verification import runners

    def failing(self, prototxt, caffemodel, inputs, blobs):
        raise AtrousError(f"OpenCV could not run this network: {prototxt}: assertion failed",
                          file=prototxt)
    monkeypatch.setattr(runners.OpenCVRunner, "run", failing)
    orig, new, w = tmp_path / "a.prototxt", tmp_path / "b.prototxt", tmp_path / "w.caffemodel"
    orig.write_text(EXAMPLE.read_text())
    assert main(["init-weights", str(orig), "-o", str(w), "-q"]) == 0
    assert main([str(orig), "-o", str(new), "--exact", "-q"]) == 0
    assert main(["verify", str(orig), str(new), str(w), "--engine", "opencv"]) == 1
    err = capsys.readouterr().err
    assert f"{orig}: OpenCV could not run this network: {orig}: assertion failed" in err
    assert TEMP not in err


def test_a_pycaffe_that_fails_to_start_is_an_environment_problem(tmp_path):
    fake = tmp_path / "site" / "caffe"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "raise SystemError('initialization of _caffe raised unreported exception')\n")
    orig, new, w = tmp_path / "a.prototxt", tmp_path / "b.prototxt", tmp_path / "w.caffemodel"
    orig.write_text(EXAMPLE.read_text())
    assert main(["init-weights", str(orig), "-o", str(w), "-q"]) == 0
    assert main([str(orig), "-o", str(new), "--exact", "-q"]) == 0
    env = {"PYTHONPATH": f"{tmp_path / 'site'}:{ROOT}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "caffe_atrous", "verify", str(orig), str(new),
                           str(w), "--engine", "caffe"], capture_output=True, text=True, env=env)
    assert done.returncode == 2
    assert "pycaffe is on the path but fails to start" in done.stderr
    assert "numpy" in done.stderr and "internal error" not in done.stderr


def test_an_old_protobuf_is_an_environment_problem(tmp_path):
    code = ("import google.protobuf as p; p.__version__ = '3.20.3'\n"
            "from caffe_atrous.cli import main\n"
            f"raise SystemExit(main([{str(EXAMPLE)!r}, '-o', '-']))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2
    assert "protobuf 3.20.3, older than the 7.35 that caffe-atrous needs" in done.stderr
    assert "internal error" not in done.stderr


def _psp_like() -> str:
    """A backbone to output stride 8 on a 129 input (a 17x17 map), a pyramid pooling of
    1 and 2 bins resized back onto the map, and a final zoom to the image."""
    def interp(name, bottom, body):
        return layer(name, "Interp", bottom, body=f"interp_param {{ {body} }}")
    return net(conv("c1", "data", s=2), conv("c2", "c1", s=2), conv("c3", "c2", s=2),
               conv("c4", "c3"),
               pool("p1", "c4", k=17, s=17, method="AVE"), conv("p1c", "p1", k=1),
               interp("p1i", "p1c", "height: 17 width: 17"),
               pool("p2", "c4", k=9, s=8, method="AVE"), conv("p2c", "p2", k=1),
               interp("p2i", "p2c", "height: 17 width: 17"),
               layer("cat", "Concat", ["c4", "p1i", "p2i"]), conv("c5", "cat", k=1),
               interp("zoom", "c5", "zoom_factor: 8"), size=129)


def test_a_pyramid_pooling_network_verifies_on_its_backbone(tmp_path, capsys):
    orig, new, w = tmp_path / "psp.prototxt", tmp_path / "psp_os4.prototxt", tmp_path / "w.caffemodel"
    orig.write_text(_psp_like())
    assert main(["init-weights", str(orig), "-o", str(w), "-q"]) == 0
    assert main([str(orig), "-o", str(new), "--exact", "--output-stride", "4", "-q"]) == 0
    assert main(["verify", str(orig), str(new), str(w), "--engine", "opencv"]) == 0
    out = capsys.readouterr().out
    assert "compared blob 'c4'" in out and "(the declared size: 'p1i' needs it)" in out
    assert "PASS" in out


def test_vgg16_made_fully_convolutional_verifies_without_an_input_shape(tmp_path, capsys):
    """The published VGG16 after FCN's net surgery (--fc-to-conv at its own output stride):
    verify runs it at the 224x224 its fc6 needs, with the converted caffemodel."""
    from conftest import zoo_path
    orig = zoo_path("vgg16-ilsvrc/VGG_ILSVRC_16_layers_deploy.prototxt")
    w, new, w2 = tmp_path / "vgg.caffemodel", tmp_path / "vgg_fcn.prototxt", tmp_path / "fcn.caffemodel"
    assert main(["init-weights", str(orig), "-o", str(w), "-q"]) == 0
    assert main([str(orig), "-o", str(new), "--fc-to-conv", "--exact", "--output-stride", "32",
                 "--weights", str(w), "--weights-out", str(w2), "-q"]) == 0
    assert main(["verify", str(orig), str(new), str(w), "--new-weights", str(w2),
                 "--engine", "opencv"]) == 0
    out = capsys.readouterr().out
    assert "x3x224x224 (the declared size: 'fc6' needs it)" in out and "PASS" in out
