"""DeepLab v3's multi-grid: different rates for the units of the last stage.

With output stride 16 and grid (1, 2, 4), the three units of the last dilated
stage get rates 2x1, 2x2, 2x4 = 2, 4, 8 instead of 2, 2, 2. A unit is a
residual block: the layers between one SUM Eltwise of the stage and the next.

    res5a_branch2b  d2 p2        res5a_branch2b  d2 p2
    res5b_branch2b  d2 p2   ->   res5b_branch2b  d4 p4
    res5c_branch2b  d2 p2        res5c_branch2b  d8 p8
"""

from __future__ import annotations

from ..core.errors import AtrousError
from ..graph.records import LayerSpec
from ..graph.graph import Graph
from ..core.window import Pair, Window


def last_stage_units(graph: Graph, factor_of, top_factor_of) -> tuple[Pair, list[list[LayerSpec]]]:
    """The residual units of the last dilated stage, in order.

    factor_of(layer): the removed factor of the layer's input; top_factor_of(layer)
    that of its output. The last stage is every layer whose output has the largest
    factor; it is split after each SUM Eltwise.
    """
    factors = [top_factor_of(l) for l in graph.layers]
    dense = [f for f in factors if f is not None]
    if not dense or max(dense) == (1, 1):
        raise AtrousError("--multi-grid needs a dilated stage: convert to an output stride "
                          "smaller than the network's own")
    top = max(dense)
    units: list[list[LayerSpec]] = [[]]
    for layer, f in zip(graph.layers, factors):
        if f != top:
            continue
        units[-1].append(layer)
        if layer.type == "Eltwise" and getattr(layer.params, "operation", "SUM") == "SUM":
            units.append([])
    units = [u for u in units if any(l.type == "Eltwise" for l in u)]
    if not units:
        raise AtrousError("--multi-grid: the last dilated stage has no residual units (no SUM "
                          "Eltwise), so its structure cannot be recognised")
    return top, units


def grid_rates(graph: Graph, in_factor, top_factor, grid: tuple[int, ...]) -> dict[int, int]:
    """Layer index -> multi-grid rate for every dilated convolution of the last stage.

    in_factor(layer)/top_factor(layer): the removed factor of its input/output."""
    top, units = last_stage_units(graph, in_factor, top_factor)
    if len(units) != len(grid):
        raise AtrousError(f"--multi-grid gives {len(grid)} rates but the last dilated stage has "
                          f"{len(units)} residual units ({', '.join(u[-1].name for u in units)})",
                          file=graph.path)
    return {layer.index: rate for unit, rate in zip(units, grid) for layer in unit
            if layer.conv is not None and not layer.is_deconv and layer.window.kernel != (1, 1)
            and in_factor(layer) == top and rate != 1}


def apply_grid(window: Window, rate: int) -> Window:
    """Multiply dilation and pad by `rate` on every axis whose kernel is > 1."""
    dil = tuple(d * rate if k > 1 else d for d, k in zip(window.dilation, window.kernel))
    pad = tuple(p * rate if k > 1 else p for p, k in zip(window.pad, window.kernel))
    return window.replace(dilation=dil, pad=pad)
