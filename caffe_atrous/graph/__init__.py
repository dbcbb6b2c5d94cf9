"""The network as plain objects: typed layer records read from the messages, the table of
layer kinds, and one graph of blobs with producers and consumers per phase."""
