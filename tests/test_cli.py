"""The command line as a Makefile runs it: exit codes, one-line errors, files."""

import subprocess
import sys
from pathlib import Path

import pytest

from caffe_atrous import __version__
from caffe_atrous.cli import main

from conftest import EXAMPLE, ROOT, conv, net


def run(*args, stdin=None, cwd=None):
    """Run `python -m caffe_atrous` as a user would; returns (code, stdout, stderr)."""
    p = subprocess.run([sys.executable, "-m", "caffe_atrous", *map(str, args)], input=stdin,
                       capture_output=True, text=True, cwd=cwd or ROOT)
    return p.returncode, p.stdout, p.stderr


def one_line_error(stderr):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("caffe_atrous: error: ") and "Traceback" not in stderr
    return lines[0]


def test_convert_writes_the_file_and_a_summary(tmp_path):
    out = tmp_path / "os8.prototxt"
    code, stdout, stderr = run(EXAMPLE, "-o", out)
    assert code == 0 and stdout == ""
    assert stderr.strip().splitlines()[-1] == "converted 6 layers: output stride 32 -> 8"
    assert "dilation: 2" in out.read_text()


def test_quiet_and_verbose(tmp_path):
    out = tmp_path / "o.prototxt"
    code, _, stderr = run(EXAMPLE, "-o", out, "-q")
    assert code == 0 and "converted" not in stderr
    code, _, stderr = run(EXAMPLE, "-o", out, "-v")
    assert "conv4_1_3x3  " in stderr and "k3 s2 p1 d1" in stderr and "k3 s1 p2 d2" in stderr


def test_stdin_to_stdout():
    code, stdout, _ = run("-", "-o", "-", "--output-stride", "16", stdin=EXAMPLE.read_text())
    assert code == 0 and 'name: "conv4_1_3x3"' in stdout and "dilation: 2" in stdout


def test_output_is_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    run(EXAMPLE, "-o", a)
    run(EXAMPLE, "-o", b)
    assert a.read_bytes() == b.read_bytes()


def test_check_mode(tmp_path):
    out = tmp_path / "o.prototxt"
    code, _, stderr = run(EXAMPLE, "-o", out, "--check")
    assert code == 1 and "is missing" in one_line_error(stderr) and not out.exists()
    run(EXAMPLE, "-o", out)
    assert run(EXAMPLE, "-o", out, "--check")[0] == 0
    code, _, stderr = run(EXAMPLE, "-o", out, "--check", "--exact")
    assert code == 1 and "differs" in stderr


def test_usage_errors_exit_2(tmp_path):
    code, _, stderr = run()
    assert code == 2 and "IN" in one_line_error(stderr)
    code, _, stderr = run(EXAMPLE, "--output-stride", "zero")
    assert code == 2 and "whole number" in one_line_error(stderr)
    code, _, stderr = run(tmp_path / "missing.prototxt", "-o", tmp_path / "x")
    assert code == 2 and "missing.prototxt: no such file" in one_line_error(stderr)
    code, _, stderr = run(EXAMPLE, "--from", "conv4_1_3x3", "--output-stride", "8")
    assert code == 2
    code, _, stderr = run(EXAMPLE, "--input-shape", "1,3,big")
    assert code == 2 and "N,C,H,W" in one_line_error(stderr)


def test_never_overwrites_the_input(tmp_path):
    src = tmp_path / "net.prototxt"
    src.write_text(EXAMPLE.read_text())
    before = src.read_bytes()
    code, _, stderr = run(src, "-o", src)
    assert code == 2 and "never overwrites its input" in one_line_error(stderr)
    assert src.read_bytes() == before
    code, _, _ = run("net.prototxt", "-o", "./net.prototxt", cwd=tmp_path)
    assert code == 2 and src.read_bytes() == before


@pytest.mark.parametrize("text,pattern", [
    ('layer { name: "a" type: "Convolution"\n  convolution_param { kernal_size: 3 } }\n',
     r"bad.prototxt:2:23: unknown field 'kernal_size'"),
    ('layer {\n  name: "a"\n', r"bad.prototxt:2:\d+: the file ends inside a block: expected \"}\""),
    (net(conv("c1", "data"), conv("c2", "nothing")), r"bad.prototxt:4: layer 'c2': bottom 'nothing'"),
    (net(conv("c1", "data"), conv("c1", "c1")),
     r"bad.prototxt:4: layer 'c1': duplicate layer name: an earlier layer \(line 3\)"),
    (net(conv("c1", "data", s=2)), r"bad.prototxt: output stride 8 is larger than the network.s own "
     r"output stride 2 and no stride can be put back to reach it .*; reachable: 1, 2"),
    ("\x00\x01binary", r"bad.prototxt:1:1: "),
])
def test_bad_input_gives_one_line_and_no_output(tmp_path, text, pattern):
    src = tmp_path / "bad.prototxt"
    src.write_text(text)
    out = tmp_path / "out.prototxt"
    code, stdout, stderr = run("bad.prototxt", "-o", out, cwd=tmp_path)
    assert code == 1 and stdout == ""
    import re
    assert re.search(pattern, one_line_error(stderr)), stderr
    assert not out.exists() and list(tmp_path.iterdir()) == [src]


def test_unwritable_output_leaves_nothing(tmp_path):
    code, _, stderr = run(EXAMPLE, "-o", tmp_path / "no" / "such" / "dir.prototxt")
    assert code == 1 and "cannot write" in one_line_error(stderr)
    a_file = tmp_path / "plain.txt"
    a_file.write_text("")
    code, _, stderr = run(EXAMPLE, "-o", a_file / "x.prototxt")      # a file is not a folder
    assert code == 1 and "cannot write" in one_line_error(stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.txt"]


def test_existing_output_is_replaced_whole_or_not_at_all(tmp_path):
    out = tmp_path / "o.prototxt"
    out.write_text("previous content\n")
    bad = tmp_path / "bad.prototxt"
    bad.write_text(net(conv("c1", "data"), conv("c2", "nothing")))
    assert run(bad, "-o", out)[0] == 1
    assert out.read_text() == "previous content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.prototxt", "o.prototxt"]


def test_version_and_help():
    code, stdout, _ = run("--version")
    assert code == 0 and stdout.strip() == f"caffe-atrous {__version__}"
    code, stdout, _ = run("--help")
    assert code == 0 and "examples:" in stdout and "--exact" in stdout and "--from" in stdout


def test_warnings_and_v1_note_go_to_stderr(tmp_path, capsys):
    v1 = tmp_path / "v1.prototxt"
    v1.write_text('input: "data" input_dim: 1 input_dim: 3 input_dim: 33 input_dim: 33\n'
                  'layers { name: "c1" type: CONVOLUTION bottom: "data" top: "c1" '
                  'convolution_param { num_output: 2 kernel_size: 3 stride: 2 } }\n'
                  'layers { name: "p" type: POOLING bottom: "c1" top: "p" '
                  'pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n'
                  'layers { name: "c2" type: CONVOLUTION bottom: "p" top: "c2" '
                  'convolution_param { num_output: 2 kernel_size: 3 } }\n')
    code = main([str(v1), "-o", str(tmp_path / "o.prototxt"), "--output-stride", "1"])
    err = capsys.readouterr().err
    assert code == 0
    assert "caffe_atrous: note: " in err and "legacy V1" in err
    assert "caffe_atrous: warning: layer 'p': pooling 2x2 reads 'c1'" in err
    assert "layers {" not in (tmp_path / "o.prototxt").read_text()


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "caffe-atrous"
    assert script.exists()
    p = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert p.returncode == 0 and __version__ in p.stdout


def test_a_bug_is_one_line_too(tmp_path, capsys, monkeypatch):
    import caffe_atrous.cli.commands as cli

    def broken(*a, **k):
        raise RuntimeError("boom")
    monkeypatch.setattr(cli.api, "convert_loaded", broken)
    monkeypatch.delenv("CAFFE_ATROUS_DEBUG", raising=False)
    assert main([str(EXAMPLE), "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert one_line_error(err).startswith("caffe_atrous: error: internal error (RuntimeError: boom)")
    assert not (tmp_path / "o").exists()


def test_init_weights_quiet_and_verbose(tmp_path, capsys):
    out = tmp_path / "w.caffemodel"
    assert main(["init-weights", str(EXAMPLE), "-o", str(out), "-q"]) == 0
    assert capsys.readouterr().err == "" and out.stat().st_size > 0
    assert main(["init-weights", str(EXAMPLE), "-o", str(out), "-v"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "init-weights: conv1: 16x3x3x3" and "init-weights: conv1_bn: 16, 16, 1" in err
    assert err[-1].startswith("init-weights: ") and "layers with random weights written" in err[-1]
    assert main(["init-weights", str(EXAMPLE), "-o", str(out), "-q", "-v"]) == 2



def test_a_file_name_with_braces_is_a_file_not_text(tmp_path, capsys):
    src = tmp_path / "net{os8}.prototxt"
    src.write_text(EXAMPLE.read_text())
    assert main([str(src), "-o", str(tmp_path / "out.prototxt"), "-q"]) == 0
    assert "dilation: 2" in (tmp_path / "out.prototxt").read_text()
