"""Pure geometry of the atrous rewrite of one window (no graph, no protobuf).

`m` is the per-axis factor by which the layer's input became denser (the
strides removed upstream); `r` the factor removed from this layer's own stride.
"""

from __future__ import annotations

from ..core.window import Pair, Window

EXACT = "exact"
SEED = "seed"          # the default: PSPNet/DeepLab/R-FCN/SSD convention


def dilate_conv(w: Window, m: Pair, r: Pair, mode: str) -> tuple[Window, list[str]]:
    """New window for a convolution; notes explain any axis where the seed
    convention could not keep the exact rule's output size.

    Exact rule: on every axis with kernel > 1, dilation *= m and pad *= m;
    stride /= r. Seed convention: where the stride is removed, the layer also
    takes the new dilation (d * m * r), with the pad that keeps the output size
    the exact rule gives: p * m + (k - 1) * d * m * (r - 1) / 2.
    """
    dil, pad, notes = list(w.dilation), list(w.pad), []
    stride = tuple(w.stride[a] // r[a] for a in (0, 1))
    for a in (0, 1):
        k = w.kernel[a]
        if k == 1:
            continue
        d_exact, p_exact = w.dilation[a] * m[a], w.pad[a] * m[a]
        dil[a], pad[a] = d_exact, p_exact
        if mode == SEED and r[a] > 1:
            grow = (k - 1) * d_exact * (r[a] - 1)
            if grow % 2 == 0:
                dil[a], pad[a] = d_exact * r[a], p_exact + grow // 2
            else:
                notes.append(f"kernel {k} cannot take dilation {d_exact * r[a]} and keep its output "
                             f"size; it keeps dilation {d_exact} (the exact rule)")
    return w.replace(stride=stride, dilation=tuple(dil), pad=tuple(pad)), notes


def unstride_pool(w: Window, r: Pair, mode: str) -> Window:
    """New window for a pooling whose stride is removed.

    Seed convention (DeepLab, SSD): a 2x2/2 pooling becomes 3x3/1 with pad 1,
    keeping the blob size; any other pooling just gets stride 1. Exact rule:
    stride 1 (a 2x2 pooling then outputs H - 1).
    """
    stride = tuple(w.stride[a] // r[a] for a in (0, 1))
    if mode == SEED and w.kernel == (2, 2) and w.stride == (2, 2) and w.pad == (0, 0) and r == (2, 2):
        return Window(kernel=(3, 3), stride=(1, 1), pad=(1, 1))
    return w.replace(stride=stride)
