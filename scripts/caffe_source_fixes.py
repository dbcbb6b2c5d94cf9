"""Two small edits that BVLC Caffe's last master needs to build and import on Debian 12.

Usage: python3 scripts/caffe_source_fixes.py <unpacked caffe source tree>

1. src/caffe/util/io.cpp: protobuf 3.21 dropped the two-argument form of
   CodedInputStream::SetTotalBytesLimit; the limit alone is kept.
2. python/caffe/io.py: scikit-image and scipy are imported at the top but only needed by
   load_image/resize_image; the imports become optional so that `import caffe` works without
   them.

Each edit checks that the text it replaces is there, so a different source fails loudly
instead of building unpatched. Running it twice on the same tree is harmless.
"""
import pathlib
import sys


def replace_once(path, old, new):
    text = path.read_text()
    if new in text:
        return
    if text.count(old) != 1:
        sys.exit(f"caffe_source_fixes: {path}: expected exactly one {old!r}")
    path.write_text(text.replace(old, new))


def main(src):
    root = pathlib.Path(src)
    replace_once(root / "src/caffe/util/io.cpp",
                 "SetTotalBytesLimit(kProtoReadBytesLimit, 536870912);",
                 "SetTotalBytesLimit(kProtoReadBytesLimit);")
    replace_once(root / "python/caffe/io.py",
                 "import skimage.io\n"
                 "from scipy.ndimage import zoom\n"
                 "from skimage.transform import resize\n",
                 "try:  # only load_image and resize_image need these (caffe-atrous build)\n"
                 "    import skimage.io\n"
                 "    from scipy.ndimage import zoom\n"
                 "    from skimage.transform import resize\n"
                 "except ImportError:\n"
                 "    pass\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
