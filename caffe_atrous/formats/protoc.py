"""A user's own caffe.proto (`--proto FILE`), compiled at run time and cached.

A fork's schema is compiled with the protoc that grpcio-tools ships (the
optional extra `proto`) into a FileDescriptorSet, and loaded like the built-in
one (schema.Schema). The set is cached by the .proto file's sha256 in
${XDG_CACHE_HOME:-~/.cache}/caffe-atrous/proto/<sha256>.desc, so only the
first run with a given file starts protoc.

    schema = load("my-fork/caffe.proto")
    net, source = prototxt.parse(text, path, schema)
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from google.protobuf.message import DecodeError

from ..core.atomic import atomic_file
from ..core.errors import AtrousError, UsageError
from .schema import Schema

INSTALL = "pip install 'caffe-atrous[proto]'"

# protoc's error lines: "file.proto:12:5: message".
_LOCATED = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?P<column>\d+): (?P<message>.+)$")


def cache_dir() -> Path:
    """Where compiled descriptor sets are kept (never inside the package)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "caffe-atrous" / "proto"


def load(path: str) -> Schema:
    """The schema of the .proto file at `path`, from the cache or compiled now."""
    try:
        source = Path(path).read_bytes()
    except FileNotFoundError:
        raise UsageError("--proto: no such file", file=path) from None
    except IsADirectoryError:
        raise UsageError("--proto: is a directory, not a .proto file", file=path) from None
    except OSError as exc:
        raise UsageError(f"--proto: cannot read: {exc.strerror}", file=path) from None
    cached = cache_dir() / f"{hashlib.sha256(source).hexdigest()}.desc"
    try:
        return Schema(cached.read_bytes(), path)
    except (OSError, DecodeError, TypeError):
        pass                   # not compiled yet, or an unreadable or damaged cache entry
    data = _compile(Path(path))
    schema = Schema(data, path)                # refuses a set without NetParameter
    _store(cached, data)
    return schema


def _compile(path: Path) -> bytes:
    """Run protoc on `path`; its own message (file:line:column) on failure."""
    if importlib.util.find_spec("grpc_tools") is None:
        raise UsageError(f"--proto needs protoc from grpcio-tools: {INSTALL}")
    with tempfile.TemporaryDirectory(prefix="caffe-atrous-proto-") as tmp:
        out = os.path.join(tmp, "schema.desc")
        folder = path.resolve().parent
        done = subprocess.run(
            [sys.executable, "-m", "grpc_tools.protoc", f"-I{folder}", "--include_imports",
             f"--descriptor_set_out={out}", str(path.resolve())],
            capture_output=True, text=True, check=False)
        if done.returncode != 0 or not os.path.isfile(out):
            raise _protoc_error(done.stderr or done.stdout, path)
        with open(out, "rb") as fh:
            return fh.read()


def _protoc_error(output: str, path: Path) -> AtrousError:
    """protoc's first error as one line, located in the user's file where it is."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "warning" not in line.lower()] or lines
    first = errors[0] if errors else "protoc failed without a message"
    m = _LOCATED.match(first)
    if m is None:
        return AtrousError(f"--proto: does not compile: {first}", file=str(path))
    shown = str(path) if Path(m["file"]).name == path.name else m["file"]
    return AtrousError(f"--proto: does not compile: {m['message']}", file=shown,
                       line=int(m["line"]), column=int(m["column"]))


def _store(cached: Path, data: bytes) -> None:
    """Keep the compiled set for the next run; a cache that cannot be written
    only costs the next run a compilation."""
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(str(cached)) as fh:
            fh.write(data)
    except (OSError, AtrousError):
        pass
