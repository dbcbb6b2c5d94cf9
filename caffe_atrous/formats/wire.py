"""The protobuf wire format, by hand: one bounds-checked walker for reading,
and the few encoders writing needs.

Reading by field number, without a schema, is what lets caffe_atrous read
caffemodels of every Caffe fork (their parameter numbers collide). `walk`
returns each field with where it lies in the buffer, so a writer can copy
stored bytes without parsing them again.
"""

from __future__ import annotations

from typing import NamedTuple


class Corrupt(Exception):
    """The bytes are not a well-formed protobuf message."""


class Field(NamedTuple):
    """One field as stored: key at `start`, payload at `data`, ends before `stop`."""
    number: int
    wire: int
    start: int
    data: int
    stop: int
    value: int          # the number itself for a varint field (wire type 0), else 0


def varint(buf, pos: int, end: int) -> tuple[int, int]:
    """The varint at buf[pos] and the position after it."""
    result = shift = 0
    while True:
        if pos >= end:
            raise Corrupt("a number runs past the end")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise Corrupt("a number is too long")


def walk(buf, pos: int, end: int) -> list[Field]:
    """The fields of the message in buf[pos:end]; Corrupt unless they fill it exactly."""
    # The one-byte keys, lengths and values most fields have are read inline,
    # and the tuples made without Field's Python-level constructor: ResNet-152's
    # caffemodel has some 8,000 fields, read on every --weights run.
    out: list[Field] = []
    append, make = out.append, tuple.__new__
    while pos < end:
        start, key = pos, buf[pos]
        pos += 1
        if key & 0x80:
            key, pos = varint(buf, start, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise Corrupt(f"field number 0 at byte {start}")
        value, data = 0, pos
        if wire == 2:
            if pos < end and not buf[pos] & 0x80:
                length, data = buf[pos], pos + 1
            else:
                length, data = varint(buf, pos, end)
            pos = data + length
            if pos > end:
                raise Corrupt(f"field {number} needs {length} bytes, {end - data} are left")
        elif wire == 0:
            if pos < end and not buf[pos] & 0x80:
                value, pos = buf[pos], pos + 1
            else:
                value, pos = varint(buf, pos, end)
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            if pos > end:
                raise Corrupt(f"a {pos - data}-byte value runs past the end")
        else:
            raise Corrupt(f"unknown wire type {wire} at byte {start}")
        append(make(Field, (number, wire, start, data, pos, value)))
    return out


def signed(v: int) -> int:
    """A varint read as the 64-bit signed number protobuf stores for int32/int64."""
    return v - (1 << 64) if v >= 1 << 63 else v


def packed_varints(buf, pos: int, end: int) -> list[int]:
    """The numbers of a packed repeated varint field's payload."""
    out = []
    while pos < end:
        v, pos = varint(buf, pos, end)
        out.append(v)
    return out


def uvarint(value: int) -> bytes:
    """A varint; negative numbers as their 64-bit two's complement, as protobuf does."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_head(number: int, payload_len: int) -> bytes:
    """Key and length of a length-delimited field whose payload follows."""
    return uvarint(number << 3 | 2) + uvarint(payload_len)


def encode_field(number: int, payload: bytes) -> bytes:
    """A length-delimited field: key, length, payload."""
    return field_head(number, len(payload)) + payload
