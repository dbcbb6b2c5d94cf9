"""caffe-atrous: retarget a Caffe network's output stride (atrous conversion).

Strided layers from a chosen point on get stride 1 and every later convolution
with a kernel larger than 1 gets its dilation (and pad) multiplied, so that the
pretrained weights load unchanged and each kernel keeps its receptive field.

The packages, lowest first; a package imports only from those before it (the
architecture test reads the next line):

    LAYERS: core -> formats -> graph -> analysis -> rewrite -> pipeline -> weights, reports -> verification -> api -> cli, __main__

    core          base types: the error type, Caffe's window arithmetic, atomic files
    formats       the edges: protobuf schema, prototxt text, V1 upgrade, caffemodel bytes
    graph         the network as plain objects: typed layer records, the table of
                  layer kinds, blobs with their producers and consumers
    analysis      strides, grids, shapes, parameter shapes, costs
    rewrite       the plan: one rule per layer kind, joins, exactness
    pipeline      read a file, plan, apply the plan to a copy, write it; presets
    weights       check a caffemodel, write the converted one, random weights
    reports       --report (text, JSON) and --report-html
    verification  run both networks in an inference engine and compare
    api           the Python API (convert, verify, init_weights), re-exported here
    cli           the command line over the API: arguments, messages, exit codes

The API, in short (help(caffe_atrous.convert) and help(caffe_atrous.Conversion) say more):

    import caffe_atrous as ca
    conv = ca.convert("net.prototxt", 16, weights="net.caffemodel")   # path, text or message
    conv.text, conv.net, conv.changes, conv.warnings
    conv.write("net_os16.prototxt"); conv.write_weights("net_os16.caffemodel")
    ca.verify("net.prototxt", "net_os16.prototxt", "net.caffemodel").ok
"""

__version__ = "0.1.0"

from .api import (AtrousError, AtrousWarning, Change, Conversion, ConversionWarning,  # noqa: E402
                  convert, init_weights, preset, verify)

__all__ = ["convert", "verify", "init_weights", "preset", "Conversion", "Change", "AtrousError",
           "AtrousWarning", "ConversionWarning", "__version__"]
