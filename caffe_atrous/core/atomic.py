"""Writing a file so that it is either complete or absent.

Everything caffe_atrous writes (prototxt, reports, caffemodels, the cache of
compiled schemas) goes through atomic_file. The content goes to a hidden
temporary `.NAME.XXXXXXXX.tmp` beside the destination, which replaces it only
once it is complete. An error or a stopping signal (interrupts.py) removes the
temporary and leaves an existing destination untouched; the steps that put the
file in place or remove the temporary are not cut by a signal.

The new file has the permissions a plain open() would give under the umask
(mkstemp's would be 0600), and nothing is fsynced.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import BinaryIO, Iterator

from .errors import AtrousError
from .interrupts import deferred


@contextmanager
def atomic_file(path: str) -> Iterator[BinaryIO]:
    """A binary file to write; it becomes `path` when the block ends without an
    exception, and is discarded otherwise. OS errors become one AtrousError."""
    out = None
    try:
        with deferred():                         # so that `out` is known once it exists
            out = _create(path)
        fh = os.fdopen(out.fd, "wb", closefd=False)
        try:
            yield fh
            fh.close()                           # flushes: a full disk says so here
        finally:
            if not fh.closed:                    # on the way out of an error: not worth a flush
                _close_quietly(fh)
        with deferred():
            out.commit()
    except BaseException as exc:
        if out is not None:
            with deferred():
                out.discard()
        if isinstance(exc, OSError):
            raise AtrousError(f"cannot write: {exc.strerror}", file=path) from None
        raise
    finally:
        if out is not None:
            out.close()


def _create(path: str) -> "_Named":
    try:
        return _Named.create(path)
    except OSError as exc:
        raise AtrousError(f"cannot write here: {exc.strerror}", file=path) from None


def write_text(path: str, text: str) -> None:
    """Write UTF-8 text to path atomically."""
    with atomic_file(path) as fh:
        fh.write(text.encode("utf-8"))


def _close_quietly(fh) -> None:
    try:
        fh.close()
    except OSError:
        pass


def _hidden_name(base: str) -> str:
    return f".{base}.{os.urandom(4).hex()}.tmp"


class _Named:
    """A hidden named file beside the destination, renamed over it by commit()."""

    def __init__(self, fd: int, tmp: str, path: str):
        self.fd, self._tmp, self._path = fd, tmp, path

    @classmethod
    def create(cls, path: str) -> "_Named":
        folder, base = os.path.split(os.path.abspath(path))
        while True:
            tmp = os.path.join(folder, _hidden_name(base))
            try:
                return cls(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp, path)
            except FileExistsError:
                continue

    def commit(self) -> None:
        self.close()                             # (a rename of an open file fails on Windows)
        os.replace(self._tmp, self._path)
        self._tmp = None

    def discard(self) -> None:
        if self._tmp is not None:
            try:
                os.unlink(self._tmp)
            except OSError:
                pass
            self._tmp = None

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
