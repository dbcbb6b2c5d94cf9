"""The rewrite: a plan of per-layer changes computed from the graph, then applied."""
