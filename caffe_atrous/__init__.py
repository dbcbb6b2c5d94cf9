"""caffe-atrous: retarget a Caffe network's output stride (atrous conversion).

Strided layers from a chosen point on get stride 1 and every later convolution
with a kernel larger than 1 gets its dilation (and pad) multiplied, so that the
pretrained weights load unchanged and each kernel keeps its receptive field.

The packages, lowest first; a package imports only from those before it (the
architecture test reads the next line):

    LAYERS: core -> formats -> graph -> analysis -> rewrite -> pipeline -> weights, reports -> verify -> cli, __main__

    core       base types: the error type, Caffe's window arithmetic, atomic files
    formats    the edges: protobuf schema, prototxt text, V1 upgrade, caffemodel bytes
    graph      the network as plain objects: typed layer records, the table of
               layer kinds, blobs with their producers and consumers
    analysis   strides, grids, shapes, parameter shapes, costs
    rewrite    the plan: one rule per layer kind, joins, exactness
    pipeline   read a file, plan, apply the plan to a copy, write it; presets
    weights    check a caffemodel, write the converted one, random weights
    reports    --report (text, JSON) and --report-html
    verify     run both networks in an inference engine and compare
    cli        the command line: arguments, messages, exit codes
"""

__version__ = "0.1.0"
