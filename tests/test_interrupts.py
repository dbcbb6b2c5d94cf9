"""Whatever stops a run, the output folder is left as it was (issue 18, item 5).

Command lines write a converted caffemodel of ~39 MB (`--weights-out`) and
are stopped with SIGTERM, SIGINT, SIGHUP or SIGKILL at chosen points of the
write. Sending a signal "about now" would test whatever the machine's load
makes of it (on a loaded 2-core machine one step of a SIGSTOP/SIGCONT walk
covers up to half of this write), so the child stops itself (SIGSTOP) at an
exact point: the command line's own entry point, run by `python -c` with one
function wrapped, before the write that begins at a given offset, or before
the rename that puts the file in place. While it is stopped, the test checks
through /proc/PID/fd and fdinfo that it is where it should be (the output
open, unnamed, at that offset), then sends the signal and SIGCONT. Two runs of
the plain `python -m caffe_atrous` are stopped wherever a walk finds them
inside the write.

In-process tests cover the writer's two routes (the unnamed O_TMPFILE and the
hidden named temporary it falls back to), its errors, and the handling of
signals in core/interrupts.py.
"""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
import threading
import time

import pytest

from caffe_atrous.cli import main
from caffe_atrous.core import atomic, interrupts
from caffe_atrous.core.atomic import atomic_file, write_text
from caffe_atrous.core.errors import AtrousError
from caffe_atrous.core.interrupts import Terminated, deferred, handling
from caffe_atrous.formats import pieces
from caffe_atrous.pipeline import invariants

from conftest import EXAMPLE, conv, layer, net, pool

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux's /proc")

# A VGG-like net whose weights make a ~39 MB caffemodel: 9.7 M float32 values.
WIDTHS = [64, 512, 512, 512, 512, 512]


def big_net() -> str:
    layers, bottom = [], "data"
    for i, n in enumerate(WIDTHS, 1):
        layers += [conv(f"conv{i}", bottom, n=n), layer(f"relu{i}", "ReLU", f"conv{i}", f"conv{i}")]
        bottom = f"conv{i}"
        if i < len(WIDTHS):
            layers.append(pool(f"pool{i}", bottom))
            bottom = f"pool{i}"
    return net(*layers, size=64)


# The command lines inherit the environment less the invariant check (time)
# and the debug switch (which lets a traceback through).
ENV = {k: v for k, v in os.environ.items() if k not in (invariants.ENV, "CAFFE_ATROUS_DEBUG")}
CLI = ("-m", "caffe_atrous")


def paused_cli(at: int | None = None, before_rename: bool = False, named: bool = False) -> tuple:
    """The command line, stopping itself before the write of the caffemodel that
    begins at offset `at` (or before the rename of its hidden name), with the
    writer's unnamed route refused (`named`), as on a file system without
    O_TMPFILE."""
    code = ["import os, signal",
            "from caffe_atrous.core import atomic",
            "from caffe_atrous.formats import pieces",
            "def pause():",
            "    os.kill(os.getpid(), signal.SIGSTOP)"]
    if at is not None:
        code += ["real_write, done = pieces._write_all, [0]",
                 "def write_all(fd, data):",
                 f"    if done[0] <= {at} < done[0] + len(data):",
                 "        pause()",
                 "    real_write(fd, data)",
                 "    done[0] += len(data)",
                 "pieces._write_all = write_all"]
    if before_rename:
        code += ["real_replace = os.replace",
                 "def replace(src, dst, **kw):",
                 "    if src.startswith('.o.caffemodel.'):",
                 "        pause()",
                 "    real_replace(src, dst, **kw)",
                 "os.replace = replace"]
    if named:
        code += ["atomic._Unnamed.create = classmethod(lambda cls, path: None)"]
    code += ["from caffe_atrous.cli import run", "run()"]
    return ("-c", "\n".join(code))


def _default_signals() -> None:
    """In the child: the stopping signals at their default, even where the test
    runs with them ignored (a background job, nohup)."""
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_DFL)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """(network, its ~39 MB caffemodel made by init-weights, the converted
    caffemodel's bytes)."""
    root = tmp_path_factory.mktemp("big")
    prototxt, weights = root / "net.prototxt", root / "net.caffemodel"
    prototxt.write_text(big_net())
    subprocess.run([sys.executable, *CLI, "init-weights", str(prototxt), "-o", str(weights), "-q"],
                   env=ENV, check=True, timeout=120)
    out = root / "whole"
    out.mkdir()
    done = subprocess.run([sys.executable, *CLI, str(prototxt), "-o", str(out / "o.prototxt"),
                           "--weights", str(weights), "--weights-out", str(out / "o.caffemodel"),
                           "-q"], env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(out)) == ["o.caffemodel", "o.prototxt"]
    converted = (out / "o.caffemodel").read_bytes()
    assert len(converted) > 35e6
    return prototxt, weights, converted


def snapshot(folder) -> dict[str, bytes]:
    """Every entry of the folder, hidden ones included, with its bytes."""
    return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder))}


class Run:
    """A command line writing o.prototxt and o.caffemodel into `folder`, which
    the test stops and looks at through /proc."""

    def __init__(self, cli: tuple, model, folder):
        prototxt, weights, _ = model
        self.folder = os.path.realpath(folder)
        self.weights = os.path.realpath(weights)
        self.proc = subprocess.Popen(
            [sys.executable, *cli, str(prototxt), "-o", str(folder / "o.prototxt"), "--weights",
             str(weights), "--weights-out", str(folder / "o.caffemodel"), "-q"],
            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=_default_signals)
        self.pid = self.proc.pid

    def state(self) -> str:
        try:
            with open(f"/proc/{self.pid}/stat") as fh:
                return fh.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return "X"

    def wait_stopped(self, pause: float = 0.001) -> bool:
        """True once the process is stopped, False if it ends instead."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = self.state()
            if state in ("T", "t"):
                return True
            if state in ("Z", "X"):
                return False
            time.sleep(pause)
        raise AssertionError("the process neither stopped nor ended within 60 s")

    def output(self) -> tuple[int, str, int] | None:
        """The caffemodel being written, while the source is open beside it: its
        fd, what /proc shows of it, the offset of its next write; None when
        the process has no temporary in the folder open."""
        files = {}
        for name in os.listdir(f"/proc/{self.pid}/fd"):
            try:
                files[int(name)] = os.readlink(f"/proc/{self.pid}/fd/{name}")
            except OSError:
                pass
        if self.weights not in files.values():
            return None
        for fd, shown in files.items():
            base = os.path.basename(shown)
            if os.path.dirname(shown) == self.folder and (
                    shown.endswith(" (deleted)") or base.startswith(".o.caffemodel.")):
                with open(f"/proc/{self.pid}/fdinfo/{fd}") as fh:
                    return fd, shown, int(fh.readline().split()[1])
        return None

    def finish(self, signum: int | None = None) -> tuple[int, str]:
        if signum is not None:
            os.kill(self.pid, signum)
        try:
            os.kill(self.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        _, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, err


def prepared(tmp_path, existing: bool, name: str = "out"):
    """An output folder, empty or holding the outputs of an earlier run."""
    folder = tmp_path / name
    folder.mkdir()
    if existing:
        (folder / "o.caffemodel").write_bytes(b"the weights of an earlier run")
        (folder / "o.prototxt").write_text("# an earlier run\n")
    return folder


def unnamed_files_here(folder) -> bool:
    """Does this file system give O_TMPFILE files (asked of the system, not of
    the writer under test)?"""
    try:
        os.close(os.open(folder, os.O_TMPFILE | os.O_WRONLY, 0o600))
        return True
    except (AttributeError, OSError):
        return False


@pytest.fixture
def unnamed(tmp_path):
    if not unnamed_files_here(tmp_path):
        pytest.skip("this file system has no O_TMPFILE (a killed run leaves its temporary)")


EXIT = {signal.SIGTERM: 143, signal.SIGINT: 130, signal.SIGHUP: 129, signal.SIGKILL: -9}
WHERE = {"first write": 0.0, "half written": 0.5, "last write": 1.0}
SIGNALS = [signal.SIGTERM, signal.SIGKILL, signal.SIGINT, signal.SIGHUP]


def _name(value) -> str:
    return value.name if isinstance(value, signal.Signals) else str(value).replace(" ", "-")


@pytest.mark.parametrize("signum,where,existing", [
    (signal.SIGTERM, "first write", False),
    (signal.SIGTERM, "half written", True),
    (signal.SIGTERM, "last write", False),
    (signal.SIGKILL, "first write", True),
    (signal.SIGKILL, "half written", False),
    (signal.SIGKILL, "last write", True),
    (signal.SIGINT, "half written", False),
    (signal.SIGHUP, "half written", True),
], ids=_name)
def test_a_run_stopped_in_the_write_leaves_the_folder_as_it_was(model, tmp_path, unnamed, signum,
                                                                  where, existing):
    converted = model[2]
    at = min(int(WHERE[where] * len(converted)), len(converted) - 1)
    folder = prepared(tmp_path, existing)
    before = snapshot(folder)
    run = Run(paused_cli(at=at), model, folder)
    assert run.wait_stopped(), run.finish()
    fd, shown, offset = run.output()
    # the output is open and has no name: nothing a kill could leave behind
    assert os.path.basename(shown).startswith("#") and shown.endswith(" (deleted)")
    assert snapshot(folder) == before
    assert offset <= at < offset + pieces._BUFFER and (at > 0) == (offset > 0)
    code, err = run.finish(signum)
    assert code == EXIT[signum]
    assert err == ""                                       # no traceback, no message
    assert snapshot(folder) == before


def test_sigterm_while_the_file_is_put_in_place_lets_it_finish(model, tmp_path, unnamed):
    """Over an older output, the finished file gets a hidden name and is renamed
    over it: a SIGTERM between the two waits for the rename (the caffemodel is
    the whole conversion), and the run stops before writing the prototxt."""
    folder = prepared(tmp_path, existing=True)
    before = snapshot(folder)
    run = Run(paused_cli(before_rename=True), model, folder)
    assert run.wait_stopped(), run.finish()
    (hidden,) = set(os.listdir(folder)) - set(before)       # the moment a name exists
    assert hidden.startswith(".o.caffemodel.") and hidden.endswith(".tmp")
    code, err = run.finish(signal.SIGTERM)
    assert (code, err) == (143, "")
    assert snapshot(folder) == {**before, "o.caffemodel": model[2]}


@pytest.mark.parametrize("existing", [False, True], ids=["new", "over-an-older-one"])
def test_sigterm_removes_the_named_temporary_where_there_is_no_unnamed_file(model, tmp_path,
                                                                             existing):
    folder = prepared(tmp_path, existing)
    before = snapshot(folder)
    run = Run(paused_cli(at=len(model[2]) // 2, named=True), model, folder)
    assert run.wait_stopped(), run.finish()
    _, shown, _ = run.output()
    hidden = os.path.basename(shown)
    assert hidden.startswith(".o.caffemodel.") and hidden.endswith(".tmp")
    assert sorted(os.listdir(folder)) == sorted([*before, hidden])  # the route: a named file
    code, err = run.finish(signal.SIGTERM)
    assert (code, err) == (143, "")
    assert snapshot(folder) == before


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=_name)
def test_the_plain_command_line_stopped_in_the_write(model, tmp_path, unnamed, signum):
    """`python -m caffe_atrous` as it is, walked in SIGSTOP/SIGCONT steps until
    a step finds it inside the write (a step may cover all of it: then again)."""
    for attempt in range(5):
        folder = prepared(tmp_path, existing=attempt % 2 == 1, name=f"out{attempt}")
        before = snapshot(folder)
        run = Run(CLI, model, folder)
        found = None
        while found is None:
            os.kill(run.pid, signal.SIGSTOP)
            if not run.wait_stopped(pause=0):
                break
            found = run.output()
            if found is None:
                os.kill(run.pid, signal.SIGCONT)
        if found is None:                                  # it ended: the step was too long
            code, err = run.finish()
            assert code == 0, err
            continue
        assert found[1].endswith(" (deleted)") and snapshot(folder) == before
        code, err = run.finish(signum)
        assert code == EXIT[signum] and err == ""
        assert snapshot(folder) == before
        return
    pytest.fail("five runs ended before a step found them inside the write")


def test_every_file_the_package_writes_goes_through_the_one_writer():
    """Files are created only in core/atomic.py; the one exception is verify's
    scratch prototxt, in a TemporaryDirectory of the system's (which a stop by
    any signal but SIGKILL removes)."""
    import ast
    from conftest import ROOT
    writers = {}
    for path in (ROOT / "caffe_atrous").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            modes = [*node.args[1:2], *(k.value for k in node.keywords if k.arg == "mode")]
            mode = "".join(str(m.value) for m in modes if isinstance(m, ast.Constant))
            if (name in ("open", "io.open") and any(c in mode for c in "wax+")) or \
                    name == "os.open" or name.endswith((".write_text", ".write_bytes")):
                writers.setdefault(path.name, []).append(name)
    assert set(writers) == {"atomic.py", "compare.py"}, writers
    assert writers["compare.py"] == ["open"]


# ----------------------------------------------------------- in-process --

def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def _refuse_o_tmpfile(monkeypatch, error: int) -> None:
    real = os.open

    def fake_open(path, flags, mode=0o777, **kw):
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            raise OSError(error, os.strerror(error))
        return real(path, flags, mode, **kw)
    monkeypatch.setattr(os, "open", fake_open)


@pytest.mark.parametrize("existing", [False, True], ids=["new", "over-an-older-one"])
def test_the_unnamed_file_has_no_name_until_it_is_complete(tmp_path, unnamed, umask_027, existing):
    out = tmp_path / "out.caffemodel"
    if existing:
        out.write_bytes(b"old")
    before, fds = snapshot(tmp_path), _fds()
    with atomic_file(str(out)) as fh:
        fh.write(b"new")
        fh.flush()
        assert snapshot(tmp_path) == before
        shown = os.readlink(f"/proc/self/fd/{fh.fileno()}")
        assert shown.startswith(f"{os.path.realpath(tmp_path)}/#") and shown.endswith("(deleted)")
    assert snapshot(tmp_path) == {"out.caffemodel": b"new"}
    assert stat.S_IMODE(out.stat().st_mode) == 0o640           # 0666 under the umask
    assert _fds() == fds


@pytest.mark.parametrize("refusal", ["EOPNOTSUPP", "EISDIR", "EINVAL", "no O_TMPFILE", "no /proc"])
def test_where_there_is_no_unnamed_file_a_named_temporary_is_used(tmp_path, monkeypatch, umask_027,
                                                                  refusal):
    if refusal == "no O_TMPFILE":
        monkeypatch.delattr(os, "O_TMPFILE", raising=False)
    elif refusal == "no /proc":
        monkeypatch.setattr(atomic, "_linkable", lambda fd: False)
    else:
        _refuse_o_tmpfile(monkeypatch, getattr(errno, refusal))
    out, fds = tmp_path / "out.prototxt", _fds()
    with atomic_file(str(out)) as fh:
        fh.write(b"text")
        (hidden,) = os.listdir(tmp_path)
        assert hidden.startswith(".out.prototxt.") and hidden.endswith(".tmp")
    assert snapshot(tmp_path) == {"out.prototxt": b"text"}
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert _fds() == fds
    with pytest.raises(KeyboardInterrupt):
        with atomic_file(str(out)) as fh:
            fh.write(b"half")
            raise Terminated(signal.SIGTERM)
    assert snapshot(tmp_path) == {"out.prototxt": b"text"}


def test_other_refusals_are_reported_as_before(tmp_path, monkeypatch):
    with pytest.raises(AtrousError, match="missing/out: cannot write here: No such file"):
        write_text(str(tmp_path / "missing" / "out"), "x")
    _refuse_o_tmpfile(monkeypatch, errno.EACCES)
    with pytest.raises(AtrousError, match="cannot write here: Permission denied"):
        write_text(str(tmp_path / "out"), "x")
    assert os.listdir(tmp_path) == []


def test_a_failed_rename_removes_the_hidden_name_and_keeps_the_older_file(tmp_path, unnamed,
                                                                         monkeypatch):
    out = tmp_path / "out"
    out.write_bytes(b"old")

    def replace(*args, **kw):
        assert len(os.listdir(tmp_path)) == 2            # out and the hidden name, for a moment
        raise OSError(errno.EIO, os.strerror(errno.EIO))
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(AtrousError, match="out: cannot write: Input/output error"):
        write_text(str(out), "new")
    assert snapshot(tmp_path) == {"out": b"old"}


def test_a_hidden_name_someone_holds_is_passed_over(tmp_path, unnamed, monkeypatch):
    (tmp_path / "out").write_bytes(b"old")
    (tmp_path / ".out.taken.tmp").write_bytes(b"theirs")
    names = iter([".out.taken.tmp", ".out.free.tmp"])
    monkeypatch.setattr(atomic, "_hidden_name", lambda base: next(names))
    write_text(str(tmp_path / "out"), "new")
    assert snapshot(tmp_path) == {".out.taken.tmp": b"theirs", "out": b"new"}


# ---------------------------------------------------- signals in-process --

@pytest.fixture
def default_signals():
    """The stopping signals at their defaults for the test, as they were after."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


def _send(signum: int) -> None:
    """A real signal to this process, only while it raises instead of killing."""
    assert signal.getsignal(signum) is interrupts._handler
    os.kill(os.getpid(), signum)
    time.sleep(0.001)                          # (delivered by now; the handler runs here)


def test_a_signal_inside_deferred_is_raised_at_its_end(default_signals):
    done = []
    with handling():
        with pytest.raises(Terminated) as stopped:
            with deferred():
                _send(signal.SIGTERM)
                done.append("the block ran whole")
        assert done and stopped.value.exit_code == 143
        assert str(stopped.value) == "stopped by SIGTERM"


def test_once_a_stop_is_under_way_further_signals_are_ignored(default_signals):
    with handling():
        with pytest.raises(KeyboardInterrupt):
            _send(signal.SIGINT)
        _send(signal.SIGTERM)
        _send(signal.SIGHUP)


def test_handlers_are_put_back_and_ignored_signals_stay_ignored(default_signals):
    def mine(signum, frame):
        pass
    signal.signal(signal.SIGHUP, signal.SIG_IGN)           # nohup
    signal.signal(signal.SIGINT, mine)                     # a program that calls main()
    with handling():
        assert signal.getsignal(signal.SIGTERM) is interrupts._handler
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGINT) is mine
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is mine


def test_main_answers_sigterm_in_the_write_with_143_and_no_file(tmp_path, monkeypatch,
                                                                default_signals, capsys):
    """SIGTERM while the reader thread fills buffers: the reader stops, the
    output is discarded, main() says nothing and returns 143."""
    from caffe_atrous import api
    weights = tmp_path / "w.caffemodel"
    api.init_weights(EXAMPLE, weights)
    folder = tmp_path / "out"
    folder.mkdir()
    monkeypatch.setattr(pieces, "_BUFFER", 64)
    real, calls = pieces._write_all, []

    def write_all(fd, data):
        calls.append(len(data))
        if len(calls) == 3:
            _send(signal.SIGTERM)
        real(fd, data)
    monkeypatch.setattr(pieces, "_write_all", write_all)
    code = main([str(EXAMPLE), "-o", str(folder / "o.prototxt"), "--weights", str(weights),
                 "--weights-out", str(folder / "o.caffemodel")])
    assert code == 143 and len(calls) == 3
    assert os.listdir(folder) == [] and capsys.readouterr().err == ""
    assert not any(t.name == "caffe_atrous pieces reader" for t in threading.enumerate())
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
