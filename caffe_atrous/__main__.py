"""`python -m caffe_atrous` runs the command line."""

from .cli import run

run()
