"""Writing a file made of pieces, at about the speed of cp.

A piece is new bytes, or (start, stop) for file[start:stop] of an input file.
A converted caffemodel is mostly spans of the stored one, but after the first
record that changes length the output offsets differ from the input ones by
other than a multiple of the page size, and a kernel copy (copy_file_range)
between such offsets takes about twice as long as cp. Reading into buffers and
writing them out runs at cp's speed whatever the offsets: a reader thread
fills 512 KB buffers (preadv of the spans, the new bytes in between) while the
calling thread writes the full ones, both in system calls that let the other
run. The size is measured: with 1 MB writes, one run in three or four of a
new process took 3-5x as long (ext4, Linux 6.18), with 256 KB ones every run
takes ~8% longer.
"""

from __future__ import annotations

import errno
import os
import queue
import threading

from ..core.errors import AtrousError
from ..core.interrupts import deferred

_BUFFER, _RING = 512 << 10, 4


def size(piece) -> int:
    """The number of bytes a piece writes: stop - start of a span, the length of bytes."""
    return piece[1] - piece[0] if isinstance(piece, tuple) else len(piece)


def coalesce(pieces: list) -> list:
    """Merge neighbouring spans and neighbouring byte strings; drop empty pieces."""
    out: list = []
    for p in pieces:
        if out and isinstance(p, tuple) and isinstance(out[-1], tuple) and out[-1][1] == p[0]:
            out[-1] = (out[-1][0], p[1])
        elif out and isinstance(p, bytes) and isinstance(out[-1], bytes):
            out[-1] += p
        elif size(p):
            out.append(p)
    return out


def write_pieces(fh, pieces: list, source) -> None:
    """Write the pieces to the binary file `fh`, spans read from `source` (a
    caffemodel.Weights: its fileno(), path and mapped buffer). An error of the
    reader is raised here; the reader never outlives this call, not even one
    that a signal cuts (interrupts.py): the signal waits for the reader to stop,
    which it does before its next read."""
    fh.flush()
    dst = fh.fileno()
    _reserve(dst, sum(size(p) for p in pieces))
    free: queue.SimpleQueue = queue.SimpleQueue()
    full: queue.SimpleQueue = queue.SimpleQueue()
    for _ in range(_RING):
        free.put(bytearray(_BUFFER))
    stop = threading.Event()
    reader = threading.Thread(target=_fill, args=(pieces, _reader(source), free, full, stop),
                              name="caffe_atrous pieces reader", daemon=True)
    reader.start()
    try:
        while True:
            item = full.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            _write_all(dst, memoryview(item[0])[:item[1]])
            free.put(item[0])
    finally:
        with deferred():
            stop.set()
            free.put(bytearray(0))       # wakes a reader waiting for a buffer
            reader.join()


# Errors that say the file system does not allocate ahead. Where it cannot,
# glibc's posix_fallocate would write a byte into every block instead (slow on
# a network file system), except in a file open for appending: it then fails
# with EBADF. So the file is open for appending while it asks.
_NOT_SUPPORTED = (errno.EOPNOTSUPP, errno.EINVAL, errno.ENODEV, errno.ENOSYS, errno.EBADF)


def _reserve(fd: int, length: int) -> None:
    """Allocate the output's blocks before writing: ext4 writes a 230 MB file
    ~15% faster into blocks it has than into a file that grows, and a disk
    without the space says so before anything is copied."""
    if not length or not hasattr(os, "posix_fallocate"):
        return
    import fcntl
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_APPEND)
    try:
        os.posix_fallocate(fd, os.lseek(fd, 0, os.SEEK_CUR), length)
    except OSError as exc:
        if exc.errno not in _NOT_SUPPORTED:
            raise
    finally:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags)


def _fill(pieces: list, read, free, full, stop) -> None:
    """The reader: the pieces into buffers, in order, each full one onto `full`;
    then None, or the exception that stopped it."""
    try:
        buf, used = free.get(), 0
        for p in pieces:
            data = memoryview(p) if isinstance(p, bytes) else None
            start, end = (0, len(p)) if data is not None else p
            while start < end:
                if stop.is_set():
                    return
                n = min(end - start, len(buf) - used)
                target = memoryview(buf)[used:used + n]
                if data is not None:
                    target[:] = data[start:start + n]
                else:
                    n = read(target, start)
                used, start = used + n, start + n
                if used == len(buf):
                    full.put((buf, used))
                    buf, used = free.get(), 0
        full.put((buf, used))
        full.put(None)
    except BaseException as exc:          # handed to the writing thread, which raises it
        full.put(exc)


def _reader(source):
    """read(target, offset): input bytes at `offset` into the buffer `target`;
    the number read, never 0."""
    src, path = source.fileno(), source.path

    def pread(target, offset: int) -> int:
        try:
            n = os.preadv(src, [target], offset)
        except OSError as exc:
            raise AtrousError(f"cannot read: {exc.strerror}", file=path) from None
        if n == 0:
            raise AtrousError("the file got shorter while it was read; try again", file=path)
        return n

    if hasattr(os, "preadv"):
        return pread
    mapped = memoryview(source.buffer)

    def copy(target, offset: int) -> int:       # where there is no preadv: from the map
        target[:] = mapped[offset:offset + len(target)]
        return len(target)
    return copy


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
