"""Writing a file so that it is either complete or absent.

Everything caffe_atrous writes (prototxt, report, caffemodel) goes to a
temporary file beside the target, which replaces the target only once it is
complete. An error or an interruption leaves no partial file and an existing
target untouched.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import BinaryIO, Callable, Iterator

from .errors import AtrousError


@contextmanager
def atomic_file(path: str, check: Callable[[str], None] | None = None) -> Iterator[BinaryIO]:
    """A binary file to write; it becomes `path` when the block ends without an
    exception (and `check`, given the complete file's path, raises none), and is
    removed otherwise. OS errors become one AtrousError."""
    try:
        fd, tmp = _create_beside(path)
    except OSError as exc:
        raise AtrousError(f"cannot write here: {exc.strerror}", file=path) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        if check is not None:
            check(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise AtrousError(f"cannot write: {exc.strerror}", file=path) from None
        raise


def _create_beside(path: str) -> tuple[int, str]:
    """A new file in path's folder, with the permissions a plain open() would
    give (mkstemp's would be 0600)."""
    folder, base = os.path.split(os.path.abspath(path))
    while True:
        tmp = os.path.join(folder, f".{base}.{os.urandom(4).hex()}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def write_text(path: str, text: str) -> None:
    """Write UTF-8 text to path atomically."""
    with atomic_file(path) as fh:
        fh.write(text.encode("utf-8"))
