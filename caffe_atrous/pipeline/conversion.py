"""The library entry point: prototxt text in, converted prototxt text out.

    result = convert_text(open("net.prototxt").read(), "net.prototxt", Options(output_stride=8))
    result.text, result.plan.warnings

This is the whole pipeline (formats -> graph -> analysis -> rewrite) behind
one call; the command line only adds files, options and messages around it.
"""

from __future__ import annotations

from typing import NamedTuple

from ..core.errors import AtrousError, ConversionWarning, UsageError
from ..formats import netspec, prototxt, textpatch, upgrade
from ..formats.netspec import Net
from ..formats.schema import Schema
from ..graph.graph import build_graphs, test_phase
from ..graph.reader import read_layers
from ..graph.records import LayerSpec
from ..rewrite.plan import Options, Plan, make_plan


class Loaded:
    """A network read and normalised to V2, with what the reader noticed."""

    __slots__ = ("net", "path", "lines", "legacy", "notes", "text", "source", "schema", "blocks")

    def __init__(self, net: Net, path: str, lines: list[int | None], legacy: bool,
                 notes: list[ConversionWarning] | None = None, text: str | None = None,
                 source: Net | None = None, schema: Schema | None = None,
                 blocks: list | None = None):
        self.net, self.path, self.lines, self.legacy = net, path, lines, legacy
        self.notes = [] if notes is None else notes
        self.text = text            # the user's text, when the output can keep its layout
        self.source = source        # what `text` parses to (before truncation)
        self.schema = schema        # the schema `net` was read with (None: the built-in one)
        self.blocks = blocks        # where its layer blocks are in `text` (prototxt.layer_blocks)

    def specs(self) -> list[LayerSpec]:
        return read_layers(self.net, self.lines, self.path)

    def graphs(self, input_shape: tuple[int, ...] | None = None):
        """One graph per phase; `input_shape` (--input-shape) sizes the first input."""
        try:
            inputs = netspec.declared_inputs(self.net)
        except AtrousError as exc:
            raise exc.located(self.path) from None
        return build_graphs(self.specs(), inputs, self.path, input_shape)

    def graph(self, input_shape: tuple[int, ...] | None = None):
        """The TEST-phase graph (what runs when the network is deployed)."""
        return test_phase(self.graphs(input_shape))


class Result(NamedTuple):
    """A conversion: the output text, the converted net, the plan, what was read."""

    text: str
    net: Net
    plan: Plan
    loaded: Loaded

    @property
    def warnings(self) -> list[ConversionWarning]:
        return self.loaded.notes + self.plan.warnings


def read_text(path: str) -> str:
    """A prototxt file's text ('-': standard input), with one-line errors."""
    import sys
    try:
        if path == "-":                 # bytes, so that the decoding below is strict here too
            stream = getattr(sys.stdin, "buffer", None)
            if stream is None:
                return sys.stdin.read()
            return stream.read().decode("utf-8")
        with open(path, encoding="utf-8", newline="") as fh:    # CRLF files stay CRLF
            return fh.read()
    except FileNotFoundError:
        raise UsageError("no such file", file=path) from None
    except IsADirectoryError:
        raise UsageError("is a directory, not a prototxt file", file=path) from None
    except UnicodeDecodeError as exc:
        raise AtrousError(f"not a text file ({exc.reason} at byte {exc.start}); is this a binary "
                          ".caffemodel rather than a .prototxt?",
                          file="<stdin>" if path == "-" else path) from None
    except OSError as exc:
        raise AtrousError(f"cannot read: {exc.strerror}", file=path) from None


def load_text(text: str, path: str = "<string>", schema: Schema | None = None) -> Loaded:
    """Parse prototxt text with `schema` (a fork's, from --proto; default: the
    built-in one); V1 files are upgraded to V2 (and the notes say so)."""
    net, source = prototxt.parse(text, path, schema)
    lines: list[int | None] = list(source.layer_lines)
    notes: list[ConversionWarning] = []
    if source.legacy:
        had_inputs = bool(net.input)
        try:
            net, notes = upgrade.upgrade_v1(net)
        except AtrousError as exc:
            raise exc.located(path) from None
        if had_inputs:
            lines = [None] + lines
    if source.legacy:
        return Loaded(net, path, lines, True, notes, schema=schema)
    return Loaded(net, path, lines, False, notes, text, net, schema, source.layer_blocks)


def truncate(loaded: Loaded, last: str) -> Loaded:
    """Drop every layer after the layer named `last`."""
    names = netspec.layer_names(loaded.net)
    index = names.index(last) if last in names else None
    if index is None:
        raise UsageError(f"--truncate-after {last}: no layer has that name", file=loaded.path)
    return Loaded(netspec.truncate_after(loaded.net, index), loaded.path,
                  loaded.lines[: index + 1], loaded.legacy, loaded.notes, loaded.text, loaded.source,
                  loaded.schema, loaded.blocks)


def convert_loaded(loaded: Loaded, opts: Options, layout: bool = True) -> Result:
    """Convert; the text keeps the user's layout (comments, field order) unless
    `layout` is False or the input was V1, when it is the canonical form."""
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
            text = textpatch.patch(loaded.text, loaded.source, new_net, loaded.blocks)
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
    loaded = load_text(text, path, schema)
    if truncate_after:
        loaded = truncate(loaded, truncate_after)
    return convert_loaded(loaded, opts or Options(), layout)

