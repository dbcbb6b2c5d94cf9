"""Sliding-window geometry of convolution and pooling, with Caffe's size rules.

A Window holds per-axis (height, width) kernel, stride, pad and dilation.
Everything here is plain arithmetic: no protobuf, no graph.
"""

from __future__ import annotations

import math
from typing import NamedTuple

Pair = tuple[int, int]


class Window(NamedTuple):
    kernel: Pair
    stride: Pair = (1, 1)
    pad: Pair = (0, 0)
    dilation: Pair = (1, 1)

    def effective_kernel(self, axis: int) -> int:
        """Extent the dilated kernel covers: (k - 1) * d + 1."""
        return (self.kernel[axis] - 1) * self.dilation[axis] + 1

    def replace(self, **kw) -> "Window":
        return self._replace(**kw)

    def describe(self) -> str:
        """Compact text for tables: k3x3 s2 p1 d1 (single numbers when axes agree)."""
        def one(name: str, v: Pair) -> str:
            return f"{name}{v[0]}" if v[0] == v[1] else f"{name}{v[0]}x{v[1]}"
        return " ".join([one("k", self.kernel), one("s", self.stride), one("p", self.pad),
                         one("d", self.dilation)])


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
