"""Reading and writing .caffemodel files without decoding what we do not need.

A caffemodel is a binary NetParameter. Forks give layer parameters field
numbers that collide (see proto/caffe.proto), so no one schema can decode a
whole file. This module walks the protobuf wire format by hand and decodes
only what weights need, with numbers that are the same in every fork:

    NetParameter   name 1, layer 100 (V2), layers 2 (V1)
    V2 layer       name 1, type 2, blobs 7
    V1 layer       name 4, type 5 (enum), blobs 6, layer 1 (V0: name 1, type 2, blobs 50)
    BlobProto      num/channels/height/width 1-4, data 5, double_data 8, shape 7 (dim 1)

The file is memory-mapped, and blob data stays in the map (numpy views), so
checking a 230 MB model holds no copy of it. Writing streams layer by layer.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import AtrousError


class _Corrupt(Exception):
    pass


@dataclass
class Blob:
    shape: tuple[int, ...]
    raw: memoryview | None            # packed little-endian values (float32 or float64)
    dtype: str = "<f4"

    def array(self) -> np.ndarray:
        data = np.frombuffer(self.raw, dtype=self.dtype) if self.raw is not None else np.zeros(0)
        return data.reshape(self.shape) if data.size == int(np.prod(self.shape)) else data

    @property
    def count(self) -> int:
        return 0 if self.raw is None else len(self.raw) // np.dtype(self.dtype).itemsize


@dataclass
class Layer:
    name: str
    type: str
    blobs: list[Blob] = field(default_factory=list)
    raw_blobs: list[memoryview] = field(default_factory=list)   # the BlobProto records as stored
    raw: memoryview | None = None        # the whole layer record as stored
    legacy: bool = False                 # a V1 (`layers`) record

    def fields(self):
        """(number, wire type, raw bytes of the whole field) of a V2 record, in order."""
        buf, end = self.raw, len(self.raw)
        pos = 0
        while pos < end:
            start = pos
            key, pos = _varint(buf, pos, end)
            wire = key & 7
            if wire == 0:
                _, pos = _varint(buf, pos, end)
            elif wire == 2:
                length, pos = _varint(buf, pos, end)
                pos += length
            else:
                pos += 4 if wire == 5 else 8
            yield key >> 3, wire, buf[start:pos]


# ------------------------------------------------------------ wire format --

def _varint(buf, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise _Corrupt("a number runs past the end")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _Corrupt("a number is too long")


def _fields(buf, pos: int, end: int):
    """Yield (field number, wire type, value or (start, stop)) over buf[pos:end]."""
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos, end)
            yield number, wire, value
        elif wire == 2:
            length, pos = _varint(buf, pos, end)
            if pos + length > end:
                raise _Corrupt(f"field {number} needs {length} bytes, {end - pos} are left")
            yield number, wire, (pos, pos + length)
            pos += length
        elif wire == 5:
            if pos + 4 > end:
                raise _Corrupt("a 4-byte value runs past the end")
            yield number, wire, bytes(buf[pos:pos + 4])
            pos += 4
        elif wire == 1:
            if pos + 8 > end:
                raise _Corrupt("an 8-byte value runs past the end")
            yield number, wire, bytes(buf[pos:pos + 8])
            pos += 8
        else:
            raise _Corrupt(f"unknown wire type {wire} at byte {pos}")
    if pos != end:
        raise _Corrupt("a field runs past its message")


def _packed_varints(buf, start: int, stop: int) -> list[int]:
    out, pos = [], start
    while pos < stop:
        v, pos = _varint(buf, pos, stop)
        out.append(v)
    return out


def _blob(buf, start: int, stop: int) -> Blob:
    legacy = [0, 0, 0, 0]
    shape: tuple[int, ...] | None = None
    raw, dtype = None, "<f4"
    floats: list[bytes] = []
    for number, wire, value in _fields(buf, start, stop):
        if number in (1, 2, 3, 4) and wire == 0:
            legacy[number - 1] = value
        elif number == 7 and wire == 2:
            dims: list[int] = []
            for n, w, v in _fields(buf, *value):
                if n == 1:
                    dims.extend(_packed_varints(buf, *v) if w == 2 else [v])
            shape = tuple(dims)
        elif number == 5 and wire == 2:
            raw = memoryview(buf)[value[0]:value[1]]
        elif number == 5 and wire == 5:           # unpacked floats (very old writers)
            floats.append(value)
        elif number == 8 and wire == 2:
            raw, dtype = memoryview(buf)[value[0]:value[1]], "<f8"
    if floats:
        raw = memoryview(b"".join(floats))
    if shape is None:
        shape = tuple(legacy) if any(legacy) else ((len(raw) // 4,) if raw is not None else (0,))
    return Blob(shape, raw, dtype)


_V1_TYPE_NAMES: dict[int, str] | None = None


def _v1_type(number: int) -> str:
    global _V1_TYPE_NAMES
    if _V1_TYPE_NAMES is None:
        from .schema import builtin
        from .upgrade import V1_TYPES
        enum = builtin().V1LayerParameter.LayerType
        _V1_TYPE_NAMES = {enum.Value(k): v for k, v in V1_TYPES.items()}
    return _V1_TYPE_NAMES.get(number, f"V1 type {number}")


def _layer(buf, start: int, stop: int, legacy: bool) -> Layer:
    name_f, type_f, blobs_f = (4, 5, 6) if legacy else (1, 2, 7)
    layer = Layer(name="", type="", raw=memoryview(buf)[start:stop], legacy=legacy)
    for number, wire, value in _fields(buf, start, stop):
        if number == name_f and wire == 2:
            layer.name = bytes(buf[value[0]:value[1]]).decode("utf-8", "replace")
        elif number == type_f:
            layer.type = (_v1_type(value) if wire == 0
                          else bytes(buf[value[0]:value[1]]).decode("utf-8", "replace"))
        elif number == blobs_f and wire == 2:
            layer.blobs.append(_blob(buf, *value))
            layer.raw_blobs.append(memoryview(buf)[value[0]:value[1]])
        elif legacy and number == 1 and wire == 2:          # V0 layer inside a V1 record
            inner = _layer_v0(buf, *value)
            layer.name = layer.name or inner.name
            layer.type = layer.type or inner.type
            layer.blobs.extend(inner.blobs)
            layer.raw_blobs.extend(inner.raw_blobs)
    return layer


def _layer_v0(buf, start: int, stop: int) -> Layer:
    layer = Layer(name="", type="")
    for number, wire, value in _fields(buf, start, stop):
        if number == 1 and wire == 2:
            layer.name = bytes(buf[value[0]:value[1]]).decode("utf-8", "replace")
        elif number == 2 and wire == 2:
            layer.type = bytes(buf[value[0]:value[1]]).decode("utf-8", "replace")
        elif number == 50 and wire == 2:
            layer.blobs.append(_blob(buf, *value))
            layer.raw_blobs.append(memoryview(buf)[value[0]:value[1]])
    return layer


class Weights:
    """The layers of a caffemodel, memory-mapped. Use as a context manager."""

    def __init__(self, path: str):
        self.path = path
        self.layers: list[Layer] = []
        self.name = ""
        self._file = None
        self._map = None
        try:
            self._file = open(path, "rb")
            size = os.fstat(self._file.fileno()).st_size
            if size == 0:
                raise AtrousError("empty file, not a caffemodel", file=path)
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError:
            raise AtrousError("no such file", file=path, exit_code=2) from None
        except IsADirectoryError:
            raise AtrousError("is a directory, not a caffemodel", file=path, exit_code=2) from None
        except OSError as exc:
            self.close()
            raise AtrousError(f"cannot read: {exc.strerror}", file=path) from None
        try:
            self._read(self._map)
        except _Corrupt as exc:
            self.close()
            raise AtrousError(f"truncated or corrupt caffemodel ({exc}); download or copy it again",
                              file=path) from None
        except AtrousError:
            self.close()
            raise

    def _read(self, buf) -> None:
        seen_layers = False
        for number, wire, value in _fields(buf, 0, len(buf)):
            if number in (100, 2) and wire == 2:
                self.layers.append(_layer(buf, *value, legacy=number == 2))
                seen_layers = True
            elif number == 1 and wire == 2:
                self.name = bytes(buf[value[0]:value[1]]).decode("utf-8", "replace")
        if not seen_layers:
            raise AtrousError("holds no layers: is this a caffemodel?", file=self.path)

    def by_name(self) -> dict[str, Layer]:
        out: dict[str, Layer] = {}
        for layer in self.layers:
            out.setdefault(layer.name, layer)
        return out

    def close(self) -> None:
        for layer in self.layers:
            for b in layer.blobs:
                b.raw = None
        self.layers = []
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:       # numpy views still alive: the map closes with them
                pass
            self._map = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "Weights":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ----------------------------------------------------------------- writing --

def _key(number: int, wire: int) -> bytes:
    return _uvarint(number << 3 | wire)


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _len_field(number: int, payload_len: int) -> bytes:
    return _key(number, 2) + _uvarint(payload_len)


def _string(number: int, text: str) -> bytes:
    data = text.encode("utf-8")
    return _len_field(number, len(data)) + data


def encode_field(number: int, payload: bytes) -> bytes:
    """A length-delimited field: key, length, payload."""
    return _len_field(number, len(payload)) + payload


def encode_blob(array: np.ndarray) -> list[bytes]:
    """BlobProto pieces for a float32 array: shape (7), then packed data (5)."""
    dims = b"".join(_uvarint(int(d)) for d in array.shape)
    shape = _len_field(1, len(dims)) + dims
    data = np.ascontiguousarray(array, dtype="<f4").tobytes()
    return [_len_field(7, len(shape)) + shape, _len_field(5, len(data)), data]


class Writer:
    """Streams a V2 caffemodel: `add(name, type, blob pieces...)` per layer."""

    def __init__(self, path: str, net_name: str = ""):
        self.path = path
        self._tmp = f"{path}.{os.getpid()}.tmp"
        try:
            self._fh = open(self._tmp, "wb")
        except OSError as exc:
            raise AtrousError(f"cannot write: {exc.strerror}", file=path) from None
        if net_name:
            self._fh.write(_string(1, net_name))

    def add_record(self, pieces: list[bytes | memoryview]) -> None:
        """A V2 layer record made of already-encoded fields."""
        self._fh.write(_len_field(100, sum(len(p) for p in pieces)))
        for p in pieces:
            self._fh.write(p)

    def add(self, name: str, type_: str, blobs: list[list[bytes]] | list[memoryview],
            header: bytes = b"") -> None:
        """blobs: each either the pieces of encode_blob or a stored BlobProto record.
        header: extra serialized LayerParameter fields (bottom, top, params)."""
        head = _string(1, name) + _string(2, type_) + header
        pieces = [head]
        for blob in blobs:
            parts = [blob] if isinstance(blob, (bytes, memoryview)) else blob
            size = sum(len(p) for p in parts)
            pieces.append(_len_field(7, size))
            pieces.extend(parts)
        self.add_record(pieces)

    def close(self) -> None:
        self._fh.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._fh.close()
        try:
            os.unlink(self._tmp)
        except OSError:
            pass

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


# LayerParameter fields that a conversion changes (the same numbers in every fork).
_CHANGED = {106: "convolution_param", 121: "pooling_param", 130: "python_param",
            203: "prior_box_param"}


def write_converted(net, weights: Weights, out_path: str) -> int:
    """Write a caffemodel for the converted network `net` with the blobs of `weights`.

    A V2 record is copied field by field as stored, so fork parameters pass
    through byte for byte, except the parameters the conversion changes, which
    come from `net`. A V1 record becomes a V2 record: name, type, blobs, and the
    layer's definition from `net`. Returns the number of layers written."""
    stored = weights.by_name()
    count = 0
    with Writer(out_path, net.name) as w:
        for layer in net.layer:
            source = stored.get(layer.name)
            if source is None or not source.raw_blobs:
                continue
            if source.legacy:
                definition = type(layer)()
                definition.CopyFrom(layer)
                for name in ("blobs", "name", "type"):
                    definition.ClearField(name)
                w.add(layer.name, layer.type, source.raw_blobs,
                      header=definition.SerializeToString())
            else:
                pieces = []
                for number, _, raw in source.fields():
                    pname = _CHANGED.get(number)
                    if pname and layer.HasField(pname):
                        pieces.append(encode_field(number, getattr(layer, pname).SerializeToString()))
                    else:
                        pieces.append(raw)
                w.add_record(pieces)
            count += 1
    return count
