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

The result is parsed again and must equal the converted NetParameter; if the
text uses a form this module does not edit (a `[1, 2]` list, a parameter
block written twice), `patch` raises NotPatchable and the caller writes the
canonical form instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from google.protobuf import text_format


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


@dataclass
class Field:
    name: str
    start: int                      # where the field name starts
    end: int                        # after its value (or closing brace)
    value: tuple[int, int] | None = None
    block: "Block | None" = None


@dataclass
class Block:
    open: int                       # position of "{"
    close: int                      # position of "}"
    fields: list[Field] = field(default_factory=list)

    def named(self, name: str) -> list[Field]:
        return [f for f in self.fields if f.name == name]


def _tokens(text: str):
    for m in _TOKEN.finditer(text):
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


def parse_layout(text: str) -> Block:
    toks = list(_tokens(text))
    root, _ = _parse_block(toks, 0, -1, len(text))
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


def _formatted(msg, name: str, values: list) -> list[str]:
    """Each value as text_format writes it (strings with minimal escapes)."""
    fd = msg.DESCRIPTOR.fields_by_name[name]
    if fd.type == fd.TYPE_STRING:
        return [_quote(v) for v in values]
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


def _indent_of(text: str, pos: int) -> str:
    ls = text.rfind("\n", 0, pos) + 1
    return re.match(r"[ \t]*", text[ls:]).group()


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
    if own_line and "\n" in text[block.open:block.close]:
        indent = _indent_of(text, anchor.start)
        newline = "\r\n" if "\r\n" in text else "\n"
        return (anchor.end, anchor.end, "".join(f"{newline}{indent}{name}: {v}" for v in values))
    return (anchor.end, anchor.end, "".join(f" {name}: {v}" for v in values))


def patch(text: str, before, after) -> str:
    """The original text with `after`'s differences from `before` written in.
    `after` may keep only the first layers of `before` (--truncate-after)."""
    root = parse_layout(text)
    layers = root.named("layer")
    if len(layers) != len(before.layer) or any(l.block is None for l in layers):
        raise NotPatchable("layer blocks not found")
    edits: list[tuple[int, int, str]] = []
    for i, new_layer in enumerate(after.layer):
        old_layer = before.layer[i]
        if old_layer == new_layer:
            continue
        block = layers[i].block
        for fd, _ in list(old_layer.ListFields()) + list(new_layer.ListFields()):
            if fd.type != fd.TYPE_MESSAGE or fd.is_repeated:
                if _values(old_layer, fd.name) != _values(new_layer, fd.name):
                    raise NotPatchable(f"layer field {fd.name} changed")
                continue
            old_p, new_p = getattr(old_layer, fd.name), getattr(new_layer, fd.name)
            if old_p == new_p:
                continue
            found = block.named(fd.name)
            if len(found) != 1 or found[0].block is None:
                raise NotPatchable(f"{fd.name} written {len(found)} times")
            _patch_message(text, found[0].block, old_p, new_p, edits)
    cut = len(text)
    if len(after.layer) < len(before.layer):
        end = layers[len(after.layer) - 1].end
        nl = text.find("\n", end)
        cut = len(text) if nl < 0 else nl + 1
    out = text[:cut]
    for start, end, value in sorted(set(e for e in edits if e[0] < cut), reverse=True):
        out = out[:start] + value + out[end:]
    check = type(after)()
    try:
        text_format.Parse(out, check)
    except text_format.ParseError as exc:
        raise NotPatchable(f"patched text does not parse: {exc}") from None
    if check != after:
        raise NotPatchable("patched text differs from the conversion")
    return out
