"""Analyses of a Graph: cumulative strides and blob shapes."""
