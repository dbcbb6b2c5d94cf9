"""Reading and writing prototxt text: NetParameter in, NetParameter out.

Parse errors become one-line AtrousErrors with file, line and column. The
reader also records the line on which each top-level `layer`/`layers` block
starts, so that later errors can point at the layer in the user's file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from ..core.errors import AtrousError
from . import textparse
from .schema import Schema, builtin

# What matters for finding top-level blocks: strings and comments (skipped),
# braces, and the field names `layer` and `layers`.
_SCAN = re.compile(r"""
    "(?:[^"\\\n]|\\.)*" | '(?:[^'\\\n]|\\.)*' | \#[^\n]*
  | [{}<>]
  | \blayers?\b
""", re.VERBOSE)
_GAP = re.compile(r"(?:\s|\#[^\n]*)*:?(?:\s|\#[^\n]*)*").fullmatch

_KNOWN_FORKS = ("BVLC Caffe, SSD, PSPNet, DeepLab v1/v2, Faster R-CNN, R-FCN, Microsoft, SegNet, "
                "ENet")


class ParsedText(NamedTuple):
    """Where a network came from: file name, format and layer line numbers."""

    path: str
    text: str
    legacy: bool = False                 # V1 `layers` file
    layer_lines: Sequence[int] = ()
    layer_blocks: Sequence[tuple[int, int, int]] = ()   # see layer_blocks


def layer_blocks(text: str) -> list[tuple[int, int, int]]:
    """(line, start, end) of every top-level `layer {...}` or `layers {...}` block:
    its 1-based line, the offset of the field name and the offset after its close."""
    blocks: list[tuple[int, int, int]] = []
    depth, line, counted = 0, 1, 0
    name = None                     # a top-level layer/layers name: (line, start, end)
    current = None                  # the block being read: (line, start)
    for m in _SCAN.finditer(text):
        c = text[m.start()]
        if c in "{<":
            if depth == 0:
                gap = name is not None and _GAP(text, name[2], m.start())
                current = name[:2] if gap else None
            depth += 1
            name = None
        elif c in "}>":
            depth = max(depth - 1, 0)
            if depth == 0 and current is not None:
                blocks.append((*current, m.end()))
                current = None
        elif c == "l":
            if depth == 0:
                line += text.count("\n", counted, m.start())
                counted = m.start()
                name = (line, m.start(), m.end())
        elif c != "#":              # a string
            name = None
    return blocks


def _explain(message: str, source_line: str, schema: Schema) -> str:
    """Turn protobuf's parse message into advice a user can act on."""
    package = re.escape(f"{schema.package}.") if schema.package else ""
    m = re.search(rf'Message type "{package}([\w.]+)" has no field named "(\w+)"', message)
    if m:
        if schema is builtin():
            return (f"unknown field '{m.group(2)}' in {m.group(1)}: it is not in the schema "
                    f"caffe_atrous knows ({_KNOWN_FORKS}); check the spelling, remove the field, "
                    "or give your fork's caffe.proto with --proto FILE")
        return (f"unknown field '{m.group(2)}' in {m.group(1)}: it is not in {schema.origin} "
                "(--proto); check the spelling, remove the field, or give the caffe.proto of "
                "the fork this network was written for")
    m = re.search(rf'Enum type "{package}([\w.]+)" has no value named (\w+)', message)
    if m:
        return f"unknown value {m.group(2)} for {m.group(1)}; check the spelling"
    if "${" in source_line:
        return ("the file contains a template variable (${...}); substitute it "
                "(for example with sed or envsubst) before converting")
    return message.split(": ", 1)[-1] if message.startswith("'") else message


def parse(text: str, path: str = "<string>", schema: Schema | None = None) -> tuple[object, ParsedText]:
    """Parse prototxt text into a NetParameter of `schema` (the built-in one by
    default); raise AtrousError on bad input."""
    schema = schema or builtin()
    net = schema.NetParameter()
    try:
        textparse.merge(text, net)
    except textparse.ParseError as exc:
        line, col = exc.line, exc.column
        lines = text.splitlines()
        source_line = lines[line - 1] if line and 0 < line <= len(lines) else ""
        raw = str(exc)
        raw = re.sub(r"^\d+:\d+ : ", "", raw)
        raw = re.sub(r"^'[^\n]*?': ", "", raw)
        if line and not "\n".join(lines[line:]).strip() and raw.startswith('Expected "}"'):
            raw = f"the file ends inside a block: {raw[0].lower()}{raw[1:]}"
        raise AtrousError(_explain(raw, source_line, schema), file=path, line=line or None,
                          column=col or None) from None
    legacy = getattr(net, "layers", ())          # a fork's schema may lack V1 layers
    if net.layer and legacy:
        raise AtrousError("the file mixes V2 `layer` and V1 `layers` blocks; Caffe refuses such "
                          "files: use one kind", file=path)
    blocks = layer_blocks(text)
    lines = [b[0] for b in blocks]
    for i, v1 in enumerate(legacy):
        if v1.HasField("layer"):
            raise AtrousError("the file is in the V0 format (`layers { layer { ... } }`); upgrade it "
                              "with Caffe's upgrade_net_proto_text first",
                              file=path, line=lines[i] if i < len(lines) else None)
    return net, ParsedText(path=path, text=text, legacy=bool(legacy), layer_lines=lines,
                       layer_blocks=blocks)


def to_text(net) -> str:
    """Serialise deterministically (field-number order, shortest float form)."""
    from google.protobuf import text_format
    return text_format.MessageToString(net)
