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
from .atomic import write_text
from .convert import Result, convert_loaded, load_text, read_text, truncate
from .errors import AtrousError, UsageError
from .rewrite.dilate import EXACT, SEED
from .rewrite.plan import Options
from .analysis.strides import fmt_stride

PROG = "caffe_atrous"

EXAMPLES = """\
examples:
  python -m caffe_atrous ResNet-101-deploy.prototxt -o resnet101_os8.prototxt
  python -m caffe_atrous net.prototxt -o net_os16.prototxt --output-stride 16 --exact
  python -m caffe_atrous VGG16.prototxt -o vgg_os8.prototxt --truncate-after pool5
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
    p.add_argument("--multi-grid", type=_grid, metavar="R1,R2,...",
                   help="DeepLab v3 unit rates for the last stage, times the stage's rate "
                        "(output stride 16 with 1,2,4 gives 2,4,8)")
    p.add_argument("--config", metavar="NAME|FILE",
                   help="options from a YAML preset: a bundled one (deeplab-v2, deeplab-v3, "
                        "r-fcn, pspnet, exact-os16, exact-os8) or a file; the command line wins")
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
    return p


def build_verify_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=f"{PROG} verify", description="Run the original and the converted network "
                "with the same weights on the same random input, and compare the converted "
                "network's output, sampled every m pixels, with the original's. Exit 0 within "
                "tolerance, 1 otherwise.")
    p.add_argument("orig", metavar="ORIG.prototxt")
    p.add_argument("new", metavar="NEW.prototxt")
    p.add_argument("weights", metavar="WEIGHTS.caffemodel")
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
    return p


def run_init(args: argparse.Namespace) -> int:
    from .weights import random_weights
    schema = _schema(args.proto)
    loaded = load_text(read_text(args.net), args.net, schema)
    n = random_weights(loaded, args.output, seed=args.seed, input_shape=args.input_shape)
    print(f"init-weights: {n} layers with random weights written to {args.output}", file=sys.stderr)
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from .verify import verify
    report = verify(args.orig, args.new, args.weights, blob=args.blob,
                    input_shape=args.input_shape, engine=args.engine, seed=args.seed,
                    tolerance=args.tolerance, schema=_schema(args.proto))
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


COMMANDS = {"init-weights": (build_init_parser, run_init), "verify": (build_verify_parser, run_verify)}


def _say(kind: str, text: str) -> None:
    print(f"{PROG}: {kind}: {text}", file=sys.stderr)


def unified_diff(a: str, b: str, from_name: str, to_name: str, context: int = 3):
    """difflib's unified diff without its 'popular line' heuristic, which in a
    prototxt (thousands of `stride: 1` lines) would pair the wrong lines."""
    import difflib
    al, bl = a.splitlines(True), b.splitlines(True)
    matcher = difflib.SequenceMatcher(None, al, bl, autojunk=False)
    yield f"--- {from_name}\n+++ {to_name}\n"
    for group in matcher.get_grouped_opcodes(context):
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        yield f"@@ -{i1 + 1},{i2 - i1} +{j1 + 1},{j2 - j1} @@\n"
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                yield from (" " + line for line in al[a1:a2])
                continue
            yield from ("-" + line for line in al[a1:a2])
            yield from ("+" + line for line in bl[b1:b2])


def _same_file(a: str, b: str) -> bool:
    if a == "-" or b == "-":
        return False
    if os.path.abspath(a) == os.path.abspath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _check_weights(args: argparse.Namespace, result: Result) -> str:
    """Check (and with --weights-out, rewrite) the caffemodel for the converted net."""
    from .convert import Loaded
    from .formats.caffemodel import Weights
    from .formats.weights_out import write_converted
    from .weights import check, raise_for
    converted = Loaded(result.net, args.output, result.loaded.lines, False,
                       schema=result.loaded.schema)
    with Weights(args.weights) as w:
        report = check(converted, w, args.input_shape)
        raise_for(report, args.weights)
        if args.weights_out and not args.check:
            if _same_file(args.weights, args.weights_out):
                raise UsageError("--weights-out is the input caffemodel; choose another file")
            write_converted(converted.net, w, args.weights_out)
    return report.line()


def _merge_config(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the options not given on the command line from --config, then defaults."""
    from .config import load
    preset = load(args.config) if args.config else {}
    for dest, value in preset.items():
        if dest == "description":
            continue
        if dest in ("output_stride", "from_layer") and (args.output_stride or args.from_layer):
            continue                        # the command line chose how to pick strides
        if getattr(args, dest, None) is None:
            setattr(args, dest, value)
    defaults = {"output_stride": None if args.from_layer else 8, "exact": False, "quiet": False,
                "verbose": False, "report": False, "diff": False, "canonical": False}
    for dest, value in defaults.items():
        if getattr(args, dest) is None:
            setattr(args, dest, value)
    return args


def run_convert(args: argparse.Namespace) -> int:
    args = _merge_config(args)
    if _same_file(args.input, args.output):
        raise UsageError("OUT is the input file; caffe_atrous never overwrites its input: "
                         "choose another -o", file=args.output)
    path = "<stdin>" if args.input == "-" else args.input
    opts = Options(output_stride=None if args.from_layer else args.output_stride,
                   from_layer=args.from_layer, mode=EXACT if args.exact else SEED,
                   input_shape=args.input_shape, multi_grid=args.multi_grid)
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
        weights_line = _check_weights(args, result)
    if args.check:
        try:
            with open(args.output, encoding="utf-8") as fh:
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
        plan = result.plan
        n = len(plan.changes)
        print(f"converted {n} layer{'s' if n != 1 else ''}: output stride "
              f"{fmt_stride(plan.stride_before)} -> {fmt_stride(plan.stride_after)}", file=sys.stderr)
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
    except BrokenPipeError:
        return 1
    except Exception as exc:                 # noqa: BLE001 - a bug: say so, on one line
        if os.environ.get("CAFFE_ATROUS_DEBUG"):
            raise
        _say("error", f"internal error ({type(exc).__name__}: {exc}); please report it with the "
             "input file (CAFFE_ATROUS_DEBUG=1 shows the traceback)")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
