"""Pure geometry of the atrous rewrite of one window (no graph, no protobuf).

`m` is the per-axis factor by which the layer's input became denser (the
strides removed upstream); `r` the factor removed from this layer's own stride.
Both are 1/f where a network is made f times coarser (a stride put back).
"""

from __future__ import annotations

from ..core.window import Pair, Window, coarser_by, fmt_pair

EXACT = "exact"
SEED = "seed"          # the default: PSPNet/DeepLab/R-FCN/SSD convention


class CannotFollow(ValueError):
    """A window that cannot follow a coarser input exactly (a dilation that does not
    divide); the message says why."""


def _whole(v) -> int | None:
    """`v` as an int when it is whole (ints and Fractions), else None."""
    return int(v) if v == int(v) else None


def dilate_conv(w: Window, m: Pair, r: Pair, mode: str) -> tuple[Window, list[str]]:
    """New window for a convolution; notes explain any axis where the seed
    convention could not keep the exact rule's output size.

    Exact rule: on every axis with kernel > 1, dilation *= m and pad *= m;
    stride /= r. Seed convention: where the stride is removed, the layer also
    takes the new dilation (d * m * r), with the pad that keeps the output size
    the exact rule gives: p * m + (k - 1) * d * m * (r - 1) / 2.

    The same holds the other way (a coarser network): m and r are then 1/f, a
    stride put back multiplies the stride, and dilation and pad are divided, which
    they must allow (CannotFollow), except a dilation of 1, which stays 1 (the
    kernel then sees a coarser map: named in a note).
    """
    dil, pad, notes = list(w.dilation), list(w.pad), []
    stride = tuple(_whole(w.stride[a] / r[a]) for a in (0, 1))
    for a in (0, 1):
        k = w.kernel[a]
        if k == 1:
            continue
        d_exact, p_exact = _whole(w.dilation[a] * m[a]), _whole(w.pad[a] * m[a])
        if d_exact is None or p_exact is None:
            if w.dilation[a] != 1 or r[a] != 1:
                raise CannotFollow(f"dilation {w.dilation[a]} and pad {w.pad[a]} cannot follow a "
                                   f"map {fmt_pair(coarser_by(m))} times coarser: "
                                   "they do not divide by it")
            note = (f"kernel {fmt_pair(w.kernel)} keeps dilation 1 over a map "
                    f"{fmt_pair(coarser_by(m))} times coarser: it now sees that much "
                    "more of the image (not exact)")
            if note not in notes:
                notes.append(note)
            continue
        dil[a], pad[a] = d_exact, p_exact
        if mode == SEED and r[a] != 1:
            grow = (k - 1) * d_exact * (r[a] - 1)
            seed_d, seed_p = _whole(d_exact * r[a]), _whole(p_exact + grow / 2)
            if seed_d is not None and seed_p is not None and seed_d >= 1 and seed_p >= 0:
                dil[a], pad[a] = seed_d, seed_p
            else:
                notes.append(f"kernel {k} cannot take dilation {d_exact * r[a]} and keep its "
                             f"output size; it keeps dilation {d_exact} (the exact rule)")
    return w.replace(stride=stride, dilation=tuple(dil), pad=tuple(pad)), notes


def unstride_pool(w: Window, r: Pair, mode: str) -> Window:
    """New window for a pooling whose stride is removed.

    Seed convention (DeepLab, SSD): a 2x2/2 pooling becomes 3x3/1 with pad 1,
    keeping the blob size; any other pooling just gets stride 1. Exact rule:
    stride 1 (a 2x2 pooling then outputs H - 1).
    """
    stride = tuple(_whole(w.stride[a] / r[a]) for a in (0, 1))
    if mode == SEED and w.kernel == (2, 2) and w.stride == (2, 2) and w.pad == (0, 0) and r == (2, 2):
        return Window(kernel=(3, 3), stride=(1, 1), pad=(1, 1))
    return w.replace(stride=stride)
