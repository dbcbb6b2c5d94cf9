"""Reading and writing .caffemodel files without decoding what we do not need.

A caffemodel is a binary NetParameter. Forks give layer parameters field
numbers that collide (see proto/caffe.proto), so no one schema can decode a
whole file. This module reads it through the wire format (wire.py) and
decodes only what weights need, with numbers that are the same in every fork:

    NetParameter   name 1, layer 100 (V2), layers 2 (V1)
    V2 layer       name 1, type 2, blobs 7
    V1 layer       name 4, type 5 (enum), blobs 6, layer 1 (V0: name 1, type 2, blobs 50)
    BlobProto      num/channels/height/width 1-4, data 5, double_data 8, shape 7 (dim 1)

Each layer and blob keeps where it lies in the file, so a writer can copy it
without parsing it again (weights_out.py). The file is memory-mapped and blob
data stays in the map, so checking a 230 MB model holds no copy of it.
"""

from __future__ import annotations

import mmap
import os
from typing import NamedTuple

from ..core.atomic import atomic_file
from ..core.errors import AtrousError
from .pieces import size
from .wire import Corrupt, Field, encode_field, field_head, packed_varints, signed, uvarint, walk

_ITEMSIZE = {"<f4": 4, "<f8": 8}


# ---------------------------------------------------------------- reading --

class Blob:
    """One stored BlobProto: its shape and values (little-endian float32 or
    float64, still in the mapped file), and where it lies: file[start:stop].
    `legacy`: the shape came from the 4-D num/channels/height/width fields."""

    __slots__ = ("shape", "raw", "dtype", "start", "stop", "legacy")

    def __init__(self, shape: tuple[int, ...], raw: memoryview | bytes | None,
                 dtype: str = "<f4", start: int = 0, stop: int = 0, legacy: bool = False):
        self.shape, self.raw, self.dtype, self.start, self.stop = shape, raw, dtype, start, stop
        self.legacy = legacy

    def array(self):
        """The values as a read-only numpy array of `shape`, a view into the mapped file; flat
        when the number stored differs from the shape's, empty when none are stored."""
        import numpy as np
        data = np.frombuffer(self.raw, dtype=self.dtype) if self.raw is not None else np.zeros(0)
        return data.reshape(self.shape) if data.size == self.size else data

    @property
    def size(self) -> int:
        """Number of values the shape calls for."""
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def count(self) -> int:
        """Number of values stored."""
        return 0 if self.raw is None else len(self.raw) // _ITEMSIZE[self.dtype]


def _dims(buf, start: int, stop: int) -> tuple[int, ...]:
    """The `dim` values of a BlobShape message, packed or one per field."""
    dims: list[int] = []
    for number, wire, _, data, end, value in walk(buf, start, stop):
        if number == 1 and wire == 0:
            dims.append(value)
        elif number == 1 and wire == 2:
            dims.extend(packed_varints(buf, data, end))
    return tuple(signed(d) for d in dims)


def _blob(buf, start: int, stop: int) -> Blob:
    """Caffe's Blob::FromProto: the legacy 4-D shape if any of it is present,
    else `shape`; double_data if present, else data."""
    legacy: list[int | None] | None = None
    shape: tuple[int, ...] | None = None
    floats: list[tuple[int, int]] = []
    doubles: list[tuple[int, int]] = []
    for number, wire, _, data, end, value in walk(buf, start, stop):
        if number == 5 and wire in (2, 5):                # packed, or one float per field
            floats.append((data, end))
        elif number == 7 and wire == 2:
            shape = _dims(buf, data, end)
        elif number in (1, 2, 3, 4) and wire == 0:
            legacy = legacy or [None] * 4
            legacy[number - 1] = signed(value)
        elif number == 8 and wire in (1, 2):
            doubles.append((data, end))
    dtype, spans = ("<f8", doubles) if doubles else ("<f4", floats)
    raw = None
    if len(spans) == 1:
        raw = memoryview(buf)[spans[0][0]:spans[0][1]]
    elif spans:
        raw = b"".join(buf[a:b] for a, b in spans)
    if legacy is not None:
        shape = tuple(d or 0 for d in legacy)
    elif shape is None:
        shape = (len(raw) // _ITEMSIZE[dtype],) if raw is not None else (0,)
    return Blob(shape, raw, dtype, start, stop, legacy=legacy is not None)


class Layer:
    """One stored layer record: name, type, blobs, and where it lies: the
    record with its key is file[head:stop], its message file[start:stop],
    made of `fields`. `legacy`: a V1 (`layers`) record."""

    __slots__ = ("name", "type", "blobs", "legacy", "head", "start", "stop", "fields")

    def __init__(self, name: str, type: str, blobs: list[Blob] | None = None,
                 legacy: bool = False, head: int = 0, start: int = 0, stop: int = 0,
                 fields: list[Field] | None = None):
        self.name, self.type, self.blobs, self.legacy = name, type, blobs or [], legacy
        self.head, self.start, self.stop, self.fields = head, start, stop, fields or []

    def __repr__(self) -> str:
        return f"Layer({self.name!r}, {self.type!r}, {len(self.blobs)} blobs)"


class _Kind(NamedTuple):
    """Field numbers of one layer message kind."""
    name: int
    type: int
    blobs: int
    inner: int = 0                       # a nested V0 layer (V1 only)


_V2, _V1, _V0 = _Kind(1, 2, 7), _Kind(4, 5, 6, inner=1), _Kind(1, 2, 50)

_V1_TYPE_NAMES: dict[int, str] | None = None


def _v1_type(number: int) -> str:
    global _V1_TYPE_NAMES
    if _V1_TYPE_NAMES is None:
        from .schema import builtin
        from .upgrade import V1_TYPES
        enum = builtin().V1LayerParameter.LayerType
        _V1_TYPE_NAMES = {enum.Value(k): v for k, v in V1_TYPES.items()}
    return _V1_TYPE_NAMES.get(number, f"V1 type {number}")


def _text(buf, f: Field) -> str:
    return str(buf[f.data:f.stop], "utf-8", "replace")


def _layer(buf, record: Field, kind: _Kind) -> Layer:
    layer = Layer("", "", legacy=kind is _V1, head=record.start, start=record.data,
                  stop=record.stop, fields=walk(buf, record.data, record.stop))
    for f in layer.fields:
        number, wire, _, data, end, value = f
        if number == kind.name and wire == 2:
            layer.name = _text(buf, f)
        elif number == kind.type:
            layer.type = _v1_type(value) if wire == 0 else _text(buf, f)
        elif number == kind.blobs and wire == 2:
            layer.blobs.append(_blob(buf, data, end))
        elif number == kind.inner and wire == 2:
            inner = _layer(buf, f, _V0)
            layer.name = layer.name or inner.name
            layer.type = layer.type or inner.type
            layer.blobs.extend(inner.blobs)
    return layer


def _is_text(buf) -> bool:
    """True when the file starts like a text file (a binary caffemodel starts
    with field keys, which are rarely all printable)."""
    head = bytes(buf[:512])
    return all(32 <= b < 127 or b in b"\t\r\n" for b in head)


class Weights:
    """The layers of a caffemodel, memory-mapped. Use as a context manager."""

    def __init__(self, path: str):
        self.path = path
        self.layers: list[Layer] = []
        self.name = ""
        self._file = None
        self.buffer = None                   # the mapped file
        try:
            self._file = open(path, "rb")
            if os.fstat(self._file.fileno()).st_size == 0:
                raise AtrousError("empty file, not a caffemodel", file=path)
            self.buffer = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError:
            raise AtrousError("no such file", file=path, exit_code=2) from None
        except IsADirectoryError:
            raise AtrousError("is a directory, not a caffemodel", file=path, exit_code=2) from None
        except OSError as exc:
            self.close()
            raise AtrousError(f"cannot read: {exc.strerror}", file=path) from None
        except AtrousError:
            self.close()
            raise
        try:
            self._read(self.buffer)
        except Corrupt as exc:
            text = _is_text(self.buffer)
            self.close()
            if text:
                raise AtrousError("is a text file, not a binary caffemodel: give the .caffemodel, "
                                  "not a .prototxt", file=path) from None
            raise AtrousError(f"truncated or corrupt caffemodel ({exc}); download or copy it again",
                              file=path) from None
        except AtrousError:
            self.close()
            raise

    def _read(self, buf) -> None:
        for f in walk(buf, 0, len(buf)):
            if f.number in (100, 2) and f.wire == 2:
                self.layers.append(_layer(buf, f, _V2 if f.number == 100 else _V1))
            elif f.number == 1 and f.wire == 2:
                self.name = _text(buf, f)
        if not self.layers:
            raise AtrousError("holds no layers: is this a caffemodel?", file=self.path)

    def fileno(self) -> int:
        """The file descriptor of the open caffemodel (for copying its bytes, pieces.py)."""
        return self._file.fileno()

    def by_name(self) -> dict[str, Layer]:
        """The layers by name; a name stored twice maps to its first layer."""
        out: dict[str, Layer] = {}
        for layer in self.layers:
            out.setdefault(layer.name, layer)
        return out

    def close(self) -> None:
        """Drop the blobs' data and the layers, unmap the file (left to the garbage collector
        while numpy views of it live) and close it; calling it again does nothing."""
        for layer in self.layers:
            for b in layer.blobs:
                b.raw = None
        self.layers = []
        if self.buffer is not None:
            try:
                self.buffer.close()
            except BufferError:       # numpy views still alive: the map closes with them
                pass
            self.buffer = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "Weights":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------- writing --

def encode_shape(shape) -> bytes:
    """A BlobProto `shape` field (7) holding a BlobShape with packed dims."""
    return encode_field(7, encode_field(1, b"".join(uvarint(int(d)) for d in shape)))


def encode_blob(array) -> list[bytes]:
    """BlobProto pieces for a float32 array as Caffe's Blob::ToProto writes
    them (fields in number order): packed data (5), then the shape (7)."""
    import numpy as np
    data = np.ascontiguousarray(array, dtype="<f4").tobytes()
    return [field_head(5, len(data)), data, encode_shape(array.shape)]


def blob_field(parts: list) -> list:
    """A V2 record's `blobs` field (7): its head, then the BlobProto's pieces
    (bytes, or spans of a stored file, as pieces.py writes them)."""
    return [field_head(7, sum(size(p) for p in parts)), *parts]


def without_blobs(layer):
    """A copy of a LayerParameter without its blobs: the layer's definition."""
    definition = type(layer)()
    definition.CopyFrom(layer)
    definition.ClearField("blobs")
    return definition


class Writer:
    """Streams a V2 caffemodel, atomically: one record per layer, as Caffe writes it
    (`add_layer`), or from a name, a type and blobs (`add`, for hand-made files).
    Use as a context manager; the file appears only when it ends without an
    exception."""

    def __init__(self, path: str, net_name: str = ""):
        self.path = path
        self._net_name = net_name
        self._context = atomic_file(path)
        self._fh = None

    def __enter__(self) -> "Writer":
        self._fh = self._context.__enter__()
        if self._net_name:
            self._fh.write(encode_field(1, self._net_name.encode("utf-8")))
        return self

    def __exit__(self, kind, exc, tb):
        return self._context.__exit__(kind, exc, tb)

    def add_record(self, pieces: list[bytes | memoryview]) -> None:
        """A V2 layer record made of already-encoded fields."""
        self._fh.write(field_head(100, sum(len(p) for p in pieces)))
        for p in pieces:
            self._fh.write(p)

    def add_layer(self, layer, blobs: list[list[bytes]], phase: str) -> None:
        """A V2 record as Caffe's Net::ToProto writes it: the whole definition
        of `layer` (a LayerParameter of the net's schema), with `phase` unless it
        has its own, as Net::Init sets it; fields in number order, so the blobs
        (field 7, the pieces of encode_blob) go before `include` (8), `phase`
        (10) and the layer's parameters (100 and up)."""
        definition = without_blobs(layer)
        if not definition.HasField("phase"):
            enum = definition.DESCRIPTOR.fields_by_name["phase"].enum_type
            definition.phase = enum.values_by_name[phase].number
        data = definition.SerializeToString()      # in field-number order, as Caffe's
        cut = next((f.start for f in walk(data, 0, len(data)) if f.number > 7), len(data))
        pieces = [data[:cut]]
        for parts in blobs:
            pieces.extend(blob_field(parts))
        pieces.append(data[cut:])
        self.add_record(pieces)

    def add(self, name: str, type_: str, blobs: list[list[bytes]], header: bytes = b"") -> None:
        """blobs: the pieces of encode_blob, one list per blob.
        header: extra serialized LayerParameter fields (bottom, top, params)."""
        pieces = [encode_field(1, name.encode("utf-8")), encode_field(2, type_.encode("utf-8")),
                  header]
        for parts in blobs:
            pieces.extend(blob_field(parts))
        self.add_record(pieces)
