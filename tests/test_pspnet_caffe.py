"""Proof in PSPNet's own Caffe (hszhao/PSPNet), the engine that runs PSPNet's files: their BN
layer is in neither BVLC Caffe nor OpenCV. `make caffe` builds it beside BVLC Caffe (or
CAFFE_ATROUS_PSPNET_ROOT names the user's tree); where it is absent these tests are skipped
with "PSPNet Caffe tests skipped: run make caffe", and fail in CI. As in
tests/test_real_caffe.py, everything that touches Caffe runs in a subprocess of its
environment (Debian's python3 and numpy 1.x, see tests/caffe_env.py).
"""

import json
import re

import numpy as np
import pytest

from caffe_atrous.formats.caffemodel import Weights

import caffe_env
from conftest import conv, layer, pool, zoo_path
from test_real_caffe import atrous

pytestmark = pytest.mark.real_caffe

PSPNET50 = "pspnet50-ade20k/pspnet50_ADE20K_473.prototxt"

# A PSPNet in small. Three stride-2 convolutions (output stride 8) and one more, each followed
# by PSPNet's BN and a ReLU; a pyramid pooling of 1, 2, 3 and 6 bins over the map, each bin
# map convolved, BN'd and resized back to the map's size by an Interp; the Concat of the map
# and the four branches; a classifier, and an Interp that zooms it x8 to the input's size.
# 185 = 8 x 23 + 1 gives a 24 x 24 map, as PSPNet's 473 = 8 x 59 + 1 gives 60 x 60.
SIZE, MAP, BINS, CLASSES = 185, 24, (1, 2, 3, 6), 5
OS4_SIZE = 2 * (MAP - 1) + 1            # the map at output stride 4: 47
LAST_EXACT = "conv4"                    # the last blob before the pyramid pooling


def conv_bn(name, bottom, n, k=3, s=1):
    return (conv(name, bottom, k=k, s=s, n=n, extra="bias_term: false")
            + layer(f"{name}/bn", "BN", name, name, "bn_param { frozen: true }")
            + layer(f"{name}/relu", "ReLU", name, name))


def small_pspnet() -> str:
    # PSPNet's Caffe is older than the Input layer: the input is declared as in its files
    text = (f'name: "small_pspnet"\ninput: "data"\ninput_dim: 1\ninput_dim: 3\n'
            f'input_dim: {SIZE}\ninput_dim: {SIZE}\n')
    text += (conv_bn("conv1", "data", 8, s=2) + conv_bn("conv2", "conv1", 16, s=2)
             + conv_bn("conv3", "conv2", 16, s=2) + conv_bn("conv4", "conv3", 16))
    for bins in BINS:
        name = f"pool{bins}"
        text += pool(name, LAST_EXACT, k=MAP // bins, s=MAP // bins, method="AVE")
        text += conv_bn(f"{name}_conv", name, 4, k=1)
        text += layer(f"{name}_interp", "Interp", f"{name}_conv",
                      body=f"interp_param {{ height: {MAP} width: {MAP} }}")
    text += layer("concat", "Concat", [LAST_EXACT] + [f"pool{b}_interp" for b in BINS])
    text += conv_bn("conv5", "concat", 16)
    text += conv("conv6", "conv5", k=1, n=CLASSES)
    text += layer("conv6_interp", "Interp", "conv6", body="interp_param { zoom_factor: 8 }")
    return text


@pytest.fixture(scope="module")
def psp():
    return caffe_env.require_pspnet()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The small PSPNet, its exact conversion to output stride 4 and random weights, all by
    the command line."""
    folder = tmp_path_factory.mktemp("small_pspnet")
    orig, new, weights = (folder / "orig.prototxt", folder / "os4.prototxt",
                          folder / "orig.caffemodel")
    orig.write_text(small_pspnet())
    done = atrous(orig, "--os", "4", "--exact", "-o", new)
    assert "output stride 8 -> 4" in done.stderr, done.stderr
    done = atrous("init-weights", orig, "-o", weights)
    assert "19 layers" in done.stderr, done.stderr     # 9 convolutions, their 9 BN, conv6
    return orig, new, weights


def verify(psp, orig, new, weights):
    """verify --engine caffe in PSPNet's Caffe, at the last blob the conversion keeps exact.
    Past it the pyramid pools the denser map, which no conversion can keep exact (verify
    names those layers): the Interp at the end reads other values than the original's."""
    return psp.run("-m", "caffe_atrous", "verify", orig, new, weights, "--engine", "caffe",
                   "--input-shape", f"1,3,{SIZE},{SIZE}", "--blob", LAST_EXACT)


def test_verify_in_pspnet_caffe_passes_on_the_exact_conversion(psp, small):
    out = caffe_env.check(verify(psp, *small), "verify --engine caffe in PSPNet's Caffe")
    assert "verify: engine pycaffe" in out and "PASS" in out, out
    assert f"original 1x16x{MAP}x{MAP}, converted 1x16x{OS4_SIZE}x{OS4_SIZE} sampled every 2" \
        in out, out
    assert float(re.search(r"max relative error (\S+)", out).group(1)) < 1e-4
    after = [l for l in out.splitlines()
             if "inexact by construction (after the compared blob)" in l]
    for name in ["pool2", "pool3", "pool6", "conv6_interp"]:      # named, not compared
        assert any(f"layer '{name}'" in l for l in after), (name, out)
    assert "before the compared blob" not in out, out


def test_verify_in_pspnet_caffe_fails_on_a_tampered_dilation(psp, small, tmp_path):
    orig, new, weights = small
    text = new.read_text()
    line = next(l for l in text.splitlines() if 'name: "conv4" type: "Convolution"' in l)
    assert "dilation: 2" in line and "pad: 2" in line, line
    bad = tmp_path / "tampered.prototxt"
    bad.write_text(text.replace(line, line.replace("dilation: 2", "dilation: 1")
                                          .replace("pad: 2", "pad: 1")))
    done = verify(psp, orig, bad, weights)
    assert done.returncode == 1, done.stderr
    assert "FAIL" in done.stdout and "layer 'conv4'" in done.stdout, done.stdout


def test_converted_network_runs_whole_in_pspnet_caffe_with_the_original_weights(psp, small,
                                                                                 tmp_path):
    """The whole network, pyramid and Interps included: the conversion loads the original
    caffemodel, and what Caffe loaded for the BN layers is the file's values in BN's layout
    (slope, bias, mean, variance, each 1xCx1x1)."""
    orig, new, weights = small
    spec, dump = tmp_path / "forward.json", tmp_path / "loaded.npz"
    case = lambda name, path: {"case": name, "prototxt": str(path), "weights": str(weights)}
    spec.write_text(json.dumps({"reference": case("original", orig), "cases": [case("os4", new)],
                                "dump": str(dump)}))
    out = caffe_env.check(psp.worker("forward", spec), "forward in PSPNet's Caffe")
    done = {r["done"]: r for r in map(json.loads, out.splitlines()) if "done" in r}
    assert done["original"]["outputs"] == {"conv6_interp": [1, CLASSES, SIZE, SIZE]}
    # the final resize follows the denser map (zoom_factor 8 -> 4): the image's size
    assert done["os4"]["outputs"] == {"conv6_interp": [1, CLASSES, SIZE, SIZE]}
    assert done["original"]["finite"] and done["os4"]["finite"]
    assert done["os4"]["differ"] == [] and done["os4"]["dropped"] == []
    assert done["os4"]["params"] == done["original"]["params"]
    with Weights(str(weights)) as w, np.load(dump) as loaded:
        bn = {n: [b.array() for b in l.blobs] for n, l in w.by_name().items() if n.endswith("/bn")}
        assert len(bn) == 4 + len(BINS) + 1
        for name, blobs in bn.items():
            assert len(blobs) == 4, name
            for i, values in enumerate(blobs):
                caffe_has = loaded[f"{name}/{i}"]
                assert caffe_has.shape == (1, caffe_has.shape[1], 1, 1), (name, caffe_has.shape)
                assert np.array_equal(values.reshape(caffe_has.shape), caffe_has), (name, i)
        del bn


def test_published_pspnet50_runs_in_pspnet_caffe(psp, tmp_path):
    """PSPNet-50 (ADE20K) as published, with random weights of the right shapes from
    init-weights: a forward pass at 473x473 (about 5 s on 2 cores)."""
    net = zoo_path(PSPNET50)
    weights = tmp_path / "pspnet50.caffemodel"
    written = int(re.search(r"(\d+) layers", atrous("init-weights", net, "-o", weights).stderr)[1])
    spec = tmp_path / "forward.json"
    spec.write_text(json.dumps({"reference": {"case": "pspnet50", "prototxt": str(net),
                                              "weights": str(weights)}, "cases": []}))
    out = caffe_env.check(psp.worker("forward", spec), "PSPNet-50 in PSPNet's Caffe")
    record = json.loads(out.splitlines()[-1])
    assert record["outputs"] == {"conv6_interp": [1, 150, 473, 473]}
    assert record["finite"]
    assert record["params"] == written > 100      # Caffe has a parameter blob for each written


def test_bvlc_caffe_cannot_read_the_published_pspnet50(tmp_path):
    """Why PSPNet's Caffe is here: BVLC Caffe does not know BN's parameters."""
    bvlc = caffe_env.require()
    spec = tmp_path / "forward.json"
    spec.write_text(json.dumps({"reference": {"case": "pspnet50", "weights": None,
                                              "prototxt": str(zoo_path(PSPNET50))}, "cases": []}))
    done = bvlc.worker("forward", spec)
    assert done.returncode != 0 and 'no field named "bn_param"' in done.stderr, done.stderr[-2000:]


# -- the published PSPNets made coarser (16) and denser (4) --------------------------

PSPNET101 = "pspnet101-voc2012/pspnet101_VOC2012_473.prototxt"


def _published(tmp_path, rel):
    net = tmp_path / "orig.prototxt"
    net.write_text(zoo_path(rel).read_text())
    weights = tmp_path / "orig.caffemodel"
    atrous("init-weights", net, "-o", weights)
    return net, weights


@pytest.mark.parametrize("rel, classes", [(PSPNET50, 150), (PSPNET101, 21)])
def test_published_pspnet_at_16_runs_with_the_original_weights(psp, tmp_path, rel, classes):
    net, weights = _published(tmp_path, rel)
    cases = []
    for mode in ("seed", "exact"):
        path = tmp_path / f"os16_{mode}.prototxt"
        atrous(net, "--output-stride", "16", "-o", path, *(["--exact"] if mode == "exact" else []))
        cases.append({"case": mode, "prototxt": str(path), "weights": str(weights)})
    spec = tmp_path / "forward.json"
    spec.write_text(json.dumps({"reference": {"case": "original", "prototxt": str(net),
                                              "weights": str(weights)}, "cases": cases}))
    out = caffe_env.check(psp.worker("forward", spec), f"{rel} at 16 in PSPNet's Caffe")
    records = {r["done"]: r for r in map(json.loads, filter(lambda l: l.startswith("{"),
                                                             out.splitlines())) if "done" in r}
    for mode in ("seed", "exact"):
        r = records[mode]
        # the final resize zooms x16 now: the 30x30 map gives 29 x 16 + 1 = 465 (473 is
        # 8k + 1, not 16k + 1: the conversion warns), and every weight is the original's
        assert r["outputs"] == {"conv6_interp": [1, classes, 465, 465]}, (mode, r["outputs"])
        assert r["finite"] and r["differ"] == [], mode


@pytest.mark.parametrize("stride", [16, 4])
def test_published_pspnet50_exact_verifies_without_options(psp, tmp_path, stride):
    """Coarser (16) and denser (4), --exact: verify finds the input size (the declared one,
    which the fixed-size Interps need) and the blob (the backbone's last, before the pyramid
    pooling) by itself."""
    net, weights = _published(tmp_path, PSPNET50)
    new = tmp_path / f"os{stride}.prototxt"
    atrous(net, "--output-stride", str(stride), "--exact", "-o", new)
    out = caffe_env.check(psp.run("-m", "caffe_atrous", "verify", net, new, weights, "--engine",
                                  "caffe", timeout=1500), f"verify PSPNet-50 at {stride}")
    assert "compared blob 'conv5_3'" in out and "PASS" in out, out
    assert "input 1x3x473x473" in out
    assert any("inexact by construction (after the compared blob): layer 'conv5_3_pool6'" in l
               for l in out.splitlines()), out
