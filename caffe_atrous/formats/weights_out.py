"""The caffemodel of a converted network (`--weights-out`).

The output is planned as a list of pieces, each either new bytes or a span of
the input file, and most of it is spans: a record the conversion does not
touch is one span, and a blob is always a span (with a new shape, its data
still is). pieces.py writes them at about the speed of cp.

Per stored record, the converted network decides the layer's definition (its
type and the parameters of the kinds a conversion rewrites); every other
field, fork parameters included, passes through byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from ..core.atomic import atomic_file
from ..core.errors import AtrousError
from .caffemodel import (Blob, Layer, Weights, blob_field, encode_blob, encode_shape,
                         without_blobs)
from .pieces import coalesce, size, write_pieces
from .wire import encode_field, field_head, walk

# LayerParameter fields a conversion may change: the type string, and the
# parameters of the kinds it rewrites. Their numbers come from the net's own
# schema (a fork's, with --proto); in the built-in one they are the numbers
# every fork uses (2; 106, 117, 121, 130; SSD's 203).
_DEFINITION = ("type", "convolution_param", "inner_product_param", "pooling_param",
               "python_param", "prior_box_param")
_V2_LAYER, _V2_BLOBS = 100, 7

# Blob shapes to write in place of the stored ones, per layer name, one entry
# per blob (None keeps the stored shape). The values are kept as stored, so a
# new shape must hold as many of them: InnerProduct (N, C*k*k) -> (N, C, k, k).
Reshape = Mapping[str, Sequence[tuple[int, ...] | None]]
# New values for every blob of a layer, per layer name (arrays: a classifier made a
# convolution whose weights were transposed or decimated on the way).
Replace = Mapping[str, Sequence]


def write_converted(net, weights: Weights, out_path: str, reshape: Reshape | None = None,
                    replace: Replace | None = None,
                    check: Callable[[str], None] | None = None) -> int:
    """Write a caffemodel for the converted network `net` with the blobs of `weights`.

    Every layer of `net` with a stored record gets a V2 record, in `net`'s
    order (once per name): a stored V2 record with its definition fields taken
    from `net`, a stored V1 record as `net`'s definition and the blobs. Stored
    records of layers `net` lacks are left out. Blob shapes change only where `reshape`
    says, values only where `replace` does. `check` gets the path of the complete
    file before it becomes `out_path`; what it raises leaves `out_path` as it was.
    Returns the number of records written."""
    pieces, written = plan_output(net, weights, reshape, replace)
    with atomic_file(out_path, check) as fh:
        write_pieces(fh, pieces, weights)
    return written


def plan_output(net, weights: Weights, reshape: Reshape | None = None,
                replace: Replace | None = None) -> tuple[list, int]:
    """What write_converted writes, as pieces: bytes, or (start, stop) for
    file[start:stop] of `weights`; and the number of records."""
    stored, buf = weights.by_name(), weights.buffer
    reshape, replace = reshape or {}, replace or {}
    numbers = _definition_numbers(net)
    replaced = set(numbers.values())
    pieces: list = [encode_field(1, net.name.encode("utf-8"))] if net.name else []
    written: set[str] = set()
    for layer in net.layer:
        source = stored.get(layer.name)
        if source is None or layer.name in written:   # e.g. a TRAIN and a TEST data layer
            continue
        written.add(layer.name)
        definition = _definition(layer, numbers)
        same_blobs = layer.name not in replace and not reshape.get(layer.name)
        if same_blobs and not source.legacy and _same_definition(source, definition, replaced, buf):
            pieces.append((source.head, source.stop))     # the record exactly as stored
            continue
        if layer.name in replace:
            blobs = [encode_blob(a) for a in replace[layer.name]]
            if len(blobs) != len(source.blobs):
                raise AtrousError(f"{len(blobs)} new blobs for {len(source.blobs)} stored ones",
                                  layer=layer.name)
        else:
            blobs = _blob_bodies(source, reshape.get(layer.name), buf)
        if source.legacy:
            body = _from_v1(layer, blobs)
        else:
            body = _from_v2(source, definition, replaced, blobs, buf)
        pieces.append(field_head(_V2_LAYER, sum(size(p) for p in body)))
        pieces.extend(body)
    return coalesce(pieces), len(written)


def _definition_numbers(net) -> dict[str, int]:
    """The definition fields the net's schema has: name -> number."""
    fields = net.DESCRIPTOR.fields_by_name["layer"].message_type.fields_by_name
    return {name: fields[name].number for name in _DEFINITION if name in fields}


def _definition(layer, numbers: dict[str, int]) -> dict[int, bytes]:
    """The definition fields of the converted layer, encoded, by number."""
    out = {}
    for name, number in numbers.items():
        if layer.HasField(name):
            value = getattr(layer, name)
            payload = value.encode("utf-8") if name == "type" else value.SerializeToString()
            out[number] = encode_field(number, payload)
    return out


def _same_definition(source: Layer, definition: dict[int, bytes], replaced: set[int],
                     buf) -> bool:
    """Does the stored record hold exactly these definition fields, once each
    (and no other field of a number in `replaced`)?"""
    found = [(f.number, buf[f.start:f.stop]) for f in source.fields if f.number in replaced]
    return len(found) == len(definition) and dict(found) == definition


def _from_v2(source: Layer, definition: dict[int, bytes], replaced: set[int],
             blobs: list[list], buf) -> list:
    """The stored record's fields in their order, with the converted layer's
    `definition`: a stored definition field is replaced (kept as a span when its
    bytes are the same) or dropped; a new one goes before the first stored
    field with a larger number. Blob fields get the bodies `blobs`."""
    pending = dict(definition)
    stored = {f.number for f in source.fields}
    blob_bodies = iter(blobs)
    body: list = []
    for f in source.fields:
        for number in sorted(n for n in pending if n < f.number and n not in stored):
            body.append(pending.pop(number))
        if f.number in replaced:
            new = pending.pop(f.number, None)
            if new is not None:
                body.append((f.start, f.stop) if buf[f.start:f.stop] == new else new)
        elif f.number == _V2_BLOBS and f.wire == 2:
            blob = next(blob_bodies)
            body.extend([(f.start, f.stop)] if blob == [(f.data, f.stop)] else blob_field(blob))
        else:
            body.append((f.start, f.stop))
    body.extend(pending[n] for n in sorted(pending))
    return coalesce(body)


def _from_v1(layer, blobs: list[list]) -> list:
    """A V2 record for a stored V1 record: `layer`'s whole definition, then the blobs."""
    body: list = [without_blobs(layer).SerializeToString()]
    for blob in blobs:
        body.extend(blob_field(blob))
    return body


def _blob_bodies(source: Layer, shapes, buf) -> list[list]:
    """Each stored BlobProto message as pieces: a span, or rebuilt with a new shape."""
    shapes = list(shapes or [])
    if len(shapes) > len(source.blobs):
        raise AtrousError(f"{len(shapes)} blob shapes given for {len(source.blobs)} stored blobs",
                          layer=source.name)
    shapes += [None] * (len(source.blobs) - len(shapes))
    return [[(blob.start, blob.stop)] if shape is None else _reshaped(source, i, blob, shape, buf)
            for i, (blob, shape) in enumerate(zip(source.blobs, shapes))]


def _reshaped(source: Layer, index: int, blob: Blob, shape, buf) -> list:
    """A stored BlobProto with a new `shape` and the same values (and other fields)."""
    values = 1
    for d in shape:
        values *= d
    if values != blob.count:
        raise AtrousError(f"blob {index} holds {blob.count} values, which cannot take the shape "
                          f"{'x'.join(map(str, shape))}", layer=source.name)
    body: list = []
    new = encode_shape(shape)
    for f in walk(buf, blob.start, blob.stop):
        if f.number in (1, 2, 3, 4, 7):               # legacy dims and shape: replaced
            if new:
                body.append(new)
                new = b""
        else:
            body.append((f.start, f.stop))
    if new:
        body.insert(0, new)
    return body
