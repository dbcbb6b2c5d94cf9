"""The command line's options: one parser per command, and the option types.

Every usage error is one line, exit code 2 (`_Parser.error`).
"""

from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from ..core.errors import UsageError
from ..pipeline import values

PROG = "caffe_atrous"

EXAMPLES = """\
examples:
  python -m caffe_atrous ResNet-101-deploy.prototxt -o resnet101_os8.prototxt
  python -m caffe_atrous net.prototxt -o net_os16.prototxt --output-stride 16 --exact
  python -m caffe_atrous VGG16.prototxt -o vgg_os8.prototxt --truncate-after pool5
  python -m caffe_atrous VGG16.prototxt -o vgg_os8.prototxt --fc-to-conv --decimate 3,4 \
      --weights vgg16.caffemodel --weights-out vgg16_os8.caffemodel    # DeepLab-LargeFOV
  python -m caffe_atrous net.prototxt --from res4a_branch1 -v -o -
  python -m caffe_atrous net.prototxt -o net_os8.prototxt --check   # in CI: is it up to date?
  python -m caffe_atrous net.prototxt -o net_os8.prototxt --weights net.caffemodel
  python -m caffe_atrous segnet.prototxt -o segnet_os8.prototxt --proto my-fork/caffe.proto
  python -m caffe_atrous init-weights net.prototxt -o random.caffemodel
  python -m caffe_atrous verify net.prototxt net_os8.prototxt net.caffemodel

subcommands: init-weights, verify (see `python -m caffe_atrous verify --help`)

conventions:
  default   the layer whose stride is removed takes the new dilation (PSPNet, DeepLab,
            R-FCN, SSD); 2x2/2 poolings become 3x3/1 pad 1
  --exact   function-preserving: the new network's output at every m-th position equals
            the original's, with the original weights (torchvision, TF-slim)
"""


def _columns() -> int:
    """The terminal's width as shutil.get_terminal_size() finds it ($COLUMNS, then the
    terminal, else 80)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Sized:
    """A help formatter given its width: argparse's own imports shutil to measure the
    terminal each time one is made (and one is made for every option added), which
    costs a start-up a few milliseconds for a help text that is rarely printed."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None):
        super().__init__(prog, indent_increment, max_help_position,
                         _columns() - 2 if width is None else width)


class _Formatter(_Sized, argparse.HelpFormatter):
    pass


class _RawFormatter(_Sized, argparse.RawDescriptionHelpFormatter):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors on one line, exit code 2."""

    def __init__(self, *args, formatter_class=_Formatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def error(self, message: str) -> None:  # noqa: D401 - argparse API
        """Raise a `UsageError` with argparse's `message` and a pointer to --help, instead
        of printing the usage and exiting."""
        raise UsageError(f"{message} (see --help)")


def _typed(check):
    """An argparse type from a check of pipeline/values.py."""
    def convert(text: str):
        try:
            return check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"'{text}' is not {exc}") from None
    return convert


_input_shape = _typed(values.input_shape)
_grid = _typed(values.rates)
_pair = _typed(values.decimation)
_positive = _typed(values.positive)


def _add_proto(p: argparse.ArgumentParser) -> None:
    p.add_argument("--proto", metavar="FILE", help="read and write with this caffe.proto (your "
                   "fork's) instead of the built-in schema; needs pip install "
                   "'caffe-atrous[proto]'")


def build_parser() -> argparse.ArgumentParser:
    """The parser of the conversion command: IN, -o OUT and every conversion, output and
    report option, with the examples as epilog."""
    p = _Parser(prog=PROG, description="Convert a Caffe network to a dilated (atrous) network at a "
                "chosen output stride. The pretrained .caffemodel still fits: layer names and "
                "kernel shapes do not change.", epilog=EXAMPLES,
                formatter_class=_RawFormatter)
    p.add_argument("input", metavar="IN", help="network prototxt (V2 or legacy V1); - for stdin")
    p.add_argument("-o", "--output", metavar="OUT", default="-",
                   help="where to write the converted prototxt (default: stdout)")
    _add_conversion(p)
    _add_outputs(p)
    p.add_argument("--version", action="version", version=f"caffe-atrous {__version__}")
    return p


def _add_conversion(p: argparse.ArgumentParser) -> None:
    """What to convert, and how."""
    which = p.add_mutually_exclusive_group()
    which.add_argument("--output-stride", "--os", type=_positive, metavar="N",
                       help="remove every stride that takes the output stride past N (default 8)")
    which.add_argument("--from", dest="from_layer", metavar="LAYER",
                       help="remove the stride of LAYER and of every layer after it")
    p.add_argument("--exact", action="store_true", default=None,
                   help="function-preserving rule: a layer whose stride is removed keeps its "
                        "dilation; refuse poolings that cannot be exact")
    p.add_argument("--assume-same-grid", action="append", metavar="TYPE",
                   help="a layer type caffe_atrous does not know that keeps its input's grid "
                        "(elementwise, like ReLU); without it such a layer is named in a warning, "
                        "and --exact refuses it (repeatable)")
    p.add_argument("--align", action="store_true", default=None,
                   help="'same' padding for every convolution and pooling with a kernel larger "
                        "than 1 (strided poolings round down), so that each map is "
                        "ceil(input / stride), aligned with the image; at any output stride, "
                        "the network's own included; not exact, the weights still fit")
    p.add_argument("--multi-grid", type=_grid, metavar="R1,R2,...",
                   help="DeepLab v3 unit rates for the last stage, times the stage's rate "
                        "(output stride 16 with 1,2,4 gives 2,4,8)")
    p.add_argument("--config", metavar="NAME|FILE",
                   help="options from a YAML preset: a bundled one (deeplab-v1-largefov, "
                        "deeplab-v2, deeplab-v3, r-fcn, pspnet, exact-os16, exact-os8) or a file; "
                        "the command line wins")
    p.add_argument("--fc-to-conv", action="store_true", default=None,
                   help="make every InnerProduct over a spatial map a Convolution (kernel: that "
                        "map's size, dilated), the ones after it 1x1 (FCN, DeepLab v1); "
                        "--weights-out writes their weights")
    p.add_argument("--decimate", type=_pair, metavar="S,C",
                   help="with --fc-to-conv: keep every S-th tap of the first head layer (dilation "
                        "x S) and every C-th channel between head layers (DeepLab-LargeFOV: 3,4); "
                        "an approximation")
    p.add_argument("--truncate-after", metavar="LAYER",
                   help="drop every layer after LAYER (e.g. the classifier head)")
    p.add_argument("--input-shape", type=_input_shape, metavar="N,C,H,W",
                   help="input size to reason with, instead of the one in the file")
    _add_proto(p)


def _add_outputs(p: argparse.ArgumentParser) -> None:
    """The caffemodel, the reports and the forms of the output."""
    p.add_argument("--weights", metavar="IN.caffemodel",
                   help="check that this caffemodel fits the converted network (by layer name and "
                        "blob shape)")
    p.add_argument("--weights-out", metavar="OUT.caffemodel",
                   help="also write a caffemodel for the converted network (needs --weights)")
    p.add_argument("--report", action="store_true", default=None,
                   help="print per stage the output stride, receptive field, size, "
                        "multiply-accumulates and activation memory before and after, and "
                        "every changed layer")
    p.add_argument("--report-json", metavar="FILE", help="write the same report as JSON")
    p.add_argument("--report-html", metavar="FILE", help="write the report as one self-contained "
                   "HTML page, the network drawn (needs the extra 'report' and Graphviz)")
    p.add_argument("--diff", action="store_true", default=None,
                   help="print a unified diff of IN and the conversion instead of writing OUT")
    p.add_argument("--canonical", action="store_true", default=None,
                   help="write the canonical form (schema field order, no comments) instead of "
                        "keeping the input's layout")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 if OUT is missing or differs from the conversion")
    p.add_argument("-q", "--quiet", action="store_true", default=None, help="no summary line")
    p.add_argument("-v", "--verbose", action="store_true", default=None,
                   help="print every changed layer (stride, dilation, pad: before -> after)")


def build_init_parser() -> argparse.ArgumentParser:
    """The parser of `init-weights`: NET.prototxt, -o W.caffemodel, --seed, --input-shape,
    --proto, -q/-v."""
    p = _Parser(prog=f"{PROG} init-weights", description="Write random weights for a network: "
                "variance-scaled convolutions and inner products, BatchNorm statistics that keep "
                "activations finite. For tests and demos, since no pretrained model can be "
                "downloaded everywhere.")
    p.add_argument("net", metavar="NET.prototxt")
    p.add_argument("-o", "--output", metavar="W.caffemodel", required=True)
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--input-shape", type=_input_shape, metavar="N,C,H,W",
                   help="input size, where the prototxt gives none")
    _add_proto(p)
    _quiet_verbose(p, "no summary line", "print every layer written, with its blob shapes")
    return p


def _quiet_verbose(p: argparse.ArgumentParser, quiet: str, verbose: str) -> None:
    """-q or -v, as the converter has them."""
    group = p.add_mutually_exclusive_group()
    for flag, text in (("quiet", quiet), ("verbose", verbose)):
        group.add_argument(f"-{flag[0]}", f"--{flag}", action="store_true", help=text)


def build_verify_parser() -> argparse.ArgumentParser:
    """The parser of `verify`: ORIG.prototxt, NEW.prototxt, WEIGHTS.caffemodel and the
    options of the comparison (blob, input shape, engine, seed, tolerance)."""
    p = _Parser(prog=f"{PROG} verify", description="Run the original and the converted network "
                "with the same weights on the same random input, and compare the converted "
                "network's output, sampled every m pixels, with the original's. Exit 0 within "
                "tolerance, 1 otherwise.")
    p.add_argument("orig", metavar="ORIG.prototxt")
    p.add_argument("new", metavar="NEW.prototxt")
    p.add_argument("weights", metavar="WEIGHTS.caffemodel")
    p.add_argument("--new-weights", metavar="NEW.caffemodel",
                   help="the converted network's caffemodel, when it differs (--fc-to-conv with "
                        "--weights-out); default: WEIGHTS for both")
    p.add_argument("--blob", metavar="NAME", help="blob to compare (default: the last blob both "
                   "networks keep a spatial layout for)")
    p.add_argument("--input-shape", type=_input_shape, metavar="N,C,H,W",
                   help="input size (default: the declared one, moved to the nearest 32k+1)")
    p.add_argument("--engine", choices=["auto", "opencv", "caffe"], default="auto",
                   help="pycaffe when importable, else OpenCV (default auto)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random input")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest relative error that passes (default 1e-4)")
    _add_proto(p)
    _quiet_verbose(p, "print only the PASS/FAIL line", "also say which files, seed and tolerance "
                   "were used")
    return p


