"""The edges, where protobuf stays: the schema, prototxt text (read, and patched in place),
the V1 upgrade, the network message and its plan-patched copy, caffemodel bytes read and written."""
