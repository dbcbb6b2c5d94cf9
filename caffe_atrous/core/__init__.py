"""Base types that every layer above uses: the error type, Caffe's window arithmetic,
atomic output files, file comparison and diffs."""
