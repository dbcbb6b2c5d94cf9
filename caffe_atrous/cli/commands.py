"""What each command does with its parsed options: convert (the default),
init-weights and verify, each one call of the Python API (api.py); this module
adds only the options' merging with presets, the messages and the exit codes."""

from __future__ import annotations

import argparse
import os
import sys

from .. import api
from ..core.errors import UsageError
from ..core.files import same_file
from ..pipeline.loading import read_text
from .args import PROG


def run_init(args: argparse.Namespace) -> int:
    """The `init-weights` command: write random weights for the network `args.net` to
    `args.output` and print how many layers got some (with -v, each one's blob shapes);
    return 0."""
    written = api.init_weights(_input(args.net), args.output, seed=args.seed,
                               input_shape=args.input_shape, proto=args.proto)
    if args.verbose:
        from ..analysis.shapes import fmt_shape
        for name, shapes in written.items():
            print(f"init-weights: {name}: {', '.join(fmt_shape(s) for s in shapes)}", file=sys.stderr)
    if not args.quiet:
        print(f"init-weights: {len(written)} layers with random weights written to {args.output}",
              file=sys.stderr)
    return 0


def run_verify(args: argparse.Namespace) -> int:
    """The `verify` command: run both networks, print the comparison's lines (only the
    PASS/FAIL line with -q); return 0 when it passes, else 1."""
    report = api.verify(args.orig, args.new, args.weights, blob=args.blob,
                        new_weights=args.new_weights, input_shape=args.input_shape,
                        engine=args.engine, seed=args.seed, tolerance=args.tolerance,
                        proto=args.proto)
    lines = report.lines()
    if args.verbose:
        lines.insert(0, f"verify: {args.orig} against {args.new} with {args.weights}; input seed "
                        f"{args.seed}, tolerance {args.tolerance:g}")
    print("\n".join(lines[-1:] if args.quiet else lines))
    return 0 if report.ok else 1


def say(kind: str, text: str) -> None:
    """Print `text` to stderr as one line `caffe_atrous: KIND: text` (`kind`: error,
    warning, note)."""
    print(f"{PROG}: {kind}: {text}", file=sys.stderr)


def _merge_config(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the options not given on the command line from --config, then defaults."""
    preset = {}
    if args.config:
        from ..pipeline.presets import load          # YAML: imported only when a preset is asked for
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
                "fc_to_conv": False, "align": False}
    for dest, value in defaults.items():
        if getattr(args, dest) is None:
            setattr(args, dest, value)
    return args


def _input(path: str):
    """What the API takes for a file argument: the file's path (as a Path, so that no name
    is ever read as prototxt text), or the text of standard input."""
    from pathlib import Path
    return read_text("-") if path == "-" else Path(path)


def _convert(args: argparse.Namespace) -> api.Conversion:
    if args.weights_out and not args.weights:
        raise UsageError("--weights-out needs --weights IN.caffemodel")
    if args.decimate and not args.fc_to_conv:
        raise UsageError("--decimate acts on the heads that --fc-to-conv converts; add --fc-to-conv")
    return api.convert(_input(args.input), None if args.from_layer else args.output_stride,
                       from_layer=args.from_layer, exact=args.exact, multi_grid=args.multi_grid,
                       fc_to_conv=args.fc_to_conv, decimate=args.decimate,
                       truncate_after=args.truncate_after, input_shape=args.input_shape,
                       assume_same_grid=tuple(args.assume_same_grid or ()), align=args.align,
                       proto=args.proto,
                       keep_layout=not args.canonical, warn=False,
                       name="<stdin>" if args.input == "-" else args.input,
                       weights=args.weights, weights_out=None if args.check else args.weights_out)


def _up_to_date(args: argparse.Namespace, conv: api.Conversion) -> int:
    """--check: 0 when OUT holds the conversion, else 1 (and say why)."""
    if conv.is_written_to(args.output):
        return 0
    state = "is missing" if not os.path.exists(args.output) else "differs from the conversion"
    say("error", f"{args.output}: {state}; run without --check to write it")
    return 1


def _write_outputs(args: argparse.Namespace, conv: api.Conversion) -> dict | None:
    """OUT (or the diff, or stdout) and the reports; the report data, for printing."""
    report = conv.report() if args.report or args.report_json else None
    page = conv.report_html() if args.report_html else None    # before writing: it can fail
    if args.diff:
        sys.stdout.write(conv.diff(args.output if args.output != "-" else None))
        sys.stdout.flush()
    elif args.output == "-":
        sys.stdout.write(conv.text)
        sys.stdout.flush()
    else:
        conv.write(args.output)
    if args.report_json:
        import json
        from ..core.atomic import write_text
        write_text(args.report_json, json.dumps(report, indent=2) + "\n")
    if page is not None:
        from ..core.atomic import write_text
        write_text(args.report_html, page)
    return report


def _tell(args: argparse.Namespace, conv: api.Conversion, report, weights) -> None:
    """Notes, warnings, the report or changed layers, the weights line, the summary."""
    path = "<stdin>" if args.input == "-" else args.input
    if conv.legacy and not args.quiet:
        say("note", f"{path} is a legacy V1 (`layers`) file; the output is upgraded to V2 (`layer`)")
    for note in conv.notes:
        say("note", note)
    for w in conv.warnings:
        say("warning", str(w))
    if args.report:
        from ..reports.text import format_table
        print(format_table(report), file=sys.stderr)
    elif args.verbose:
        from ..reports.text import format_changes, layer_changes
        print(format_changes(layer_changes(conv.result.plan)), file=sys.stderr)
    if weights is not None and not args.quiet:
        print(weights.line(), file=sys.stderr)
    if not args.quiet:
        print(conv.summary(), file=sys.stderr)


def run_convert(args: argparse.Namespace) -> int:
    """The conversion command: merge --config into `args`, convert IN, check --weights (and
    write --weights-out), then write OUT or the diff and the reports, or with --check only
    compare with OUT; return the exit code. Raises a `UsageError` when OUT is IN or the
    options do not fit together."""
    args = _merge_config(args)
    if same_file(args.input, args.output):
        raise UsageError("OUT is the input file; caffe_atrous never overwrites its input: "
                         "choose another -o", file=args.output)
    conv = _convert(args)
    if args.check:
        return _up_to_date(args, conv)
    _tell(args, conv, _write_outputs(args, conv), conv.weights_report)
    return 0
