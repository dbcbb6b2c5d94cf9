"""Command line: `python -m caffe_atrous IN -o OUT` (and the `caffe-atrous` script).

Exit codes: 0 done, 1 conversion error (or --check found OUT out of date),
2 usage error, 130 Ctrl-C, 143 SIGTERM (129 SIGHUP). Every error is one line on
stderr, `caffe_atrous: error: ...`, without a traceback; a signal stops the run
silently, as Ctrl-C does (core/interrupts.py). Each output file is written
atomically or not at all (core/atomic.py).
"""

from __future__ import annotations

import gc
import os
import sys

from ..core.errors import AtrousError
from ..core.interrupts import Terminated, handling
from .args import build_init_parser, build_parser, build_verify_parser
from .commands import say, run_convert, run_init, run_verify

COMMANDS = {"init-weights": (build_init_parser, run_init), "verify": (build_verify_parser, run_verify)}
__all__ = ["main", "run", "build_parser"]


def main(argv: list[str] | None = None) -> int:
    """Run the command in `argv` (default: the process arguments), the conversion unless
    it starts with init-weights or verify; return the exit code. Errors are printed as one
    line on stderr, not raised (CAFFE_ATROUS_DEBUG=1 re-raises internal errors)."""
    argv = sys.argv[1:] if argv is None else argv
    with handling():
        try:
            return _main(argv)
        except Terminated as exc:        # also when it cuts the report of another error
            return exc.exit_code
        except KeyboardInterrupt:
            return 130


def _main(argv: list[str]) -> int:
    try:
        if argv and argv[0] in COMMANDS:
            build, run = COMMANDS[argv[0]]
            return run(build().parse_args(argv[1:]))
        args = build_parser().parse_args(argv)
        return run_convert(args)
    except AtrousError as exc:
        say("error", str(exc))
        return exc.exit_code
    except MemoryError:
        say("error", "out of memory: the network's blobs are too large for this machine")
        return 1
    except BrokenPipeError:
        return 1
    except Exception as exc:                 # noqa: BLE001 - a bug: say so, on one line
        if os.environ.get("CAFFE_ATROUS_DEBUG"):
            raise
        say("error", f"internal error ({type(exc).__name__}: {exc}); please report it with the "
             "input file (CAFFE_ATROUS_DEBUG=1 shows the traceback)")
        return 1


def run() -> None:
    """Entry point of the script and of `python -m`: main() without the cyclic
    garbage collector (a command makes few reference cycles, and its passes cost
    about 4% of a conversion), then exit without the interpreter's teardown (a
    tenth of a conversion's time, spent freeing objects after every file is
    closed). CAFFE_ATROUS_DEBUG=1 exits the usual way."""
    gc.disable()
    code = main()
    if os.environ.get("CAFFE_ATROUS_DEBUG") or "coverage" in sys.modules:
        sys.exit(code)                       # (coverage writes its data at a normal exit)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:                          # a closed pipe: what a normal exit reports too
        code = code or 1
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
