"""Command line: `python -m caffe_atrous IN -o OUT` (and the `caffe-atrous` script).

Exit codes: 0 done, 1 conversion error (or --check found OUT out of date),
2 usage error. Every error is one line on stderr, `caffe_atrous: error: ...`,
without a traceback; the output file is written atomically or not at all.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import __version__
from .convert import convert_loaded, load_text, read_text, truncate
from .errors import AtrousError, UsageError
from .atomic import write_text
from .files import same_file, unified_diff
from .rewrite.dilate import EXACT, SEED
from .rewrite.plan import Options

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


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors on one line, exit code 2."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse API
        raise UsageError(f"{message} (see --help)")


def _input_shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(x) for x in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not N,C,H,W (for example 1,3,513,513)") from None
    if len(dims) != 4 or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not N,C,H,W (for example 1,3,513,513)")
    return dims


def _grid(text: str) -> tuple[int, ...]:
    try:
        rates = tuple(int(x) for x in text.split(","))
    except ValueError:
        rates = ()
    if not rates or min(rates) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a list of rates like 1,2,4")
    return rates


def _pair(text: str) -> tuple[int, int]:
    try:
        pair = tuple(int(x) for x in text.split(","))
    except ValueError:
        pair = ()
    if len(pair) != 2 or min(pair) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not S,C (for example 3,4)")
    return pair


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' must be at least 1")
    return value


def _add_proto(p: argparse.ArgumentParser) -> None:
    p.add_argument("--proto", metavar="FILE", help="read and write with this caffe.proto (your "
                   "fork's) instead of the built-in schema; needs pip install "
                   "'caffe-atrous[proto]'")


def _schema(path: str | None):
    """The schema of --proto FILE, or None for the built-in one."""
    if not path:
        return None
    from .formats.protoc import load
    return load(path)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Convert a Caffe network to a dilated (atrous) network at a "
                "chosen output stride. The pretrained .caffemodel still fits: layer names and "
                "kernel shapes do not change.", epilog=EXAMPLES,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="IN", help="network prototxt (V2 or legacy V1); - for stdin")
    p.add_argument("-o", "--output", metavar="OUT", default="-",
                   help="where to write the converted prototxt (default: stdout)")
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
    p.add_argument("--version", action="version", version=f"caffe-atrous {__version__}")
    return p


def build_init_parser() -> argparse.ArgumentParser:
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


def run_init(args: argparse.Namespace) -> int:
    from .weights import random_weights
    loaded = load_text(read_text(args.net), args.net, _schema(args.proto))
    written = random_weights(loaded, args.output, seed=args.seed, input_shape=args.input_shape)
    if args.verbose:
        from .analysis.shapes import fmt_shape
        for name, shapes in written.items():
            print(f"init-weights: {name}: {', '.join(fmt_shape(s) for s in shapes)}", file=sys.stderr)
    if not args.quiet:
        print(f"init-weights: {len(written)} layers with random weights written to {args.output}",
              file=sys.stderr)
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from .verify import verify
    report = verify(args.orig, args.new, args.weights, blob=args.blob, new_weights=args.new_weights,
                    input_shape=args.input_shape, engine=args.engine, seed=args.seed,
                    tolerance=args.tolerance, schema=_schema(args.proto))
    lines = report.lines()
    if args.verbose:
        lines.insert(0, f"verify: {args.orig} against {args.new} with {args.weights}; input seed "
                        f"{args.seed}, tolerance {args.tolerance:g}")
    print("\n".join(lines[-1:] if args.quiet else lines))
    return 0 if report.ok else 1


COMMANDS = {"init-weights": (build_init_parser, run_init), "verify": (build_verify_parser, run_verify)}


def _say(kind: str, text: str) -> None:
    print(f"{PROG}: {kind}: {text}", file=sys.stderr)


def _merge_config(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the options not given on the command line from --config, then defaults."""
    preset = {}
    if args.config:
        from .config import load          # YAML: imported only when a preset is asked for
        preset = load(args.config)
    for dest, value in preset.items():
        if dest == "description":
            continue
        if dest in ("output_stride", "from_layer") and (args.output_stride or args.from_layer):
            continue                        # the command line chose how to pick strides
        if getattr(args, dest, None) is None:
            setattr(args, dest, value)
    defaults = {"output_stride": None if args.from_layer else 8, "exact": False, "quiet": False,
                "verbose": False, "report": False, "diff": False, "canonical": False,
                "fc_to_conv": False}
    for dest, value in defaults.items():
        if getattr(args, dest) is None:
            setattr(args, dest, value)
    return args


def run_convert(args: argparse.Namespace) -> int:
    args = _merge_config(args)
    if same_file(args.input, args.output):
        raise UsageError("OUT is the input file; caffe_atrous never overwrites its input: "
                         "choose another -o", file=args.output)
    path = "<stdin>" if args.input == "-" else args.input
    opts = Options(output_stride=None if args.from_layer else args.output_stride,
                   from_layer=args.from_layer, mode=EXACT if args.exact else SEED,
                   input_shape=args.input_shape, multi_grid=args.multi_grid,
                   fc_to_conv=args.fc_to_conv, decimate=args.decimate,
                   weights_follow=bool(args.weights and args.weights_out),
                   assume_same_grid=tuple(args.assume_same_grid or ()))
    if args.decimate and not args.fc_to_conv:
        raise UsageError("--decimate acts on the heads that --fc-to-conv converts; add --fc-to-conv")
    schema = _schema(args.proto)
    text = read_text(args.input)
    loaded = load_text(text, path, schema)
    if args.truncate_after:
        loaded = truncate(loaded, args.truncate_after)
    result = convert_loaded(loaded, opts, layout=not args.canonical)
    weights_line = None
    if args.weights_out and not args.weights:
        raise UsageError("--weights-out needs --weights IN.caffemodel")
    if args.weights:
        from .weights import for_converted
        weights_line = for_converted(result, args.output, args.weights,
                                     None if args.check else args.weights_out, args.input_shape)
    if args.check:
        try:
            with open(args.output, encoding="utf-8", newline="") as fh:
                current = fh.read()
        except OSError:
            current = None
        if current != result.text:
            state = "is missing" if current is None else "differs from the conversion"
            _say("error", f"{args.output}: {state}; run without --check to write it")
            return 1
        return 0
    report = None
    if args.report or args.report_json:
        from .report import build
        report = build(loaded, result, args.input_shape)
    if args.report_html:                # rendered before anything is written: it can fail
        from .report_html import render
        page = render(loaded, result, args.input_shape, text)
    if args.diff:
        sys.stdout.writelines(unified_diff(text, result.text, path,
                                           args.output if args.output != "-" else f"{path} (converted)"))
        sys.stdout.flush()
    elif args.output == "-":
        sys.stdout.write(result.text)
        sys.stdout.flush()
    else:
        write_text(args.output, result.text)
    if args.report_json:
        import json
        write_text(args.report_json, json.dumps(report, indent=2) + "\n")
    if args.report_html:
        write_text(args.report_html, page)
    if loaded.legacy and not args.quiet:
        _say("note", f"{path} is a legacy V1 (`layers`) file; the output is upgraded to V2 (`layer`)")
    for note in result.plan.notes:
        _say("note", note)
    for w in result.warnings:
        _say("warning", str(w))
    if args.report:
        from .report import format_table
        print(format_table(report), file=sys.stderr)
    elif args.verbose:
        from .report import format_changes, layer_changes
        print(format_changes(layer_changes(result.plan)), file=sys.stderr)
    if weights_line and not args.quiet:
        print(weights_line, file=sys.stderr)
    if not args.quiet:
        print(result.plan.summary(args.from_layer is None), file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv and argv[0] in COMMANDS:
            build, run = COMMANDS[argv[0]]
            return run(build().parse_args(argv[1:]))
        args = build_parser().parse_args(argv)
        return run_convert(args)
    except AtrousError as exc:
        _say("error", str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except MemoryError:
        _say("error", "out of memory: the network's blobs are too large for this machine")
        return 1
    except BrokenPipeError:
        return 1
    except Exception as exc:                 # noqa: BLE001 - a bug: say so, on one line
        if os.environ.get("CAFFE_ATROUS_DEBUG"):
            raise
        _say("error", f"internal error ({type(exc).__name__}: {exc}); please report it with the "
             "input file (CAFFE_ATROUS_DEBUG=1 shows the traceback)")
        return 1


def run() -> None:
    """Entry point of the script and of `python -m`: main(), then exit without the
    interpreter's teardown (a tenth of a conversion's time, spent freeing objects
    after every file is closed). CAFFE_ATROUS_DEBUG=1 exits the usual way."""
    code = main()
    if os.environ.get("CAFFE_ATROUS_DEBUG"):
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:                          # a closed pipe: what a normal exit reports too
        code = code or 1
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
