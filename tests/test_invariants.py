"""The package's own invariant check (pipeline/invariants.py), which the tests switch on
for every conversion they make: it catches the breakages it is there for."""

import os
import subprocess
import sys

import pytest

from caffe_atrous.core.errors import AtrousError
from caffe_atrous.pipeline import invariants
from caffe_atrous.pipeline.conversion import Result, _convert
from caffe_atrous.pipeline.loading import load_text
from caffe_atrous.rewrite.plan import Options
from conftest import EXAMPLE, ROOT


def _converted(opts=Options(output_stride=8)):
    loaded = load_text(EXAMPLE.read_text(), str(EXAMPLE))
    return loaded, _convert(loaded, opts, True)


def test_the_tests_switch_it_on_for_themselves_and_their_subprocesses():
    assert invariants.enabled()
    out = subprocess.run([sys.executable, "-c", "from caffe_atrous.pipeline import invariants; "
                          "print(invariants.enabled())"], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "True"


def test_a_good_conversion_passes():
    loaded, result = _converted()
    invariants.check(loaded, result, Options(output_stride=8), _convert)


@pytest.mark.parametrize("old, new, says", [
    ("kernel_size: 3", "kernel_size: 5", "became"),          # a kernel changed
    ('name: "conv4_2_3x3"', 'name: "renamed"', "became"),    # a layer renamed
    ("num_output: 10 ", "num_output: 9 ", "became"),            # a classifier resized
])
def test_a_broken_text_is_caught(old, new, says):
    loaded, result = _converted()
    assert old in result.text
    text = result.text.replace(old, new, 1)
    broken = Result(text, load_text(text, "x").net, result.plan, result.loaded)
    with pytest.raises(AtrousError, match=f"internal check failed: .*{says}"):
        invariants.check(loaded, broken, Options(output_stride=8), _convert)


def test_text_that_is_not_the_converted_net_is_caught():
    loaded, result = _converted()
    broken = Result(result.text.replace("dilation: 2", "dilation: 3", 1), result.net,
                    result.plan, result.loaded)
    with pytest.raises(AtrousError, match="written text differs"):
        invariants.check(loaded, broken, Options(output_stride=8), _convert)


def test_a_conversion_that_is_not_finished_is_caught():
    loaded, result = _converted()
    # a "converted" network that is the input itself claims output stride 8 while its
    # strides are still there: converting it again to 8 changes layers
    unchanged = Result(loaded.text, loaded.net, result.plan, result.loaded)
    with pytest.raises(AtrousError, match="converting the output again changes"):
        invariants.check(loaded, unchanged, Options(output_stride=8), _convert)


@pytest.mark.no_invariants
def test_the_marker_switches_it_off():
    assert not invariants.enabled()
    assert os.environ.get(invariants.ENV) is None
