"""Analyses of a Graph: cumulative strides and the grids behind them, blob shapes,
parameter blob shapes, costs."""
