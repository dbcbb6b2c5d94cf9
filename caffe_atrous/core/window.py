"""Sliding-window geometry of convolution and pooling, with Caffe's size rules.

A Window holds per-axis (height, width) kernel, stride, pad and dilation.
Everything here is plain arithmetic: no protobuf, no graph.
"""

from __future__ import annotations

import math
from typing import NamedTuple

Pair = tuple[int, int]


def fmt_pair(p) -> str:
    """A per-axis value as text: 2, or 2x1 when the axes differ."""
    return str(p[0]) if p[0] == p[1] else f"{p[0]}x{p[1]}"


# A per-axis factor `m` by which a blob (or a stride) changed: m >= 1 where it became m
# times denser, 1/f where it became f times coarser. How such a factor reads, in one place.

def is_denser(m) -> bool:
    """Whether `m` makes a blob denser (or leaves it), not coarser."""
    return all(v >= 1 for v in m)


def coarser_by(m) -> Pair:
    """f per axis, for a factor m = 1/f that makes a blob f times coarser."""
    return tuple(int(1 / v) for v in m)


def fmt_density(m) -> str:
    """How much denser a blob became, as text: 'x2 denser', 'x2 coarser' (m = 1/2)."""
    return f"x{fmt_pair(m)} denser" if is_denser(m) else f"x{fmt_pair(coarser_by(m))} coarser"


def fmt_times(m) -> str:
    """What a factor does to a dilation or pad, as text: 'x2', or '/2' for m = 1/2."""
    return f"x{fmt_pair(m)}" if is_denser(m) else f"/{fmt_pair(coarser_by(m))}"


def map_word(m) -> str:
    """'dense' or 'coarser': the map a layer reads once its input changed by `m`."""
    return "dense" if is_denser(m) else "coarser"


class Window(NamedTuple):
    """The sliding window of a convolution or pooling: per-axis (height, width) `kernel`,
    `stride`, `pad` and `dilation`."""

    kernel: Pair
    stride: Pair = (1, 1)
    pad: Pair = (0, 0)
    dilation: Pair = (1, 1)

    def effective_kernel(self, axis: int) -> int:
        """Extent the dilated kernel covers: (k - 1) * d + 1."""
        return (self.kernel[axis] - 1) * self.dilation[axis] + 1

    def replace(self, **kw) -> "Window":
        """A copy with the fields given as keywords changed."""
        return self._replace(**kw)

    def describe(self) -> str:
        """Compact text for tables: k3x3 s2 p1 d1 (single numbers when axes agree)."""
        return " ".join(f"{name}{fmt_pair(v)}" for name, v in
                        (("k", self.kernel), ("s", self.stride), ("p", self.pad),
                         ("d", self.dilation)))


def conv_out(size: int, w: Window, axis: int) -> int:
    """Caffe convolution output size: floor((H + 2p - ek) / s) + 1."""
    return (size + 2 * w.pad[axis] - w.effective_kernel(axis)) // w.stride[axis] + 1


def deconv_out(size: int, w: Window, axis: int) -> int:
    """Caffe deconvolution output size: s * (H - 1) + ek - 2p."""
    return w.stride[axis] * (size - 1) + w.effective_kernel(axis) - 2 * w.pad[axis]


def pool_out(size: int, w: Window, axis: int, ceil_mode: bool = True) -> int:
    """Caffe pooling output size.

    ceil((H + 2p - k) / s) + 1 (floor with round_mode FLOOR), minus one when the
    last window would start inside the bottom/right padding.
    """
    k, s, p = w.kernel[axis], w.stride[axis], w.pad[axis]
    span = size + 2 * p - k
    out = (math.ceil(span / s) if ceil_mode else span // s) + 1
    if p > 0 and (out - 1) * s >= size + p:
        out -= 1
    return out
