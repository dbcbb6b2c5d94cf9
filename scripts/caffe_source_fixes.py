"""The small edits that two old Caffe trees need to build and import on Debian 12.

Usage: python3 scripts/caffe_source_fixes.py [bvlc|psp] <unpacked caffe source tree>
       (bvlc when the engine is not named)

Both BVLC Caffe's last master (bvlc) and PSPNet's Caffe (psp, hszhao/PSPNet 798bdc9):

1. src/caffe/util/io.cpp: protobuf 3.21 dropped the two-argument form of
   CodedInputStream::SetTotalBytesLimit; the limit alone is kept.
2. python/caffe/io.py: scikit-image and scipy are imported at the top but only needed by
   load_image/resize_image; the imports become optional so that `import caffe` works without
   them.

PSPNet's Caffe also (it is built with OpenCV, which its data layers use unconditionally):

3. include/caffe/util/interp.hpp includes <cublas_v2.h> whatever the build; a CPU_ONLY build
   has no CUDA headers, so the include is kept for GPU builds only.
4. src/caffe/util/io.cpp, src/caffe/layers/window_data_layer.cpp: OpenCV 4 removed the C names
   CV_LOAD_IMAGE_COLOR/_GRAYSCALE; their C++ names cv::IMREAD_COLOR/_GRAYSCALE exist since
   OpenCV 2.4.

Each edit checks that the text it replaces is there as often as expected, so a different
source fails loudly instead of building unpatched. Running it twice on the same tree is
harmless.
"""
import pathlib
import sys


def replace(path, old, new, count=1):
    """Replace the `count` occurrences of `old` in the file, unless it is already done."""
    if not path.is_file():
        sys.exit(f"caffe_source_fixes: {path}: no such file (is this the right source tree?)")
    text = path.read_text()
    if new in text:
        return
    found = text.count(old)
    if found != count:
        sys.exit(f"caffe_source_fixes: {path}: expected {count} of {old!r}, found {found}")
    path.write_text(text.replace(old, new))


def common(root):
    replace(root / "src/caffe/util/io.cpp",
            "SetTotalBytesLimit(kProtoReadBytesLimit, 536870912);",
            "SetTotalBytesLimit(kProtoReadBytesLimit);")
    replace(root / "python/caffe/io.py",
            "import skimage.io\n"
            "from scipy.ndimage import zoom\n"
            "from skimage.transform import resize\n",
            "try:  # only load_image and resize_image need these (caffe-atrous build)\n"
            "    import skimage.io\n"
            "    from scipy.ndimage import zoom\n"
            "    from skimage.transform import resize\n"
            "except ImportError:\n"
            "    pass\n")


def pspnet(root):
    replace(root / "include/caffe/util/interp.hpp",
            "#include <cublas_v2.h>\n",
            "#ifndef CPU_ONLY  // no CUDA headers in a CPU build (caffe-atrous build)\n"
            "#include <cublas_v2.h>\n"
            "#endif\n")
    io_cpp = root / "src/caffe/util/io.cpp"
    replace(io_cpp, "CV_LOAD_IMAGE_COLOR", "cv::IMREAD_COLOR", count=2)
    replace(io_cpp, "CV_LOAD_IMAGE_GRAYSCALE", "cv::IMREAD_GRAYSCALE", count=2)
    replace(root / "src/caffe/layers/window_data_layer.cpp",
            "CV_LOAD_IMAGE_COLOR", "cv::IMREAD_COLOR")


FIXES = {"bvlc": [common], "psp": [common, pspnet]}


def main(argv):
    if len(argv) == 1:
        argv = ["bvlc", *argv]
    if len(argv) != 2 or argv[0] not in FIXES:
        sys.exit(__doc__)
    engine, src = argv
    for fix in FIXES[engine]:
        fix(pathlib.Path(src))


if __name__ == "__main__":
    main(sys.argv[1:])
