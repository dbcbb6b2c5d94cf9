"""Files the command line writes: atomically, beside their destination, or not at
all; and the unified diff that --diff prints."""

from __future__ import annotations

import os

from .errors import AtrousError


def unified_diff(a: str, b: str, from_name: str, to_name: str, context: int = 3):
    """difflib's unified diff without its 'popular line' heuristic, which in a
    prototxt (thousands of `stride: 1` lines) would pair the wrong lines."""
    import difflib
    al, bl = a.splitlines(True), b.splitlines(True)
    matcher = difflib.SequenceMatcher(None, al, bl, autojunk=False)
    yield f"--- {from_name}\n+++ {to_name}\n"
    for group in matcher.get_grouped_opcodes(context):
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        yield f"@@ -{i1 + 1},{i2 - i1} +{j1 + 1},{j2 - j1} @@\n"
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                yield from (" " + line for line in al[a1:a2])
                continue
            yield from ("-" + line for line in al[a1:a2])
            yield from ("+" + line for line in bl[b1:b2])


def _temporary(path: str) -> tuple[int, str]:
    """A new file beside `path` (so that the rename stays on one file system), made with
    the usual permissions, where tempfile's would be private to the owner."""
    folder, base = os.path.split(os.path.abspath(path))
    for attempt in range(100):
        tmp = os.path.join(folder, f".{base}.{os.getpid()}.{attempt}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise AtrousError(f"cannot write here: {exc.strerror}", file=path) from None
    raise AtrousError("cannot write here: no free temporary name", file=path)


def write_atomic(path: str, text: str) -> None:
    """Write text to path via a temporary file in the same folder, then rename."""
    fd, tmp = _temporary(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise AtrousError(f"cannot write: {exc.strerror}", file=path) from None


def same_file(a: str, b: str) -> bool:
    if a == "-" or b == "-":
        return False
    if os.path.abspath(a) == os.path.abspath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
