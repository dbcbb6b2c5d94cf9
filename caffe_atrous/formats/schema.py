"""The Caffe schema, loaded into a descriptor pool of its own.

pycaffe's generated `caffe_pb2` registers the proto package `caffe` in
protobuf's default pool, and so would a generated module of ours: the second
one to be imported fails with "duplicate symbol 'caffe.Phase'". caffe_atrous
therefore never registers anything in the default pool. The schema is a
compiled FileDescriptorSet (`caffe.desc`, made by `make proto` from
proto/caffe.proto), loaded into a private DescriptorPool, and its message
classes are made from there. A user's `caffe_pb2` and ours never meet; the
text format and the wire format do not depend on which pool a class lives in.

    schema = builtin()
    net = schema.NetParameter()

A Schema made from a user's own fork (`--proto`) is the same kind of object.

Start-up: protobuf's public route to a pool (descriptor_pool, message_factory)
imports its pure-Python message implementation and text parser even when the
upb extension does the work, about a third of a conversion's start. Where
protobuf runs on upb (its default), the pool and the classes are made by the
extension directly, as message_factory itself would make them; any other
backend, or an extension that does not offer these, takes the public route.
"""


from __future__ import annotations

import os
from functools import lru_cache

from ..core.errors import AtrousError
from .wire import Corrupt, walk

DESCRIPTOR_SET = "caffe.desc"

# What caffe_atrous reads in every network and writes in every conversion.
REQUIRED = {
    "NetParameter": ("name", "input", "input_shape", "input_dim", "state", "layer"),
    "LayerParameter": ("name", "type", "bottom", "top", "include", "exclude", "transform_param",
                       "convolution_param", "pooling_param"),
    "ConvolutionParameter": ("dilation",),
}
# Why a fork's schema can lack one of them, and what to do instead.
_WITHOUT = {
    "layer": "a schema of V1 `layers` only; caffe_atrous writes V2 networks, so convert without "
             "--proto (the built-in schema reads V1 files)",
    "dilation": "this fork's Caffe has no dilated convolution, so no converted network can be "
                "written in its schema; convert without --proto and run the result in a Caffe "
                "that has dilation (BVLC since 2016, or a fork of it)",
}


def _file_protos(descriptor_set: bytes) -> list[bytes]:
    """The serialized FileDescriptorProtos of a FileDescriptorSet (its field 1),
    split without descriptor_pb2, whose import costs more than the whole split."""
    try:
        fields = walk(descriptor_set, 0, len(descriptor_set))
    except Corrupt as exc:
        raise ValueError(str(exc)) from None
    if any(f.number != 1 or f.wire != 2 for f in fields):
        raise ValueError("a field other than `file`")
    return [descriptor_set[f.data:f.stop] for f in fields]


def _upb():
    """(pool type, message class maker) of the upb extension, or None when protobuf
    runs on another backend (its own choice: environment, build default, what imports)."""
    from google.protobuf.internal import api_implementation
    if api_implementation.Type() != "upb":
        return None
    try:
        from google._upb import _message
        from google.protobuf.message import Message
        pool_type, meta = _message.DescriptorPool, _message.MessageMeta
    except (ImportError, AttributeError):
        return None

    def make_class(desc):
        return meta(desc.name, (Message,), {"DESCRIPTOR": desc, "__module__": None})
    return pool_type, make_class


def _public():
    from google.protobuf import descriptor_pool, message_factory
    return descriptor_pool.DescriptorPool, message_factory.GetMessageClass


# The oldest protobuf whose API this module uses (pyproject.toml's lower bound).
MIN_PROTOBUF = (7, 35)


def _check_protobuf() -> None:
    """An older protobuf lacks what the schema needs: say so as the environment
    problem it is, not as an internal error."""
    from google.protobuf import __version__ as version
    try:
        have = tuple(int(x) for x in version.split(".")[:2])
    except ValueError:
        return
    if have < MIN_PROTOBUF:
        need = ".".join(map(str, MIN_PROTOBUF))
        raise AtrousError(f"this Python has protobuf {version}, older than the {need} that "
                          f"caffe-atrous needs: pip install 'protobuf>={need},<8' (or run "
                          "caffe-atrous in the environment it was installed in)", exit_code=2)


@lru_cache(maxsize=None)
def backend():
    """(pool type, message class maker): upb's own where it can, else protobuf's public API."""
    _check_protobuf()
    return _upb() or _public()


class Schema:
    """Message classes of one caffe.proto, by short name (`schema.LayerParameter`)."""

    def __init__(self, descriptor_set: bytes, origin: str):
        self.origin = origin
        pool_type, self._make_class = backend()
        self._pool = pool_type()
        try:
            files = [self._pool.AddSerializedFile(f) for f in _file_protos(descriptor_set)]
        except (ValueError, TypeError) as exc:
            raise AtrousError(f"not a compiled schema (a FileDescriptorSet): {exc}",
                              file=origin) from None
        nets = [f"{f.package}.NetParameter".lstrip(".") for f in files
                if "NetParameter" in f.message_types_by_name]
        if len(nets) != 1:
            raise AtrousError("has no message NetParameter: is it a Caffe schema (caffe.proto)?"
                              if not nets else "defines NetParameter more than once", file=origin)
        self.package = nets[0].rpartition(".")[0]
        self._classes: dict[str, type] = {}
        self._check_required()

    def _check_required(self) -> None:
        for message, fields in REQUIRED.items():
            try:
                have = getattr(self, message).DESCRIPTOR.fields_by_name
            except AttributeError:
                raise AtrousError(f"has no message {message}: is it a Caffe schema "
                                  "(caffe.proto)?", file=self.origin) from None
            missing = [f for f in fields if f not in have]
            if missing:
                why = next((_WITHOUT[f] for f in missing if f in _WITHOUT),
                           "is it a Caffe schema (caffe.proto)?")
                raise AtrousError(f"{message} has no field {', '.join(missing)}: {why}",
                                  file=self.origin)

    def owns(self, message) -> bool:
        """Whether `message` is of one of this schema's classes."""
        return getattr(message.DESCRIPTOR.file, "pool", None) is self._pool

    def __getattr__(self, name: str) -> type:
        if name.startswith("_"):
            raise AttributeError(name)
        cls = self._classes.get(name)
        if cls is None:
            full = f"{self.package}.{name}" if self.package else name
            try:
                desc = self._pool.FindMessageTypeByName(full)
            except KeyError:
                raise AttributeError(f"the schema {self.origin} has no message {name}") from None
            cls = self._classes[name] = self._make_class(desc)
        return cls


@lru_cache(maxsize=None)
def builtin() -> Schema:
    """The schema caffe_atrous ships: BVLC Caffe plus the forks' layer parameters."""
    with open(os.path.join(os.path.dirname(__file__), DESCRIPTOR_SET), "rb") as fh:
        return Schema(fh.read(), "the built-in schema")


def enum_name(msg, field: str) -> str:
    """The name of an enum field's value, from the message's own schema."""
    fd = msg.DESCRIPTOR.fields_by_name[field]
    return fd.enum_type.values_by_number[getattr(msg, field)].name


def has(msg, field: str) -> bool:
    """True when `msg` has `field` set; False also when its schema has no such field
    (a fork's schema may lack fields the built-in one has)."""
    try:
        return msg.HasField(field)
    except ValueError:            # not a field of this schema (or a repeated one)
        return False


def get(msg, field: str, default=None):
    """The field's value when set, else `default` (also when the schema lacks it)."""
    return getattr(msg, field) if has(msg, field) else default
