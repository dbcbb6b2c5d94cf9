"""Proof in the real engine: BVLC Caffe, built by `make caffe` (or the user's own build named by
CAFFE_ATROUS_CAFFE_ROOT). Skipped with "real-Caffe tests skipped: run make caffe" where the
build is absent; a failure in CI. Every Caffe run is a subprocess in the Caffe environment
(Debian's python3 and numpy 1.x, see tests/caffe_env.py); the rest runs here, on numpy 2.
"""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from caffe_atrous.pipeline.conversion import convert_text

from caffe_atrous.pipeline.loading import load_text, read_text, truncate
from caffe_atrous.core.errors import AtrousError
from caffe_atrous.formats import prototxt
from caffe_atrous.formats.caffemodel import Weights
from caffe_atrous.rewrite.plan import Options

import caffe_env
from conftest import EXAMPLE, ROOT, zoo_path, zoo_text
from test_zoo import CLASSIFIERS, EXPECTED_ERRORS

pytestmark = pytest.mark.real_caffe

R50 = "resnet50-kaiming/ResNet-50-deploy.prototxt"
MOBILENET = "mobilenet-v1-shicai/mobilenet_deploy.prototxt"
VERIFIED = [R50, MOBILENET, "resnext50-32x4d-soeaver/deploy_resnext50-32x4d.prototxt"]
SMALL = "1,3,97,97"               # 32k+1: every stride of these networks divides 96


# Fork fields in a classification network, removed so that BVLC Caffe can read it:
# file -> (pattern, what BVLC Caffe says about the unmodified file). soeaver's ResNeXt-50 asks
# its fork for floor rounding in pool1; BVLC always rounds up, so the map sizes differ a little,
# in the original and the conversion alike.
FORK_FIELDS = {"resnext50-32x4d-soeaver/deploy_resnext50-32x4d.prototxt":
               (r"(?m)^\s*ceil_mode: false\n", 'has no field named "ceil_mode"')}


def bvlc_text(rel):
    """The zoo file as BVLC Caffe can read it (see FORK_FIELDS)."""
    text = zoo_text(rel)
    if rel in FORK_FIELDS:
        text, n = re.subn(FORK_FIELDS[rel][0], "", text)
        assert n, f"{rel}: the fork field is no longer there"
    return text


@pytest.fixture(scope="module")
def caffe():
    return caffe_env.require()


def atrous(*args, check=True) -> subprocess.CompletedProcess:
    """The command line in this environment (the project's venv, numpy 2)."""
    done = subprocess.run([sys.executable, "-m", "caffe_atrous", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def prepared(folder, rel, *convert_args, name="net"):
    """The zoo network, its conversion (by the command line) and random weights (init-weights)."""
    orig = folder / f"{name}.prototxt"
    orig.write_text(bvlc_text(rel))
    new = folder / f"{name}_os8.prototxt"
    atrous(orig, "--os", "8", "--exact", *convert_args, "-o", new)
    weights = folder / f"{name}.caffemodel"
    atrous("init-weights", orig, "-o", weights)
    return orig, new, weights


def forward(caffe, folder, reference, cases, dump=None):
    """Run the worker's forward on (case, prototxt, weights) triples; its records by case."""
    spec = folder / "forward.json"
    triple = lambda t: {"case": t[0], "prototxt": str(t[1]), "weights": str(t[2])}
    spec.write_text(json.dumps({"reference": triple(reference), "cases": [triple(c) for c in cases],
                                "dump": str(dump) if dump else None}))
    done = caffe.worker("forward", spec)
    records = [json.loads(l) for l in done.stdout.splitlines() if l.startswith("{")]
    begun = [r["begin"] for r in records if "begin" in r]
    caffe_env.check(done, f"Caffe died in case {begun[-1] if begun else '(before any case)'}")
    return {r["done"]: r for r in records if "done" in r}


# -- verify --engine caffe ------------------------------------------------------

@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pairs")
    return {rel: prepared(folder, rel, name=rel.split("/")[0]) for rel in VERIFIED}


def caffe_verify(caffe, orig, new, weights, engine="caffe"):
    return caffe.run("-m", "caffe_atrous", "verify", orig, new, weights, "--engine", engine,
                     "--input-shape", SMALL)


@pytest.mark.parametrize("rel", VERIFIED)
def test_verify_in_caffe_passes_on_the_exact_conversion(caffe, pairs, rel):
    out = caffe_env.check(caffe_verify(caffe, *pairs[rel]), f"verify --engine caffe {rel}")
    assert "verify: engine pycaffe" in out and "PASS" in out
    assert float(re.search(r"max relative error (\S+)", out).group(1)) < 1e-4


def test_verify_in_caffe_fails_on_a_tampered_dilation(caffe, pairs, tmp_path):
    orig, new, weights = pairs[R50]
    text = new.read_text()
    start = text.index('name: "res5b_branch2b"')
    end = text.index("layer {", start)
    tampered = text[:start] + text[start:end].replace("dilation: 4", "dilation: 3").replace(
        "pad: 4", "pad: 3") + text[end:]
    assert tampered != text
    bad = tmp_path / "tampered.prototxt"
    bad.write_text(tampered)
    done = caffe_verify(caffe, orig, bad, weights)
    assert done.returncode == 1, done.stderr
    assert "FAIL" in done.stdout and "res5b_branch2b" in done.stdout


def test_verify_auto_picks_caffe_when_importable(caffe, pairs):
    out = caffe_env.check(caffe_verify(caffe, *pairs[R50], engine="auto"), "verify --engine auto")
    assert "verify: engine pycaffe" in out and "PASS" in out


@pytest.mark.parametrize("rel", VERIFIED)
def test_opencv_and_caffe_compute_the_same_blob(caffe, pairs, rel, tmp_path):
    """The compared blob of both networks, from OpenCV (here) and Caffe (its environment)."""
    from caffe_atrous.verification.runners import OpenCVRunner
    from caffe_atrous.verification.compare import verify
    *nets, weights = pairs[rel]
    blob = verify(*map(str, pairs[rel]), engine="opencv", input_shape=(1, 3, 97, 97)).blob
    x = np.random.default_rng(1).standard_normal((1, 3, 97, 97)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    for i, path in enumerate(nets):
        loaded = load_text(read_text(str(path)), str(path))
        writer = [s.name for s in loaded.specs() if blob in s.tops][-1]
        cut = tmp_path / f"cut{i}.prototxt"              # the head is sized for 224x224
        cut.write_text(prototxt.to_text(truncate(loaded, writer).net))
        cv = OpenCVRunner().run(str(cut), str(weights), {"data": x}, {blob: writer})[blob]
        caffe_env.check(caffe.worker("blob", cut, weights, tmp_path / "x.npy", blob,
                                     tmp_path / "caffe.npy"), "Caffe blob")
        cf = np.load(tmp_path / "caffe.npy")
        assert cf.shape == cv.shape and cf.shape[2] >= 3
        assert np.max(np.abs(cf - cv)) <= 1e-4 * np.max(np.abs(cv)), (path.name, blob)


# -- every classification network BVLC Caffe can run ----------------------------

# BVLC Caffe cannot run these; what it says when asked to.
NOT_IN_BVLC = {
    "se-resnet50/SE-ResNet-50.prototxt": "Unknown layer type: Axpy",        # a fork's layer
    "bvlc-googlenet/train_val.prototxt": "mdb_status == 0",                # no LMDB database here
    "bvlc-alexnet/train_val.prototxt": "mdb_status == 0",
}
TRUNCATED = {"bvlc-alexnet/deploy.prototxt": "pool5",            # the classifier head cannot grow
             "vgg16-ilsvrc/VGG_ILSVRC_16_layers_deploy.prototxt": "pool5",
             "vgg16-ilsvrc-v2/VGG_ILSVRC_16_layers_deploy.prototxt": "pool5"}
RUNNABLE = [c for c in CLASSIFIERS if c not in NOT_IN_BVLC]
REFUSED_BY_BVLC = {**NOT_IN_BVLC, **{rel: said for rel, (_, said) in FORK_FIELDS.items()}}


@pytest.mark.parametrize("rel", sorted(REFUSED_BY_BVLC))
def test_networks_left_out_or_adapted_are_the_ones_caffe_refuses(caffe, tmp_path, rel):
    assert rel in CLASSIFIERS
    orig = tmp_path / "orig.prototxt"
    orig.write_text(zoo_text(rel))
    spec = tmp_path / "forward.json"
    spec.write_text(json.dumps({"reference": {"case": rel, "prototxt": str(orig), "weights": None},
                                "cases": []}))
    done = caffe.worker("forward", spec)
    assert done.returncode != 0 and REFUSED_BY_BVLC[rel] in done.stderr, done.stderr[-2000:]


def conversions(rel, text):
    """(case name, Options, truncate-after layer) of every conversion in both conventions at
    16 and 8; the documented refusals (test_zoo.EXPECTED_ERRORS) are checked and left out."""
    cases = []
    for os_ in (16, 8):
        for mode in ("seed", "exact"):
            opts = Options(output_stride=os_, mode=mode)
            pattern = EXPECTED_ERRORS.get((rel, os_, mode))
            if pattern:
                with pytest.raises(AtrousError, match=pattern):
                    convert_text(text, rel, opts)
            else:
                cases.append((f"{mode}-os{os_}", opts, None))
            last = TRUNCATED.get(rel)
            if last and not (mode == "exact" and os_ == 8):     # exact at 8: pool5 cannot be
                cases.append((f"{mode}-os{os_}-truncated", opts, last))
    return cases


@pytest.mark.parametrize("rel", RUNNABLE)
def test_converted_classifier_runs_in_caffe_with_the_original_weights(caffe, tmp_path, rel):
    text = bvlc_text(rel)
    orig = tmp_path / "orig.prototxt"
    orig.write_text(text)
    weights = tmp_path / "orig.caffemodel"
    atrous("init-weights", orig, "-o", weights)
    cases, dropped = [], {}
    for case, opts, last in conversions(rel, text):
        result = convert_text(text, rel, opts, truncate_after=last)
        assert result.plan.stride_after == opts.output_stride
        path = tmp_path / f"{case}.prototxt"
        path.write_text(result.text)
        cases.append((case, path, weights))
        kept = {l.name for l in result.net.layer}
        dropped[case] = sorted(l.name for l in load_text(text, rel).net.layer
                               if l.name not in kept)
    assert cases, "every conversion refused: nothing to run"
    done = forward(caffe, tmp_path, ("original", orig, weights), cases)
    assert done["original"]["finite"] and done["original"]["params"] > 0
    for case, _, _ in cases:
        record = done[case]
        assert record["finite"], case
        assert record["differ"] == [], (case, "parameters not the original's", record["differ"])
        assert set(record["dropped"]) <= set(dropped[case]), case
        assert record["params"] + len(record["dropped"]) == done["original"]["params"], case


# -- caffemodel files -------------------------------------------------------------

def test_weights_out_loads_in_caffe(caffe, tmp_path):
    orig, new, weights = prepared(tmp_path, MOBILENET)
    out = tmp_path / "converted.caffemodel"
    atrous(orig, "--os", "8", "--exact", "--weights", weights, "--weights-out", out, "-o",
           tmp_path / "again.prototxt")
    done = forward(caffe, tmp_path, ("original", orig, weights), [("weights-out", new, out)])
    assert done["weights-out"]["differ"] == [] and done["weights-out"]["finite"]
    assert done["weights-out"]["params"] == done["original"]["params"] > 20


def test_caffemodel_saved_by_caffe_is_read(caffe, tmp_path):
    orig = tmp_path / "net.prototxt"
    orig.write_text(zoo_text(MOBILENET))
    saved, values = tmp_path / "caffe.caffemodel", tmp_path / "values.npz"
    caffe_env.check(caffe.worker("save", orig, saved, values, 3), "net.save")
    with Weights(str(saved)) as w, np.load(values) as expected:
        layers = w.by_name()
        read = {f"{name}/{i}": b.array() for name, l in layers.items() for i, b in enumerate(l.blobs)}
        assert sorted(read) == sorted(expected.files)
        for key in expected.files:
            assert np.array_equal(read[key].reshape(expected[key].shape), expected[key]), key
        del read, layers
    new, out = tmp_path / "net_os8.prototxt", tmp_path / "converted.caffemodel"
    done = atrous(orig, "--os", "8", "--exact", "--weights", saved, "--weights-out", out, "-o", new)
    assert "weights" in done.stderr
    ran = forward(caffe, tmp_path, ("caffe-saved", orig, saved), [("converted", new, out)])
    assert ran["converted"]["differ"] == []


def test_init_weights_file_is_what_caffe_loads(caffe, tmp_path):
    orig, _, weights = prepared(tmp_path, MOBILENET)
    dump = tmp_path / "loaded.npz"
    forward(caffe, tmp_path, ("init-weights", orig, weights), [], dump=dump)
    with Weights(str(weights)) as w, np.load(dump) as loaded:
        written = {f"{n}/{i}": b.array() for n, l in w.by_name().items() for i, b in enumerate(l.blobs)}
        assert sorted(written) == sorted(loaded.files) and len(written) > 50
        for key in loaded.files:
            assert np.array_equal(written[key].reshape(loaded[key].shape), loaded[key]), key
        del written


# -- V1 files: Caffe's upgrade_net_proto_text is the reference --------------------

DEEPLAB_V1 = ["deeplabv1-largefov/test.prototxt", "deeplabv1-largefov/train.prototxt"]
DEEPLAB_TYPES = ("IMAGE_SEG_DATA", "DENSE_CRF", "INTERP", "MAT_WRITE", "SEG_ACCURACY")


def caffe_upgrade(caffe, text, folder):
    src, out = folder / "v1.prototxt", folder / "upgraded.prototxt"
    src.write_text(text)
    done = subprocess.run([str(caffe.tool("upgrade_net_proto_text")), str(src), str(out)],
                          capture_output=True, text=True, env=caffe.env())
    return done, out


def assert_same_network(ours, theirs_text):
    theirs = prototxt.parse(theirs_text, "caffe")[0]
    if ours != theirs:                     # show the first difference, layer by layer
        pairs = zip([str(l) for l in ours.layer], [str(l) for l in theirs.layer])
        first = next(((a, b) for a, b in pairs if a != b), (str(ours), str(theirs)))
        pytest.fail(f"caffe_atrous's upgrade differs from Caffe's:\n{first[0]}\n---\n{first[1]}")


def test_v1_vgg16_upgrade_is_caffes(caffe, tmp_path):
    text = zoo_text("vgg16-ilsvrc/VGG_ILSVRC_16_layers_deploy.prototxt")
    done, out = caffe_upgrade(caffe, text, tmp_path)
    assert done.returncode == 0, done.stderr
    ours = load_text(text, "vgg").net
    assert len(ours.layer) > 30
    assert_same_network(ours, out.read_text())


def without_fork_layers(text):
    """DeepLab v1's file less its own layer types (BVLC's V1 enum does not have them)."""
    blocks = re.split(r"(?m)^(?=layers\s*\{)", text)
    return "".join(b for b in blocks
                   if not any(re.search(rf"type:\s*{t}\b", b) for t in DEEPLAB_TYPES))


# DeepLab v1's spellings -> BVLC's (strict_dim has no V2 form: both upgrades drop it)
BVLC_SPELLING = [(r"\bhole:", "dilation:"), (r"\bsoftmaxloss_param\b", "loss_param"),
                 (r"(?m)^\s*strict_dim:.*$", "")]


@pytest.mark.parametrize("rel", DEEPLAB_V1)
def test_deeplab_v1_upgrade_is_caffes_where_caffe_can_read_it(caffe, tmp_path, rel):
    """Caffe's tool cannot read DeepLab v1's files; ours, upgraded, equal Caffe's upgrade of
    the same file in BVLC's spelling, less the layer types only DeepLab's Caffe has."""
    text = zoo_text(rel)
    refused, _ = caffe_upgrade(caffe, text, tmp_path)
    assert refused.returncode != 0 and "Error parsing text-format" in refused.stderr
    part = without_fork_layers(text)
    bvlc = part
    for pattern, spelling in BVLC_SPELLING:
        bvlc = re.sub(pattern, spelling, bvlc)
    assert bvlc != part
    done, out = caffe_upgrade(caffe, bvlc, tmp_path)
    assert done.returncode == 0, done.stderr
    ours = load_text(part, rel).net                      # ours reads DeepLab's spelling
    assert any(l.convolution_param.dilation for l in ours.layer)
    assert_same_network(ours, out.read_text())


# -- numpy 1.x and pycaffe beside the library -------------------------------------

def test_caffe_runs_on_numpy_1_and_the_suite_on_the_pinned_numpy(caffe):
    done = caffe_env.check(caffe.run("-c", "import numpy; print(numpy.__version__)"), "numpy")
    pins = (ROOT / "constraints.txt").read_text()
    assert f"numpy=={np.__version__}\n" in pins
    if caffe_env.uses_make_caffe_python(caffe):
        assert done.strip().startswith("1."), done


@pytest.mark.parametrize("order", ["caffe-first", "atrous-first"])
def test_library_beside_pycaffe_in_either_order(caffe, tmp_path, order):
    net = tmp_path / "net.prototxt"
    net.write_text(zoo_text(R50))
    out = caffe_env.check(caffe.worker("coexist", order, net), f"import order {order}")
    assert "Failed to include caffe_pb2" not in out      # pycaffe's own schema module loads
    record = json.loads(out.splitlines()[-1])
    assert record["changes"] > 0 and record["caffe_layers"] > 100
    assert record["hole_in_users_schema"] is False          # the user's caffe_pb2 is BVLC's


@pytest.mark.parametrize("order", ["caffe-first", "atrous-first"])
def test_a_pycaffe_message_comes_back_as_one_in_either_import_order(caffe, order):
    imports = ["import caffe", "from caffe.proto import caffe_pb2", "import caffe_atrous as ca"]
    if order == "atrous-first":
        imports = imports[2:] + imports[:2]
    code = "\n".join(imports) + f"""
from google.protobuf import text_format
msg = text_format.Parse(open({str(EXAMPLE)!r}).read(), caffe_pb2.NetParameter())
conv = ca.convert(msg, 8, exact=True, warn=False)
assert type(conv.net) is caffe_pb2.NetParameter, type(conv.net)
mine = ca.convert({str(EXAMPLE)!r}, 8, exact=True, warn=False)
assert type(mine.net) is not caffe_pb2.NetParameter
assert conv.net.SerializeToString() != b"" and text_format.MessageToString(conv.net) == \\
    text_format.MessageToString(caffe_pb2.NetParameter.FromString(conv.net.SerializeToString()))
print(sum(1 for l in conv.net.layer if list(l.convolution_param.dilation) == [2]))
"""
    out = caffe_env.check(caffe.run("-c", code), f"import order {order}")
    assert int(out.strip().splitlines()[-1]) > 0
