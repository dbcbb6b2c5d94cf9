"""The caffemodel of a conversion: check that it fits, write the converted one, or make
random weights."""
