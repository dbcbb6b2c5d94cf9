"""Runs inside the real-Caffe environment (pycaffe on PYTHONPATH), one command per process;
tests/test_real_caffe.py starts it through caffe_env. Each result is one JSON line on stdout.

    forward SPEC.json    load networks with weights, compare their parameters with a
                         reference network's, run a forward pass (see forward())
    blob NET W X.npy BLOB OUT.npy
                         run NET with weights W on the input X (blob "data") through
                         caffe_atrous's CaffeRunner and save BLOB
    save NET OUT.caffemodel OUT.npz SEED
                         give NET seeded random parameters, save them with Caffe's own
                         net.save, and the same values as .npz
    coexist ORDER NET    import caffe and caffe_atrous in ORDER (caffe-first|atrous-first),
                         convert NET (written to NET.os8), and check that both schemas work

A Caffe abort kills the process: the last "begin" line then names the case that died.
"""

import json
import sys

import numpy as np


def say(**record):
    print(json.dumps(record), flush=True)


def load(caffe, prototxt, weights=None):
    """A TEST-phase net whose inputs are cut to a batch of one. Net(prototxt, phase) and
    copy_from: the form both BVLC's pycaffe and PSPNet's older one (no weights=) have."""
    net = caffe.Net(prototxt, caffe.TEST)
    if weights:
        net.copy_from(weights)
    for name in net.inputs:
        shape = net.blobs[name].data.shape
        net.blobs[name].reshape(1, *shape[1:])
    net.reshape()
    return net


def run_forward(net, seed=0):
    rng = np.random.default_rng(seed)
    for name in net.inputs:
        blob = net.blobs[name]
        blob.data[...] = rng.standard_normal(blob.data.shape)
    out = net.forward()
    finite = all(bool(np.isfinite(v).all()) for v in out.values())
    return {k: list(v.shape) for k, v in out.items()}, finite


def params(net):
    return {name: [b.data.copy() for b in blobs] for name, blobs in net.params.items()}


def compare_params(mine, reference):
    """Layers whose parameters differ from the reference's (missing there, or other values)."""
    differ = []
    for name, blobs in mine.items():
        ref = reference.get(name)
        if ref is None or len(ref) != len(blobs) or any(
                a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(blobs, ref)):
            differ.append(name)
    return differ


def forward(spec_path):
    """SPEC: {"reference": CASE, "cases": [CASE...], "dump": NPZ or null},
    CASE: {"case", "prototxt", "weights"}. Each case's record lists the layers whose
    parameters differ from the reference's and the reference's layers it does not have."""
    import caffe
    caffe.set_mode_cpu()
    spec = json.loads(open(spec_path).read())
    ref = spec["reference"]
    say(begin=ref["case"])
    net = load(caffe, ref["prototxt"], ref["weights"])
    reference = params(net)
    if spec.get("dump"):            # what Caffe loaded, for comparing with the file's values
        np.savez(spec["dump"], **{f"{n}/{i}": a for n, blobs in reference.items()
                                   for i, a in enumerate(blobs)})
    outputs, finite = run_forward(net)
    say(done=ref["case"], outputs=outputs, finite=finite, params=len(reference))
    del net
    for case in spec["cases"]:
        say(begin=case["case"])
        net = load(caffe, case["prototxt"], case["weights"])
        mine = params(net)
        outputs, finite = run_forward(net)
        say(done=case["case"], outputs=outputs, finite=finite, params=len(mine),
            differ=compare_params(mine, reference), dropped=sorted(set(reference) - set(mine)))
        del net


def blob(prototxt, weights, x_path, name, out_path):
    from caffe_atrous.verification.runners import CaffeRunner
    x = np.load(x_path)
    runner = CaffeRunner()
    out = runner.run(prototxt, weights, {"data": x}, {name: name})[name]
    np.save(out_path, out)
    say(done=name, shape=list(out.shape), numpy=np.__version__, engine=runner.version())


def save(prototxt, out_path, npz_path, seed):
    import caffe
    net = load(caffe, prototxt)
    rng = np.random.default_rng(int(seed))
    arrays = {}
    for name, blobs in net.params.items():
        for i, b in enumerate(blobs):
            # positive values keep BatchNorm's variance and scale factor meaningful
            b.data[...] = rng.uniform(0.5, 1.5, b.data.shape)
            arrays[f"{name}/{i}"] = b.data.copy()
    net.save(out_path)
    np.savez(npz_path, **arrays)
    say(done=out_path, blobs=len(arrays))


def coexist(order, prototxt):
    if order == "caffe-first":
        import caffe
        from caffe_atrous.pipeline.conversion import convert_text
    else:
        from caffe_atrous.pipeline.conversion import convert_text
        import caffe
    from caffe.proto import caffe_pb2
    from google.protobuf import text_format
    from caffe_atrous.rewrite.plan import Options

    result = convert_text(open(prototxt).read(), prototxt, Options(output_stride=8))
    # pycaffe's own schema reads the conversion, and Caffe builds the converted net
    users = text_format.Parse(result.text, caffe_pb2.NetParameter())
    converted = prototxt + ".os8"
    with open(converted, "w") as fh:
        fh.write(result.text)
    net = caffe.Net(converted, caffe.TEST)
    # the fork field `hole` is caffe_atrous's, never pycaffe's
    hole_in_users = "hole" in caffe_pb2.ConvolutionParameter.DESCRIPTOR.fields_by_name
    say(done=order, changes=len(result.plan.changes), layers=len(users.layer),
        caffe_layers=len(net.layers), hole_in_users_schema=hole_in_users,
        users_module=caffe_pb2.__name__)


COMMANDS = {"forward": forward, "blob": blob, "save": save, "coexist": coexist}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
