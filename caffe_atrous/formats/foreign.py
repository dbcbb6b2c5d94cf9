"""Networks held as protobuf messages of another schema: pycaffe's
`caffe_pb2.NetParameter`, `caffe.NetSpec().to_proto()`, a fork's compiled classes.

Such a message crosses into caffe_atrous as prototxt text and back the same way,
by field names: the forks' field numbers collide, their names do not.
"""

from __future__ import annotations


def is_net_message(obj) -> bool:
    """Whether `obj` is a protobuf NetParameter message, of any schema."""
    desc = getattr(obj, "DESCRIPTOR", None)
    return desc is not None and getattr(desc, "name", None) == "NetParameter" and \
        hasattr(obj, "SerializeToString")


def to_text(message) -> str:
    """The message as prototxt text."""
    from google.protobuf import text_format
    return text_format.MessageToString(message)


def from_text(text: str, like):
    """A new message of `like`'s class holding the prototxt `text`."""
    from google.protobuf import text_format
    out = type(like)()
    text_format.Parse(text, out)
    return out
