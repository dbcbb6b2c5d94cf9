"""Stopping a run on a signal the way Ctrl-C stops it.

Python turns SIGINT into KeyboardInterrupt, so every `with` and `finally` on
the way out runs and the writer (atomic.py) discards the file it had begun.
SIGTERM (what make, CI runners and `timeout` send) and SIGHUP (a closed
terminal) would kill the process where it stands. While `handling()` is in
force (the command line's main), they raise Terminated instead, a
KeyboardInterrupt whose exit code is 128 + the signal's number (143, 129).

Once a stop is under way, further stopping signals are ignored: the way out is
short and must run whole. A signal that arrives inside `deferred()` (the few
system calls that put a finished file in place or remove a temporary, the
join of a reader thread) is raised when the block ends.

A signal that was ignored when the run started (`nohup`, a background job of a
script) stays ignored, and a handler that a program calling main() installed
itself is left in place.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

_STOPPING = ("SIGINT", "SIGTERM", "SIGHUP")


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread as Ctrl-C raises KeyboardInterrupt."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum
        self.exit_code = 128 + signum


class _State:
    installed = False
    depth = 0            # nesting of deferred() blocks
    pending = None       # a signal that arrived inside one
    stopping = False     # an exception for a signal has been raised


_state = _State()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _stop(signum: int) -> None:
    _state.stopping = True
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(signum)


def _handler(signum: int, frame) -> None:
    if _state.stopping:
        return
    if _state.depth:
        _state.pending = _state.pending or signum
        return
    _stop(signum)


def _ours_to_take(signum: int) -> bool:
    current = signal.getsignal(signum)
    if signum == signal.SIGINT:
        return current is signal.default_int_handler
    return current == signal.SIG_DFL


@contextmanager
def handling() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise in the main thread for the time of the
    block (from another thread, or nested, it changes nothing)."""
    if not _in_main_thread() or _state.installed:
        yield
        return
    previous = {}
    for name in _STOPPING:
        signum = getattr(signal, name, None)
        if signum is not None and _ours_to_take(signum):
            previous[signum] = signal.signal(signum, _handler)
    _state.installed, _state.depth, _state.pending, _state.stopping = True, 0, None, False
    try:
        yield
    finally:
        _state.stopping = True              # a signal from here on is the caller's business
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _state.installed, _state.depth, _state.pending, _state.stopping = False, 0, None, False


@contextmanager
def deferred() -> Iterator[None]:
    """A block that a stopping signal does not cut: the signal is raised at its
    end (unless a stop is already under way)."""
    if not _in_main_thread():
        yield
        return
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1
        if not _state.depth and _state.pending is not None:
            signum, _state.pending = _state.pending, None
            if not _state.stopping:
                _stop(signum)
