"""caffe-atrous: turn a Caffe classification network into a dilated (atrous) one.

Strided layers from a chosen point on get stride 1 and every later convolution
with a kernel larger than 1 gets its dilation (and pad) multiplied, so that the
pretrained weights load unchanged and each kernel keeps its receptive field.

The pipeline, one module per step:

    formats (prototxt <-> NetParameter, V1 upgrade, plain layer records)
      -> graph (layers, blobs, producers and consumers, phases)
      -> analysis (strides, geometry, shapes)
      -> rewrite (a plan of changes, then applied to a copy)
      -> cli
"""

__version__ = "0.1.0"
