"""Numerical verification: run the original and the converted network in an inference
engine (OpenCV or pycaffe) and compare their outputs."""
