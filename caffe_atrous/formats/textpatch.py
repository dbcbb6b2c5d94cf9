"""Reviewable output: apply a conversion to the user's own text.

The converted network is computed as a NetParameter; this module writes only
its differences into the original prototxt, field by field, so comments,
field order, blank lines and layout survive and `diff in.prototxt out.prototxt`
shows just the fields that changed:

    convolution_param {          convolution_param {
      num_output: 256              num_output: 256
      kernel_size: 3               kernel_size: 3
      stride: 2          ->        stride: 1
      pad: 1                       pad: 2
    }                              dilation: 2
                                 }

Each rewritten layer block is parsed again and must equal its converted layer
(see `patch`); if the text uses a form this module does not edit (a `[1, 2]` list, a parameter
block written twice), `patch` raises NotPatchable and the caller writes the
canonical form instead. A layer whose type changes (--fc-to-conv) gets its
`type` value and its parameter block replaced in place.
"""

from __future__ import annotations

import re
from google.protobuf.descriptor import FieldDescriptor

from . import textparse
from .prototxt import layer_blocks


_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>(?:"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')(?:[ \t\r\n]*(?:"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'))*)
  | (?P<open>[{<])
  | (?P<close>[}>])
  | (?P<list>\[[^\]]*\])
  | (?P<punct>[:;,])
  | (?P<word>[^\s{}<>\[\]:;,\#"']+)
""", re.VERBOSE)


class NotPatchable(Exception):
    """The text uses a form the patcher does not edit; use the canonical output."""


class Field:
    """One field of the text: where its name starts, where it ends (after its value
    or closing brace), and its value's span or its block."""

    __slots__ = ("name", "start", "end", "value", "block")

    def __init__(self, name: str, start: int, end: int, value: tuple[int, int] | None = None,
                 block: Block | None = None):
        self.name, self.start, self.end = name, start, end
        self.value, self.block = value, block


class Block:
    """A `{ ... }` block: the positions of its braces and its fields in order."""

    __slots__ = ("open", "close", "fields")

    def __init__(self, open: int, close: int):
        self.open, self.close = open, close
        self.fields: list[Field] = []

    def named(self, name: str) -> list[Field]:
        """The fields of this block called `name`, in order."""
        return [f for f in self.fields if f.name == name]


def _tokens(text: str, start: int = 0, end: int | None = None):
    for m in _TOKEN.finditer(text, start, len(text) if end is None else end):
        kind = m.lastgroup
        if kind in ("ws", "comment"):
            continue
        yield kind, m.group(), m.start(), m.end()


def _parse_block(toks: list, i: int, open_pos: int, text_len: int) -> tuple[Block, int]:
    """Fields until the matching close (or the end for the top level)."""
    block = Block(open=open_pos, close=text_len)
    while i < len(toks):
        kind, value, start, end = toks[i]
        if kind == "close":
            block.close = start
            return block, i + 1
        if kind == "punct":
            i += 1
            continue
        if kind != "word":
            raise NotPatchable(f"unexpected {value!r}")
        f = Field(value, start, end)
        i += 1
        if i < len(toks) and toks[i][0] == "punct" and toks[i][1] == ":":
            i += 1
        if i >= len(toks):
            raise NotPatchable("field without a value")
        kind, value, start, end = toks[i]
        if kind == "open":
            inner, i = _parse_block(toks, i + 1, start, text_len)
            f.block, f.end = inner, inner.close + 1
        elif kind == "list":
            raise NotPatchable("list syntax")
        else:
            f.value, f.end = (start, end), end
            i += 1
        block.fields.append(f)
    return block, i


def parse_layout(text: str, start: int = 0, end: int | None = None) -> Block:
    """The fields of text[start:end] (all of it by default), with their positions."""
    end = len(text) if end is None else end
    toks = list(_tokens(text, start, end))
    root, _ = _parse_block(toks, 0, start - 1, end)
    return root


def _values(msg, name: str) -> list:
    fd = msg.DESCRIPTOR.fields_by_name[name]
    if fd.is_repeated:
        return list(getattr(msg, name))
    return [getattr(msg, name)] if msg.HasField(name) else []


def _quote(value: str) -> str:
    """A string literal with only the escapes it needs."""
    body = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{body}"'


_INTEGERS = {FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT32,
             FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SINT64}


def _formatted(msg, name: str, values: list) -> list[str]:
    """Each value as text_format writes it (strings with minimal escapes)."""
    fd = msg.DESCRIPTOR.fields_by_name[name]
    if fd.type == fd.TYPE_STRING:
        return [_quote(v) for v in values]
    if fd.type in _INTEGERS:
        return [str(v) for v in values]
    if fd.type == fd.TYPE_BOOL:
        return ["true" if v else "false" for v in values]
    if fd.type == fd.TYPE_ENUM:
        names = fd.enum_type.values_by_number
        return [names[v].name if v in names else str(v) for v in values]
    from google.protobuf import text_format       # floats: its shortest round-trip form
    tmp = type(msg)()
    if fd.is_repeated:
        getattr(tmp, name).extend(values)
    else:
        setattr(tmp, name, values[0])
    out = []
    for line in text_format.MessageToString(tmp).splitlines():
        out.append(line.split(": ", 1)[1])
    return out


def _line_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen [start, end) to the whole line when nothing else is on it."""
    ls = text.rfind("\n", 0, start) + 1
    le = text.find("\n", end)
    le = len(text) if le < 0 else le
    if text[ls:start].strip() == "" and text[end:le].strip() == "":
        return ls, min(le + 1, len(text))
    # inline: also take one space after the field
    if end < len(text) and text[end] == " ":
        end += 1
    return start, end


_INDENT = re.compile(r"[ \t]*")


def _indent_of(text: str, pos: int) -> str:
    ls = text.rfind("\n", 0, pos) + 1
    return _INDENT.match(text, ls).group()


def _patch_message(text: str, block: Block, before, after, edits: list) -> None:
    """Edits that turn block (holding `before`) into `after`, field by field."""
    names = [fd.name for fd, _ in before.ListFields()] + [fd.name for fd, _ in after.ListFields()]
    for name in dict.fromkeys(names):
        old, new = _values(before, name), _values(after, name)
        if old == new:
            continue
        fd = before.DESCRIPTOR.fields_by_name[name]
        if fd.type == fd.TYPE_MESSAGE:
            raise NotPatchable(f"nested message {name} changed")
        found = block.named(name)
        if len(found) != len(old):
            raise NotPatchable(f"{name} written in an unexpected form")
        texts = _formatted(after, name, new) if new else []
        for occ, value in zip(found, texts):
            edits.append((occ.value[0], occ.value[1], value))
        for occ in found[len(texts):]:
            edits.append((*_line_bounds(text, occ.start, occ.end), ""))
        extra = texts[len(found):]
        if extra:
            edits.append(_insertion(text, block, name, extra, after_field=found[-1] if found else None))


def _insertion(text: str, block: Block, name: str, values: list[str],
               after_field: Field | None) -> tuple[int, int, str]:
    anchor = after_field or (block.fields[-1] if block.fields else None)
    if anchor is None:
        return (block.open + 1, block.open + 1, "".join(f" {name}: {v}" for v in values) + " ")
    ls = text.rfind("\n", 0, anchor.start) + 1
    own_line = text[ls:anchor.start].strip() == ""
    if own_line and text.find("\n", block.open, block.close) >= 0:
        indent = _indent_of(text, anchor.start)
        newline = "\r\n" if text.find("\r\n", ls - 2, anchor.start) >= 0 else "\n"
        return (anchor.end, anchor.end, "".join(f"{newline}{indent}{name}: {v}" for v in values))
    return (anchor.end, anchor.end, "".join(f" {name}: {v}" for v in values))


def _swap_params(text: str, block: Block, old_layer, new_layer, edits: list) -> set[str]:
    """A layer whose type changed (InnerProduct -> Convolution): the `type` value
    and the one parameter block replaced by the other, in place. Returns the
    fields handled here (none when the type is the same)."""
    if old_layer.type == new_layer.type:
        return set()
    def params(layer):
        return {fd.name for fd, _ in layer.ListFields()
                if fd.type == fd.TYPE_MESSAGE and not fd.is_repeated}
    gone, new = params(old_layer) - params(new_layer), params(new_layer) - params(old_layer)
    types, olds = block.named("type"), block.named(next(iter(gone), ""))
    if len(gone) != 1 or len(new) != 1 or len(types) != 1 or len(olds) != 1 or not olds[0].block:
        raise NotPatchable("the layer's type and parameters changed in an unexpected form")
    name, field = next(iter(new)), olds[0]
    edits.append((types[0].value[0], types[0].value[1], _quote(new_layer.type)))
    body = getattr(new_layer, name)
    from google.protobuf import text_format
    if "\n" not in text[field.start:field.end]:
        inner = text_format.MessageToString(body, as_one_line=True)
        edits.append((field.start, field.end, f"{name} {{ {inner} }}"))
    else:
        indent, newline = _indent_of(text, field.start), "\r\n" if "\r\n" in text else "\n"
        step = _indent_of(text, field.block.fields[0].start)[len(indent):] if field.block.fields \
            else "  "
        lines = [f"{indent}{step}{line}" for line in text_format.MessageToString(body).splitlines()]
        edits.append((field.start, field.end,
                      f"{name} {{{newline}" + newline.join(lines) + f"{newline}{indent}}}"))
    return {"type", name, next(iter(gone))}


def _layer_edits(text: str, span: tuple[int, int, int], old_layer, new_layer, edits: list) -> None:
    """Edits that turn one layer block's text (holding old_layer) into new_layer."""
    found = parse_layout(text, span[1], span[2]).fields
    if len(found) != 1 or found[0].name not in ("layer", "layers") or found[0].block is None:
        raise NotPatchable("layer block not found")
    block = found[0].block
    swapped = _swap_params(text, block, old_layer, new_layer, edits)
    for fd, _ in list(old_layer.ListFields()) + list(new_layer.ListFields()):
        if fd.name in swapped:
            continue
        if fd.type != fd.TYPE_MESSAGE or fd.is_repeated:
            if _values(old_layer, fd.name) != _values(new_layer, fd.name):
                raise NotPatchable(f"layer field {fd.name} changed")
            continue
        old_p, new_p = getattr(old_layer, fd.name), getattr(new_layer, fd.name)
        if old_p == new_p:
            continue
        params = block.named(fd.name)
        if len(params) != 1 or params[0].block is None:
            raise NotPatchable(f"{fd.name} written {len(params)} times")
        _patch_message(text, params[0].block, old_p, new_p, edits)


def _apply(text: str, start: int, end: int, edits: list) -> str:
    """text[start:end] with the edits (absolute positions inside it) written in."""
    pieces, pos = [], start
    for a, b, value in sorted(set(edits)):
        if a < pos:                 # an insertion after a field that was removed:
            sep = next((x for x in ("\r\n", "\n", " ") if value.startswith(x)), None)
            if a != b or sep is None:
                raise NotPatchable("overlapping edits")
            pieces.append(value[len(sep):] + sep)   # it takes the removed field's place
            continue
        pieces += [text[pos:a], value]
        pos = b
    return "".join(pieces) + text[pos:end]


def _parses_to(text: str, expected) -> None:
    check = type(expected)()
    try:
        textparse.merge(text, check)
    except textparse.ParseError as exc:
        raise NotPatchable(f"patched text does not parse: {exc}") from None
    if check != expected:
        raise NotPatchable("patched text differs from the conversion")


def patch(text: str, before, after, spans: list[tuple[int, int, int]] | None = None) -> str:
    """The original text with `after`'s differences from `before` written in.
    `after` may keep only the first layers of `before` (--truncate-after).
    `spans`: layer_blocks(text), when the caller has it.

    Only the layer blocks that change are read field by field and rewritten;
    every other byte is copied. Each rewritten block is parsed again and must
    be exactly its layer of `after`: since the blocks are top-level fields of a
    text that parsed, the whole output then parses to `after`. A truncated
    output is parsed again whole."""
    spans = layer_blocks(text) if spans is None else spans
    if len(spans) != len(before.layer):
        raise NotPatchable("layer blocks not found")
    keep = len(after.layer)
    pieces, pos = [], 0
    for i, new_layer in enumerate(after.layer):
        if before.layer[i] == new_layer:
            continue
        edits: list[tuple[int, int, str]] = []
        _line, start, end = spans[i]
        _layer_edits(text, spans[i], before.layer[i], new_layer, edits)
        block = _apply(text, start, end, edits)
        expected = type(after)()
        expected.layer.add().CopyFrom(new_layer)
        _parses_to(block, expected)
        pieces += [text[pos:start], block]
        pos = end
    if keep == len(before.layer):
        return "".join(pieces) + text[pos:]
    nl = text.find("\n", spans[keep - 1][2])
    out = "".join(pieces) + text[pos:len(text) if nl < 0 else nl + 1]
    _parses_to(out, after)
    return out
