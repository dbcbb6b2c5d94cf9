"""The rewrite: a plan of per-layer changes computed from the graphs (pipeline/conversion.py
applies it to a copy of the network)."""
