"""The bundled presets (configs/*.yaml), installed as the package caffe_atrous.configs.

This file makes the folder a regular package, so that importlib.resources finds the
presets in every kind of install, editable ones included (see caffe_atrous/config.py).
"""
