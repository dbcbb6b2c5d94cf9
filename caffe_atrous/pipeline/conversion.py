"""The library entry point: prototxt text in, converted prototxt text out.

    result = convert_text(open("net.prototxt").read(), "net.prototxt", Options(output_stride=8))
    result.text, result.plan.warnings

This is the whole pipeline (formats -> graph -> analysis -> rewrite) behind
one call; the command line only adds files, options and messages around it.
"""

from __future__ import annotations

from typing import NamedTuple

from ..core.errors import AtrousError, ConversionWarning
from ..formats import netspec, prototxt, textpatch
from ..formats.netspec import Net
from ..formats.schema import Schema
from . import invariants
from .loading import Loaded, load_text, read_text, truncate
from ..rewrite.plan import Options, Plan, make_plan


class Result(NamedTuple):
    """A conversion: the output text, the converted net, the plan, what was read."""

    text: str
    net: Net
    plan: Plan
    loaded: Loaded

    @property
    def warnings(self) -> list[ConversionWarning]:
        """What the reader noticed (`loaded.notes`) and then the plan's warnings, in that order."""
        return self.loaded.notes + self.plan.warnings

    def converted(self, path: str | None = None) -> Loaded:
        """The converted network as a Loaded: the input's line numbers and schema,
        named `path` in messages (default: the input's)."""
        return Loaded(self.net, path=path or self.loaded.path, lines=self.loaded.lines,
                      schema=self.loaded.schema)


def convert_loaded(loaded: Loaded, opts: Options, layout: bool = True) -> Result:
    """Convert; the text keeps the user's layout (comments, field order) unless
    `layout` is False or the input was V1, when it is the canonical form. With
    CAFFE_ATROUS_CHECK_INVARIANTS set, the result is checked (invariants.py)."""
    result = _convert(loaded, opts, layout)
    if invariants.enabled():
        invariants.check(loaded, result, opts, _convert)
    return result


def _convert(loaded: Loaded, opts: Options, layout: bool) -> Result:
    plan = make_plan(loaded.graphs(opts.input_shape), opts)
    try:
        new_net = netspec.apply_patches(loaded.net, [c.patch() for c in plan.ordered()])
    except AtrousError as exc:
        lines = {s.name: s.line for g in loaded.graphs() for s in g.layers}
        raise exc.located(loaded.path, lines.get(exc.layer)) from None
    heads = {c.layer.index for c in plan.ordered() if c.head is not None}
    expected = [(n, "Convolution" if i in heads else t)
                for i, (n, t) in enumerate(netspec.layer_signature(loaded.net))]
    if expected != netspec.layer_signature(new_net):
        raise AtrousError("internal check failed: the converted layers differ from the input's; "
                          "please report this with the input file")
    text = None
    if layout and loaded.text is not None:
        try:       # the rewritten layer blocks are parsed again there and must equal new_net's
            text = textpatch.patch(loaded.text, loaded.parsed, new_net, loaded.blocks)
        except textpatch.NotPatchable:
            text = None
    if text is None:
        text = prototxt.to_text(new_net)
        if prototxt.parse(text, "<output>", loaded.schema)[0] != new_net:
            raise AtrousError("internal check failed: the output does not parse back to the "
                              "conversion; please report this with the input file")
    return Result(text, new_net, plan, loaded)


def convert_text(text: str, path: str = "<string>", opts: Options | None = None,
                 truncate_after: str | None = None, layout: bool = True,
                 schema: Schema | None = None) -> Result:
    """Convert prototxt text (`path` names it in messages) with `opts`; see
    convert_loaded for `layout`, load_text for `schema`."""
    loaded = load_text(text, path, schema)
    if truncate_after:
        loaded = truncate(loaded, truncate_after)
    return convert_loaded(loaded, opts or Options(), layout)

