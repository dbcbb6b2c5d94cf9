"""Option values, checked in one place: the command line (text), presets (YAML
values) and the Python API read them through these. Each check returns the value
in the form the pipeline takes, or raises ValueError with the form it expects
("a whole number of at least 1"), which the caller puts in its own message."""

from __future__ import annotations

from typing import Any, Callable


def _whole(v: Any) -> int | None:
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            return None
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def positive(v: Any) -> int:
    """A whole number of at least 1 (`8`, "8")."""
    n = _whole(v)
    if n is None or n < 1:
        raise ValueError("a whole number of at least 1")
    return n


def flag(v: Any) -> bool:
    """A YAML boolean (true, false), returned as it is; anything else, even "true" as text,
    is refused."""
    if not isinstance(v, bool):
        raise ValueError("true or false")
    return v


def text(v: Any) -> str:
    """A name or a path."""
    if not isinstance(v, str) or not v:
        raise ValueError("a name or a path")
    return v


def names(v: Any) -> tuple[str, ...]:
    """One name, or a list of names (`assume-same-grid: [Upsample, MyReLU]`)."""
    items = [v] if isinstance(v, str) else list(v) if isinstance(v, (list, tuple)) else None
    if not items or not all(isinstance(x, str) and x for x in items):
        raise ValueError("a layer type or a list of them, like [MyReLU]")
    return tuple(items)


_EXAMPLE = {4: "1,3,513,513", 2: "3,4"}


def whole_numbers(n: int | None, what: str = "") -> Callable[[Any], tuple[int, ...]]:
    """A check for a list of `n` (None: one or more) whole numbers of at least 1,
    given as a list or as text with commas (an input shape may use x: 1x3x513x513)."""
    form = what or f"a list of {n or 'one or more'} whole numbers"
    form += f", like {_EXAMPLE.get(n, '1,2,4')}"

    def check(v: Any) -> tuple[int, ...]:
        if isinstance(v, str):
            v = v.replace("x", ",").split(",") if n == 4 else v.split(",")
        items = [_whole(x) for x in v] if isinstance(v, (list, tuple)) else None
        if not items or (n and len(items) != n) or any(x is None or x < 1 for x in items):
            raise ValueError(form)
        return tuple(items)
    return check


input_shape = whole_numbers(4, "N,C,H,W")
rates = whole_numbers(None, "a list of rates")
decimation = whole_numbers(2, "S,C")
