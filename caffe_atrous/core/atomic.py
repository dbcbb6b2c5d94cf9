"""Writing a file so that it is either complete or absent.

Everything caffe_atrous writes (prototxt, reports, caffemodels, the cache of
compiled schemas) goes through atomic_file. The content goes to a temporary
file in the destination's folder, which becomes the destination only once it
is complete. An error or a stopping signal (interrupts.py) discards it, and
leaves an existing destination untouched.

Where the system has unnamed files (Linux's O_TMPFILE, on the usual local file
systems) the temporary has no name at all while it is written: the kernel
frees it when the process ends, however it ends, SIGKILL included. At the end
it is linked into the folder (linkat through /proc/self/fd); over an existing
destination, which a link cannot replace, it is linked to a hidden name and
renamed over the destination at once, so a named file exists only for the
moment between those two calls. Elsewhere (other systems, file systems that
refuse O_TMPFILE, no /proc) the temporary is a hidden `.NAME.XXXXXXXX.tmp`
beside the destination, which only a killed or crashed process leaves behind.

Either way the new file has the permissions a plain open() would give under
the umask (mkstemp's would be 0600), and nothing is fsynced.
"""

from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from typing import BinaryIO, Callable, Iterator

from .errors import AtrousError
from .interrupts import deferred

# What open(folder, O_TMPFILE) fails with where the file system (EOPNOTSUPP)
# or the kernel (EISDIR before Linux 3.11, EINVAL) has no unnamed files.
_NO_UNNAMED = (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL)


@contextmanager
def atomic_file(path: str, check: Callable[[str], None] | None = None) -> Iterator[BinaryIO]:
    """A binary file to write; it becomes `path` when the block ends without an
    exception (and `check`, given a path to read the complete file from, raises none),
    and is discarded otherwise. OS errors become one AtrousError."""
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
        if check is not None:
            check(out.readable())
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


def _create(path: str) -> "_Unnamed | _Named":
    try:
        return _Unnamed.create(path) or _Named.create(path)
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


class _Unnamed:
    """An O_TMPFILE in the destination's folder, linked in by commit()."""

    def __init__(self, fd: int, folder_fd: int, base: str):
        self.fd, self._folder, self._base = fd, folder_fd, base
        self._hidden: str | None = None         # the name it has between link and rename

    @classmethod
    def create(cls, path: str) -> "_Unnamed | None":
        """The unnamed file, or None where the system has none to give."""
        flag = getattr(os, "O_TMPFILE", None)
        if flag is None or os.link not in os.supports_dir_fd:
            return None
        folder, base = os.path.split(os.path.abspath(path))
        try:
            fd = os.open(folder, flag | os.O_WRONLY, 0o666)
        except OSError as exc:
            if exc.errno in _NO_UNNAMED:
                return None
            raise
        try:
            # O_PATH: a folder one may write but not list still works
            folder_fd = os.open(folder, getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY)
        except OSError:
            os.close(fd)
            raise
        if not _linkable(fd):                    # no /proc: it could never be given a name
            os.close(fd)
            os.close(folder_fd)
            return None
        return cls(fd, folder_fd, base)

    def readable(self) -> str:
        """A path to read the file from before it has a name of its own."""
        return _proc_path(self.fd)

    def commit(self) -> None:
        """Give the finished file its name: linked in place, or linked to a hidden name
        and renamed over the destination that already exists."""
        source = _proc_path(self.fd)
        try:
            os.link(source, self._base, dst_dir_fd=self._folder, follow_symlinks=True)
            return
        except FileExistsError:
            pass
        while self._hidden is None:
            name = _hidden_name(self._base)
            try:
                os.link(source, name, dst_dir_fd=self._folder, follow_symlinks=True)
            except FileExistsError:
                continue
            self._hidden = name
        os.replace(self._hidden, self._base, src_dir_fd=self._folder, dst_dir_fd=self._folder)
        self._hidden = None

    def discard(self) -> None:
        """Remove the hidden name a failed rename left (an unnamed file needs nothing)."""
        if self._hidden is not None:             # linked, not renamed: the rename failed
            try:
                os.unlink(self._hidden, dir_fd=self._folder)
            except OSError:
                pass
            self._hidden = None

    def close(self) -> None:
        """Close the file and its folder (an unlinked file is freed here)."""
        for fd in (self.fd, self._folder):
            try:
                os.close(fd)
            except OSError:
                pass


def _proc_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def _linkable(fd: int) -> bool:
    """Does /proc/self/fd show this file, so that linkat can give it a name?"""
    try:
        return os.path.samestat(os.stat(_proc_path(fd)), os.fstat(fd))
    except OSError:
        return False


class _Named:
    """A hidden named file beside the destination, renamed over it by commit()."""

    def __init__(self, fd: int, tmp: str, path: str):
        self.fd, self._tmp, self._path = fd, tmp, path

    @classmethod
    def create(cls, path: str) -> "_Named":
        """A new hidden file beside `path`, under a name no other file has."""
        folder, base = os.path.split(os.path.abspath(path))
        while True:
            tmp = os.path.join(folder, _hidden_name(base))
            try:
                return cls(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp, path)
            except FileExistsError:
                continue

    def readable(self) -> str:
        """A path to read the file from before it is renamed into place."""
        return self._tmp

    def commit(self) -> None:
        """Rename the finished file over the destination."""
        self.close()                             # (a rename of an open file fails on Windows)
        os.replace(self._tmp, self._path)
        self._tmp = None

    def discard(self) -> None:
        """Remove the unfinished file."""
        if self._tmp is not None:
            try:
                os.unlink(self._tmp)
            except OSError:
                pass
            self._tmp = None

    def close(self) -> None:
        """Close the file (once)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
