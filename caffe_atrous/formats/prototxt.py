"""Reading and writing prototxt text: NetParameter in, NetParameter out.

Parse errors become one-line AtrousErrors with file, line and column. The
reader also records the line on which each top-level `layer`/`layers` block
starts, so that later errors can point at the layer in the user's file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from google.protobuf import text_format

from ..errors import AtrousError
from .schema import Schema, builtin

# Tokens of the protobuf text format that matter for finding top-level blocks.
_TOKEN = re.compile(r"""
    (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<open>[{<])
  | (?P<close>[}>])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<newline>\n)
""", re.VERBOSE)

_KNOWN_FORKS = ("BVLC Caffe, SSD, PSPNet, DeepLab v1/v2, Faster R-CNN, R-FCN, Microsoft, SegNet, "
                "ENet")


@dataclass
class Source:
    """Where a network came from: file name, format and layer line numbers."""

    path: str
    text: str
    legacy: bool = False                 # V1 `layers` file
    layer_lines: list[int] = field(default_factory=list)


def _layer_lines(text: str) -> list[int]:
    """Line numbers (1-based) of every top-level `layer {` or `layers {`."""
    lines: list[int] = []
    depth = 0
    line = 1
    pending: int | None = None      # line of a top-level layer/layers identifier
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind == "newline":
            line += 1
        elif kind == "string":
            line += m.group().count("\n")
            pending = None
        elif kind == "open":
            if depth == 0 and pending is not None:
                lines.append(pending)
            pending = None
            depth += 1
        elif kind == "close":
            depth = max(depth - 1, 0)
        elif kind == "ident":
            pending = line if depth == 0 and m.group() in ("layer", "layers") else None
    return lines


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


def parse(text: str, path: str = "<string>", schema: Schema | None = None) -> tuple[object, Source]:
    """Parse prototxt text into a NetParameter of `schema` (the built-in one by
    default); raise AtrousError on bad input."""
    schema = schema or builtin()
    net = schema.NetParameter()
    try:
        text_format.Parse(text, net)
    except text_format.ParseError as exc:
        line, col = exc.GetLine(), exc.GetColumn()
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
    lines = _layer_lines(text)
    for i, v1 in enumerate(legacy):
        if v1.HasField("layer"):
            raise AtrousError("the file is in the V0 format (`layers { layer { ... } }`); upgrade it "
                              "with Caffe's upgrade_net_proto_text first",
                              file=path, line=lines[i] if i < len(lines) else None)
    return net, Source(path=path, text=text, legacy=bool(legacy), layer_lines=lines)


def to_text(net) -> str:
    """Serialise deterministically (field-number order, shortest float form)."""
    return text_format.MessageToString(net)
