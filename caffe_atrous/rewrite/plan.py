"""The conversion plan: what changes in which layer, and why.

`make_plan` plans each phase's graph (phase.py), which asks one rule per layer
kind what to do:

    Convolution    stride removed; dilation and pad scaled (dilate.py)
    Pooling        stride removed (2x2/2 -> 3x3/1 in the seed convention);
                   a pooling that covered the whole map becomes global;
                   a pyramid pooling keeps its bins (regrid.py)
    InnerProduct   refused when its input would grow (weights would not fit);
                   with --fc-to-conv a Convolution (heads.py)
    RoI pooling    spatial_scale, Python feat_stride, PriorBox step: rescaled
    Eltwise/Concat refused when inputs arrive with different factors (joins.py);
                   branches whose sizes no longer meet are re-padded to "same"
                   (default convention only)
    Interp/Upsample a fixed size that returns onto a grid follows it (regrid.py)
    Deconvolution, Interp, Crop over a denser blob, unknown types: named

then merges the phases. The plan is plain data; `LayerChange.patch()` turns a
change into the MessagePatch that formats/netspec.py writes into a copy of the net.
"""

from __future__ import annotations

from ..analysis import coarsen
from ..analysis import strides as st
from ..core.errors import AtrousError, UsageError
from ..graph.graph import Graph
from .changes import LayerChange, Options, Plan
from .dilate import EXACT, SEED
from .phase import PhasePlan, plan_phase

__all__ = ["LayerChange", "Options", "Plan", "make_plan"]


def _check_options(graphs: list[Graph], opts: Options) -> None:
    if opts.mode not in (EXACT, SEED):
        raise UsageError(f"unknown mode {opts.mode!r}")
    if opts.from_layer is not None:
        if not any(g.layer(opts.from_layer) for g in graphs):
            raise UsageError(f"--from {opts.from_layer}: no layer has that name")
    elif opts.output_stride is None or opts.output_stride < 1:
        raise UsageError("--output-stride must be a positive whole number")


def _merge(plans: list[PhasePlan], graphs: list[Graph]) -> Plan:
    """One plan for all phases; a layer shared by two phases must change the same way."""
    out = Plan({}, [], [], 1, 1)
    for g, p in zip(graphs, plans):
        for i, c in p.changes.items():
            if i in out.changes and out.changes[i].key() != c.key():
                raise AtrousError("the TRAIN and TEST phases need different changes here; convert "
                                  "each phase's file separately", file=g.path, line=c.layer.line,
                                  layer=c.layer.name)
            out.changes.setdefault(i, c)
        out.warnings += [w for w in p.warnings if w not in out.warnings]
        out.inexact += [w for w in p.inexact if w not in out.inexact]
        out.notes += [n for n in p.notes if n not in out.notes]
        out.stride_before = max(out.stride_before, p.stride_before)
        out.stride_after = max(out.stride_after, p.stride_after)
        if g.phase == "TEST" or not out.final:
            out.final = p.final
    return out


def _check_reached(g: Graph, p: PhasePlan, opts: Options) -> None:
    """The asked output stride must be what the phase reaches."""
    if opts.from_layer is not None or p.stride_after == opts.output_stride:
        return
    reach = sorted(set(st.reachable_output_strides(g)) | set(coarsen.reachable_coarser(g)))
    if opts.output_stride > p.stride_before:
        raise AtrousError(
            f"output stride {opts.output_stride} is larger than the network's own output stride "
            f"{st.fmt_stride(p.stride_before)} and no stride can be put back to reach it (where "
            "the dilations of its trunk rise, strides go back); reachable: "
            f"{', '.join(map(str, reach))}", file=g.path)
    raise AtrousError(f"output stride {opts.output_stride} is not reachable for this network; "
                      f"reachable: {', '.join(map(str, reach))}", file=g.path)


def make_plan(graphs: list[Graph], opts: Options) -> Plan:
    """Decide every change, for every phase; the phases must agree on shared layers."""
    _check_options(graphs, opts)
    plans = []
    for g in graphs:
        p = plan_phase(g, opts)
        _check_reached(g, p, opts)
        plans.append(p)
    plan = _merge(plans, graphs)
    if opts.fc_to_conv and not plan.heads():
        plan.notes.append("--fc-to-conv: no InnerProduct here reads a spatial map; nothing "
                          "to convert")
    return plan
