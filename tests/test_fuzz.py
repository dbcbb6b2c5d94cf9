"""Fuzzing the command line, in process: mutated prototxts (zoo, suite nets, the
example) and damaged caffemodels, with every option family.

Whatever the input, caffe_atrous must exit 0, 1 or 2, never with an internal
error, write nothing when it fails (no output, no temporary file), and leave its
input untouched. The cases are seeded: CAFFE_ATROUS_FUZZ_SEED picks the run,
CAFFE_ATROUS_FUZZ_N the number of prototxt cases (CAFFE_ATROUS_FUZZ_WEIGHTS_N the
caffemodel cases); a failure names its case number, which reproduces it alone
(CAFFE_ATROUS_FUZZ_CASE). `make fuzz N=...` runs more cases.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from caffe_atrous.cli import main

import fuzzing
from fuzzing import Bases, layer_names, mutate, rng

ONLY = os.environ.get("CAFFE_ATROUS_FUZZ_CASE")
PRESETS = ("deeplab-v2", "deeplab-v3", "r-fcn", "pspnet", "exact-os16", "exact-os8")


def _cases(total: int) -> range:
    return range(int(ONLY), int(ONLY) + 1) if ONLY else range(total)


def convert_options(r: random.Random, names: list[str], folder: Path) -> list[str]:
    """A random command line for the converter (without IN)."""
    out = str(folder / "out.prototxt")
    argv = ["-o", r.choice([out, out, out, "-"])]
    bogus = "no_such_layer"
    if r.random() < 0.2:
        argv += ["--from", r.choice(names + [bogus]) if names else bogus]
    elif r.random() < 0.7:
        argv += ["--output-stride", r.choice(["1", "2", "4", "8", "8", "16", "32", "3"])]
    if r.random() < 0.3:
        argv.append("--exact")
    if r.random() < 0.1:
        argv += ["--multi-grid", r.choice(["1,2,4", "1,2", "2", "1,1,1,1"])]
    if r.random() < 0.2:
        s = r.choice([1, 2, 5, 17, 33, 65, 129])
        argv += ["--input-shape", f"1,3,{s},{s}"]
    if r.random() < 0.15:
        argv += ["--truncate-after", r.choice(names + [bogus]) if names else bogus]
    if r.random() < 0.2:
        argv.append("--report")
    if r.random() < 0.15:
        argv += ["--report-json", str(folder / "report.json")]
    if r.random() < 0.15:
        argv.append("--diff")
    if r.random() < 0.1:
        argv.append("--canonical")
    if r.random() < 0.05:
        argv += ["--config", r.choice(PRESETS)]
    if r.random() < 0.05:
        argv.append("--check")
    argv.append(r.choice(["-q", "-v", "-q", ""]))
    return [a for a in argv if a]


def _run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:                  # --help/--version: argparse exits itself
        code = exc.code
    captured = capsys.readouterr()
    if argv[0] == "verify" and code == 1 and "verify: FAIL" in captured.out:
        return 0, captured.err           # a verdict, on stdout: not an error
    return code, captured.err


def _check(case: str, argv: list[str], code, err: str, folder: Path, inputs: dict[Path, bytes],
           outputs: set[str]) -> list[str]:
    """What is wrong with one run (empty: nothing)."""
    problems = []
    if code not in (0, 1, 2):
        problems.append(f"exit code {code!r}")
    if "internal error" in err or "internal check failed" in err or "Traceback" in err:
        problems.append(err.strip().splitlines()[-1] if err.strip() else "internal error")
    left = {p.name for p in folder.iterdir()} - {p.name for p in inputs}
    if any(n.endswith(".tmp") for n in left):
        problems.append(f"temporary files left: {sorted(left)}")
    if code != 0:
        lines = err.strip().splitlines()
        if len(lines) != 1 or not lines[0].startswith("caffe_atrous: error: "):
            problems.append(f"not a one-line error: {err!r}")
        if left and "--check" not in argv:
            problems.append(f"failed but wrote {sorted(left)}")
    elif not left <= outputs:
        problems.append(f"unexpected files {sorted(left - outputs)}")
    for path, data in inputs.items():
        if path.read_bytes() != data:
            problems.append(f"input {path.name} changed")
    for name in left:
        (folder / name).unlink()
    return [f"{case}: {p}\n    argv: {argv}" for p in problems]


@pytest.fixture(scope="module")
def bases():
    return Bases()


# protobuf's own text parser warns about escapes like "\e" that mutations make
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_mutated_prototxts(tmp_path, capsys, bases):
    problems, outcomes = [], {0: 0, 1: 0, 2: 0}
    src = tmp_path / "in.prototxt"
    for case in _cases(fuzzing.CASES):
        r = rng("prototxt", case)
        base, text = bases.pick(r)
        text, how = mutate(text, r)
        data = text.encode("utf-8", "surrogatepass")
        src.write_bytes(data)
        if r.random() < 0.03:
            argv = ["init-weights", str(src), "-o", str(tmp_path / "w.caffemodel"),
                    r.choice(["-q", "-v"])]
        else:
            argv = [str(src)] + convert_options(r, layer_names(text), tmp_path)
        code, err = _run(argv, capsys)
        outcomes[code] = outcomes.get(code, 0) + 1
        problems += _check(f"case {case} ({base}, {', '.join(how) or 'unchanged'})", argv, code,
                           err, tmp_path, {src: data},
                           {"out.prototxt", "report.json", "w.caffemodel"})
    print(f"prototxt cases: {sum(outcomes.values())}, exit codes {outcomes}")
    assert not problems, "\n".join(problems[:20])
    if not ONLY and fuzzing.CASES >= 1000:   # mutations neither so harsh that nothing
        assert outcomes[0] > fuzzing.CASES // 10 and outcomes[1] > fuzzing.CASES // 10, outcomes


WEIGHT_NETS = ("plain", "residual", "inception", "legacy", "example")


@pytest.fixture(scope="module")
def weight_bases(tmp_path_factory, bases):
    """(name, network, its caffemodel's bytes, the network converted --exact) per base."""
    folder = tmp_path_factory.mktemp("weight_bases")
    out = []
    for name in WEIGHT_NETS:
        net = folder / f"{name}.prototxt"
        net.write_text(bases.example if name == "example" else bases.suite[name])
        weights, converted = folder / f"{name}.caffemodel", folder / f"{name}_exact.prototxt"
        assert main(["init-weights", str(net), "-o", str(weights), "-q"]) == 0
        assert main([str(net), "-o", str(converted), "--exact", "--output-stride", "8", "-q"]) == 0
        out.append((name, net, weights.read_bytes(), converted))
    return out


def weights_options(r: random.Random, folder: Path) -> list[str]:
    argv = ["--weights", str(folder / "in.caffemodel")]
    if r.random() < 0.5:
        argv += ["--weights-out", str(folder / "out.caffemodel")]
    argv += r.choice([["--output-stride", "8"], ["--output-stride", "16"], ["--exact"],
                      ["--output-stride", "4", "--exact"], []])
    if r.random() < 0.2:
        argv += ["--input-shape", f"1,3,{r.choice([33, 65, 129])},{r.choice([33, 65, 129])}"]
    if r.random() < 0.1:
        argv.append("--check")
    return argv + [r.choice(["-q", "-v", "--report"])]


def test_damaged_caffemodels(tmp_path, capsys, weight_bases):
    problems, outcomes = [], {0: 0, 1: 0, 2: 0}
    src = tmp_path / "in.caffemodel"
    verify_every = 50          # `verify` runs OpenCV: where it is missing, a clean exit 2
    for case in _cases(fuzzing.WEIGHT_CASES):
        r = rng("caffemodel", case)
        name, net, data, converted = r.choice(weight_bases)
        data, how = fuzzing.damage(data, r)
        src.write_bytes(data)
        if verify_every and case % verify_every == 0:
            argv = ["verify", str(net), str(converted), str(src), "-q"]
        else:
            argv = [str(net), "-o", str(tmp_path / "out.prototxt")] + weights_options(r, tmp_path)
        code, err = _run(argv, capsys)
        outcomes[code] = outcomes.get(code, 0) + 1
        problems += _check(f"case {case} ({name}, {', '.join(how) or 'unchanged'})", argv, code, err,
                           tmp_path, {src: data, net: net.read_bytes()},
                           {"out.prototxt", "out.caffemodel"})
    print(f"caffemodel cases: {sum(outcomes.values())}, exit codes {outcomes}")
    assert not problems, "\n".join(problems[:20])
    if not ONLY and fuzzing.WEIGHT_CASES >= 1000:     # converts, nor so mild that all do
        assert outcomes[0] > fuzzing.WEIGHT_CASES // 10 and outcomes[1] > fuzzing.WEIGHT_CASES // 10
