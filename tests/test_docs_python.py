"""Every example of docs/python.md runs, as a user would run it: from a folder that
holds the bundled example network and weights for it. The pycaffe examples run in the
Caffe venv of `make caffe` (real-Caffe tests)."""

import re
import subprocess
import sys

import pytest

import caffe_atrous as ca
import caffe_env
from conftest import EXAMPLE, ROOT

PAGE = (ROOT / "docs" / "python.md").read_text()
PYCAFFE = PAGE.index("## With pycaffe")


def _blocks(start: int, end: int) -> list[str]:
    return re.findall(r"```python\n(.*?)```", PAGE[start:end], re.S)


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "net.prototxt").write_text(EXAMPLE.read_text())
    ca.init_weights(EXAMPLE, tmp_path / "net.caffemodel", seed=3)
    return tmp_path


def test_the_page_has_examples_of_each_kind():
    assert len(_blocks(0, PYCAFFE)) == 4 and len(_blocks(PYCAFFE, len(PAGE))) == 2


@pytest.mark.parametrize("index", range(4))
def test_an_example_runs(folder, index):
    code = _blocks(0, PYCAFFE)[index]
    done = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    expected = [("converted 6 layers: output stride 32 -> 8", "0 missing, 0 mismatched"),
                ("output stride 3 is not reachable", "refused: pool5"),
                ("(32, 16)",),
                ("True",)][index]
    for text in expected:
        assert text in out, out


@pytest.mark.real_caffe
@pytest.mark.parametrize("index", range(2))
def test_a_pycaffe_example_runs_in_caffe(folder, index):
    caffe = caffe_env.require()
    code = _blocks(PYCAFFE, len(PAGE))[index]
    done = subprocess.run([caffe.python, "-c", code], cwd=folder, env=caffe.env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    if index == 1:     # what caffe_atrous's own shape inference says of the converted net
        from caffe_atrous.analysis.shapes import infer_shapes
        from caffe_atrous.pipeline.loading import load_text
        graph = load_text((folder / "net_os8.prototxt").read_text()).graph()
        expected = str(next(s for b, s in infer_shapes(graph).items() if b.name == "conv5_1"))
    else:
        expected = "(1, 4, 33, 33)"
    assert expected in done.stdout, done.stdout
