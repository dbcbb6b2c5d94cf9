"""What each command does with its parsed options: convert (the default),
init-weights and verify. Output files are written atomically or not at all."""

from __future__ import annotations

import argparse
import sys

from ..core.atomic import write_text
from ..pipeline.conversion import convert_loaded
from ..pipeline.loading import load_text, read_text, truncate
from ..core.errors import UsageError
from ..core.files import same_file, unified_diff
from ..rewrite.dilate import EXACT, SEED
from ..rewrite.plan import Options
from .args import PROG


def _schema(path: str | None):
    """The schema of --proto FILE, or None for the built-in one."""
    if not path:
        return None
    from ..formats.protoc import load
    return load(path)


def run_init(args: argparse.Namespace) -> int:
    """The `init-weights` command: write random weights for the network `args.net` to
    `args.output` and print how many layers got some (with -v, each one's blob shapes);
    return 0."""
    from ..weights.check import random_weights
    loaded = load_text(read_text(args.net), args.net, _schema(args.proto))
    written = random_weights(loaded, args.output, seed=args.seed, input_shape=args.input_shape)
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
    from ..verify.compare import verify
    report = verify(args.orig, args.new, args.weights, blob=args.blob, new_weights=args.new_weights,
                    input_shape=args.input_shape, engine=args.engine, seed=args.seed,
                    tolerance=args.tolerance, schema=_schema(args.proto))
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
                "fc_to_conv": False}
    for dest, value in defaults.items():
        if getattr(args, dest) is None:
            setattr(args, dest, value)
    return args


def _options(args: argparse.Namespace) -> Options:
    if args.decimate and not args.fc_to_conv:
        raise UsageError("--decimate acts on the heads that --fc-to-conv converts; add --fc-to-conv")
    if args.weights_out and not args.weights:
        raise UsageError("--weights-out needs --weights IN.caffemodel")
    return Options(output_stride=None if args.from_layer else args.output_stride,
                   from_layer=args.from_layer, mode=EXACT if args.exact else SEED,
                   input_shape=args.input_shape, multi_grid=args.multi_grid,
                   fc_to_conv=args.fc_to_conv, decimate=args.decimate,
                   weights_follow=bool(args.weights and args.weights_out),
                   assume_same_grid=tuple(args.assume_same_grid or ()))


def _up_to_date(args: argparse.Namespace, result) -> int:
    """--check: 0 when OUT holds the conversion, else 1 (and say why)."""
    try:
        with open(args.output, encoding="utf-8", newline="") as fh:
            current = fh.read()
    except OSError:
        current = None
    if current == result.text:
        return 0
    state = "is missing" if current is None else "differs from the conversion"
    say("error", f"{args.output}: {state}; run without --check to write it")
    return 1


def _write_outputs(args: argparse.Namespace, path: str, text: str, loaded, result) -> dict | None:
    """OUT (or the diff, or stdout) and the reports; the report data, for printing."""
    report = None
    if args.report or args.report_json:
        from ..reports.text import build
        report = build(loaded, result, args.input_shape)
    if args.report_html:                # rendered before anything is written: it can fail
        from ..reports.html import render
        page = render(loaded, result, args.input_shape, text)
    if args.diff:
        target = args.output if args.output != "-" else f"{path} (converted)"
        sys.stdout.writelines(unified_diff(text, result.text, path, target))
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
    return report


def _tell(args: argparse.Namespace, path: str, loaded, result, report, weights_line) -> None:
    """Notes, warnings, the report or changed layers, the weights line, the summary."""
    if loaded.legacy and not args.quiet:
        say("note", f"{path} is a legacy V1 (`layers`) file; the output is upgraded to V2 (`layer`)")
    for note in result.plan.notes:
        say("note", note)
    for w in result.warnings:
        say("warning", str(w))
    if args.report:
        from ..reports.text import format_table
        print(format_table(report), file=sys.stderr)
    elif args.verbose:
        from ..reports.text import format_changes, layer_changes
        print(format_changes(layer_changes(result.plan)), file=sys.stderr)
    if weights_line and not args.quiet:
        print(weights_line, file=sys.stderr)
    if not args.quiet:
        print(result.plan.summary(args.from_layer is None), file=sys.stderr)


def run_convert(args: argparse.Namespace) -> int:
    """The conversion command: merge --config into `args`, convert IN, check --weights (and
    write --weights-out), then write OUT or the diff and the reports, or with --check only
    compare with OUT; return the exit code. Raises a `UsageError` when OUT is IN or the
    options do not fit together."""
    args = _merge_config(args)
    if same_file(args.input, args.output):
        raise UsageError("OUT is the input file; caffe_atrous never overwrites its input: "
                         "choose another -o", file=args.output)
    path = "<stdin>" if args.input == "-" else args.input
    opts = _options(args)
    text = read_text(args.input)
    loaded = load_text(text, path, _schema(args.proto))
    if args.truncate_after:
        loaded = truncate(loaded, args.truncate_after)
    result = convert_loaded(loaded, opts, layout=not args.canonical)
    weights_line = None
    if args.weights:
        from ..weights.check import for_converted
        weights_line = for_converted(result, args.output, args.weights,
                                     None if args.check else args.weights_out, args.input_shape)
    if args.check:
        return _up_to_date(args, result)
    report = _write_outputs(args, path, text, loaded, result)
    _tell(args, path, loaded, result, report, weights_line)
    return 0
