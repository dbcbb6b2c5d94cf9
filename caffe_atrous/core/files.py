"""The command line's file questions: is OUT the input file, and the unified diff
that --diff prints. (Writing files: atomic.py.)"""

from __future__ import annotations

import os



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


def same_file(a: str, b: str) -> bool:
    """Whether paths `a` and `b` name the same file: the same absolute path, or one file
    reached through links; never when either is `-` (stdin or stdout)."""
    if a == "-" or b == "-":
        return False
    if os.path.abspath(a) == os.path.abspath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
