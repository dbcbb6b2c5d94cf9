"""A fast reader for the part of the protobuf text format that prototxt files use.

protobuf's own text parser (google.protobuf.text_format) is pure Python even
with the upb backend, and it dominated a conversion's run time. This reader
tokenizes with one regular expression, splitting the text exactly where
text_format's tokenizer does, and fills the message with the same setattr /
append / add calls that text_format makes, so what it builds is the same
message. It accepts only a strict subset: plain `name: value` and
`name { ... }` / `name < ... >` fields, decimal integers, plain floats,
the boolean words, enum names and string literals without escapes. Anything else
(escapes, `[a, b]` lists, hex or octal numbers, `inf`, a field set twice, an
unknown field, any syntax error) raises Unsupported before the message is
returned, and `merge` then lets text_format parse the whole text: it reads the
rarer forms and words the errors.

    merge(text, net)     # net: an empty message; raises ParseError

text_format is imported only when it is needed: its import alone costs more
than reading a ResNet-152 prototxt here.
"""

from __future__ import annotations

import re

from google.protobuf import descriptor

# Whitespace and comments, then one token: an identifier or a number word (the two
# word forms of text_format's tokenizer), a string literal without escapes, any
# other single character, or (empty) the end of the text. Since one of these always
# matches after the whitespace, the regex never backtracks into it (nor into a
# trailing comment).
_TOKENS = re.compile(r"""
    (?:\s+|\#[^\n]*)*
    ( [a-zA-Z_][0-9a-zA-Z_+-]*
    | (?:[0-9+-]|\.[0-9])[0-9a-zA-Z_.+-]*
    | "[^"\n\\]*" | '[^'\n\\]*'
    | .
    | \Z )
""", re.VERBOSE)
_INT = re.compile(r"-?(?:0|[1-9][0-9]*)").fullmatch
_FLOAT = re.compile(r"-?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?").fullmatch
MAX_DEPTH = 50


class Unsupported(Exception):
    """The text uses a form this reader leaves to text_format (or is invalid)."""


class ParseError(Exception):
    """text_format's ParseError, re-raised: its message, line and column (0: unknown)."""

    def __init__(self, message: str, line: int, column: int):
        super().__init__(message)
        self.line, self.column = line, column


def _integer(low: int, high: int):
    def convert(token: str) -> int:
        if not _INT(token):
            raise Unsupported(token)
        value = int(token)
        if not low <= value <= high:
            raise Unsupported(token)
        return value
    return convert


def _float(token: str) -> float:
    if not _FLOAT(token):
        raise Unsupported(token)
    return float(token)


_BOOLS = {"true": True, "t": True, "1": True, "True": True,
          "false": False, "f": False, "0": False, "False": False}


def _bool(token: str) -> bool:
    value = _BOOLS.get(token)
    if value is None:
        raise Unsupported(token)
    return value


def _string(token: str) -> str:
    quote = token[:1]
    if (quote != '"' and quote != "'") or len(token) < 2 or token[-1] != quote:
        raise Unsupported(token)
    value = token[1:-1]
    if not value.isascii():
        try:
            value.encode("utf-8")          # a lone surrogate (undecodable input)
        except UnicodeEncodeError:
            raise Unsupported(token) from None
    return value


def _enum(fd):
    by_name = {v.name: v.number for v in fd.enum_type.values}

    def convert(token: str) -> int:
        number = by_name.get(token)
        if number is None:
            raise Unsupported(token)
        return number
    return convert


FD = descriptor.FieldDescriptor
_CONVERTERS = {
    FD.TYPE_INT32: _integer(-2**31, 2**31 - 1), FD.TYPE_SINT32: _integer(-2**31, 2**31 - 1),
    FD.TYPE_SFIXED32: _integer(-2**31, 2**31 - 1), FD.TYPE_INT64: _integer(-2**63, 2**63 - 1),
    FD.TYPE_SINT64: _integer(-2**63, 2**63 - 1), FD.TYPE_SFIXED64: _integer(-2**63, 2**63 - 1),
    FD.TYPE_UINT32: _integer(0, 2**32 - 1), FD.TYPE_FIXED32: _integer(0, 2**32 - 1),
    FD.TYPE_UINT64: _integer(0, 2**64 - 1), FD.TYPE_FIXED64: _integer(0, 2**64 - 1),
    FD.TYPE_FLOAT: _float, FD.TYPE_DOUBLE: _float, FD.TYPE_BOOL: _bool, FD.TYPE_STRING: _string,
}
_MESSAGE, _SCALAR, _STRING = 0, 1, 2
_TABLES: dict = {}


def _unsupported(token: str):
    raise Unsupported(token)


def _is_map_entry(desc) -> bool:
    """A map's entry type; read off its options only where it has any, since
    GetOptions() imports descriptor_pb2 (a map entry always has options)."""
    return desc.has_options and desc.GetOptions().map_entry


def _entry(fd) -> tuple:
    """(kind, repeated, converter) of one field; fields this reader leaves to
    text_format get a converter that always refuses."""
    special = fd.containing_oneof is not None or fd.is_extension or fd.type == FD.TYPE_GROUP
    if fd.type == FD.TYPE_MESSAGE:
        if special or _is_map_entry(fd.message_type):
            return _SCALAR, fd.is_repeated, _unsupported
        return _MESSAGE, fd.is_repeated, None
    convert = _enum(fd) if fd.type == FD.TYPE_ENUM else _CONVERTERS.get(fd.type, _unsupported)
    if special or not (fd.is_repeated or fd.has_presence):
        convert = _unsupported
    return (_STRING if fd.type == FD.TYPE_STRING else _SCALAR), fd.is_repeated, convert


class _Table(dict):
    """A message type's entries by field name, each made the first time it is read
    (a LayerParameter has some hundred fields; a network uses a few)."""

    def __init__(self, desc):
        super().__init__()
        self.fields = desc.fields_by_name

    def __missing__(self, name: str):
        fd = self.fields.get(name)
        if fd is None:
            raise Unsupported(name)
        entry = self[name] = _entry(fd)
        return entry


def _table(desc) -> _Table:
    table = _TABLES.get(desc)
    if table is None:
        table = _TABLES[desc] = _Table(desc)
    return table


_CLOSE = {"{": "}", "<": ">"}


def _submessage(msg, name: str, repeated: bool):
    """The message a `name { ... }` block fills: a new element, or the field itself
    (once: text_format refuses a singular field set twice)."""
    if repeated:
        return getattr(msg, name).add()
    if msg.HasField(name):
        raise Unsupported(name)
    sub = getattr(msg, name)
    sub.SetInParent()
    return sub


def read(text: str, message) -> None:
    """Fill the empty `message` from text; raise Unsupported where text_format must decide."""
    tokens = _TOKENS.findall(text)
    while tokens and not tokens[-1]:
        tokens.pop()
    n = len(tokens)
    tokens += ["", "", ""]              # past the end: refused below, no bounds checks
    stack: list = []
    msg, table, end = message, _table(message.DESCRIPTOR), None
    i = 0
    while i < n:
        name = tokens[i]
        i += 1
        if name == end:
            msg, table, end = stack.pop()
        else:
            kind, repeated, convert = table[name]
            token = tokens[i]
            if kind == _MESSAGE:
                if token == ":":
                    i += 1
                    token = tokens[i]
                close = _CLOSE.get(token)
                if close is None or len(stack) >= MAX_DEPTH:
                    raise Unsupported(token)
                stack.append((msg, table, end))
                msg = _submessage(msg, name, repeated)
                table, end = _table(msg.DESCRIPTOR), close
                i += 1
                continue
            if token != ":":
                raise Unsupported(token)
            value = convert(tokens[i + 1])
            i += 2
            if kind == _STRING and tokens[i][:1] in ("'", '"'):
                raise Unsupported("adjacent strings")
            if repeated:
                getattr(msg, name).append(value)
            elif msg.HasField(name):
                raise Unsupported(name)
            else:
                setattr(msg, name, value)
        if tokens[i] == "," or tokens[i] == ";":
            i += 1
    if end is not None:
        raise Unsupported("the text ends inside a block")


def merge(text: str, message) -> None:
    """Parse text into the empty `message`: fast where `read` can, else text_format
    (whose ParseError, as ours, then describes any problem)."""
    try:
        read(text, message)
        return
    except Unsupported:
        message.Clear()
    from google.protobuf import text_format
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        raise ParseError(str(exc), exc.GetLine() or 0, exc.GetColumn() or 0) from None
