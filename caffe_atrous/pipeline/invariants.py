"""What every conversion must keep, checked when asked.

Names, order and types of the layers (an InnerProduct made a convolution
excepted), kernel shapes, num_output, group, the shape of every parameter blob
Caffe allocates, the written text equal to the converted network, and that
converting the output again at its own output stride (with --align again when
it was aligned) changes nothing.

The check doubles the cost of a conversion, so it runs only where the
environment asks for it (CAFFE_ATROUS_CHECK_INVARIANTS=1): the tests set it for
the whole run, so every conversion they make is checked, in their own process
and in every command line they start.
"""

from __future__ import annotations

import os
from typing import Callable

from ..core.errors import AtrousError
from ..rewrite.plan import Options
from .loading import Loaded, load_text

ENV = "CAFFE_ATROUS_CHECK_INVARIANTS"


def enabled() -> bool:
    """Whether the environment asks for the check."""
    return os.environ.get(ENV, "").strip() not in ("", "0")


def _broken(what: str) -> AtrousError:
    return AtrousError(f"internal check failed: {what}; please report this with the input file")


def _geometry(loaded: Loaded) -> list:
    """Per layer: name, type, and what the weights depend on (kernel, outputs, group)."""
    out = []
    for s in loaded.specs():
        conv = s.conv
        out.append((s.name, s.type, conv and (conv.window.kernel, conv.num_output, conv.group),
                    s.ip and (s.ip.num_output, s.ip.axis, s.ip.transpose)))
    return out


def _check_layers(loaded: Loaded, after: Loaded, heads: dict) -> None:
    expected = [(n, "Convolution", (heads[n].window.kernel, heads[n].num_output, 1), None)
                if n in heads else (n, t, conv, ip) for n, t, conv, ip in _geometry(loaded)]
    got = _geometry(after)
    for e, g in zip(expected, got):
        if e != g:
            raise _broken(f"layer '{e[0]}' became {g[1:]} instead of {e[1:]}")
    if len(expected) != len(got):
        raise _broken(f"{len(expected)} layers became {len(got)}")


def _check_params(loaded: Loaded, after: Loaded, heads: dict, shape) -> None:
    from ..analysis.params import param_shapes      # only when checking
    from ..analysis.shapes import infer_shapes
    for g0, g1 in zip(loaded.graphs(), after.graphs()):
        p0 = param_shapes(g0, infer_shapes(g0, input_shape=shape))
        for name, h in heads.items():     # a classifier made a convolution: (N, C, kh, kw)
            if name in p0:
                if p0[name] != h.stored_shapes():
                    raise _broken(f"head '{name}' expects stored blobs {h.stored_shapes()}, "
                                  f"the network has {p0[name]}")
                p0[name] = [(h.num_output, h.channels0 // h.in_step) + h.window.kernel] + \
                    [(h.num_output,)] * h.bias_term
        p1 = param_shapes(g1, infer_shapes(g1, input_shape=shape))
        changed = sorted(n for n in p0.keys() | p1.keys() if p0.get(n) != p1.get(n))
        if changed:
            n = changed[0]
            raise _broken(f"the parameter blobs of '{n}' became {p1.get(n)} instead of {p0.get(n)}")


def check(loaded: Loaded, result, opts: Options, convert: Callable) -> None:
    """Raise AtrousError when `result` (of converting `loaded` with `opts`) breaks an
    invariant; `convert(loaded, opts, layout)` converts again, unchecked."""
    after = load_text(result.text, "<output>", loaded.schema)
    if after.net != result.net:
        raise _broken("the written text differs from the converted network")
    heads = result.plan.heads()
    _check_layers(loaded, after, heads)
    _check_params(loaded, after, heads, opts.input_shape)
    from ..analysis.strides import network_output_stride
    own = max(network_output_stride(g) for g in after.graphs(opts.input_shape))
    stride = min(result.plan.stride_after, own)      # never a coarser conversion of its own
    if stride.denominator == 1:
        again = convert(after, Options(output_stride=int(stride), mode=opts.mode,
                                       input_shape=opts.input_shape, align=opts.align), False)
        if again.plan.changes:
            raise _broken(f"converting the output again changes "
                          f"'{again.plan.ordered()[0].layer.name}'")
