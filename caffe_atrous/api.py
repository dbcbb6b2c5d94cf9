"""The Python API: what the command line does, as functions that return data.

    import caffe_atrous as ca
    conv = ca.convert("net.prototxt", 16, weights="net.caffemodel")
    conv.write("net_os16.prototxt")
    conv.write_weights("net_os16.caffemodel")

`convert` takes a path, prototxt text, or a protobuf NetParameter of any schema
(pycaffe's `caffe_pb2.NetParameter`, `NetSpec.to_proto()`); a message comes back
as a message of its own class. Errors raise AtrousError, naming file, line and
layer and what to do; what the conversion warns about goes through Python's
`warnings` module as AtrousWarning (so a script can make them errors). Nothing
prints.
"""

from __future__ import annotations

import os
import warnings as _warnings
from typing import Any, NamedTuple, Sequence

from .core.atomic import write_text
from .core.errors import AtrousError, ConversionWarning, UsageError
from .core.files import same_file, unified_diff
from .formats import foreign
from .formats.schema import builtin
from .pipeline import values
from .pipeline.conversion import Result, convert_loaded
from .pipeline.loading import Loaded, load_text, read_text, truncate
from .rewrite.dilate import EXACT, SEED
from .rewrite.plan import Options

__all__ = ["convert", "verify", "init_weights", "preset", "Conversion", "Change", "AtrousError",
           "AtrousWarning", "ConversionWarning"]

class AtrousWarning(UserWarning):
    """What a conversion did or could not do exactly (its `layer` is named)."""

    def __init__(self, warning: ConversionWarning):
        super().__init__(str(warning))
        self.layer = warning.layer


class Change(NamedTuple):
    """One changed layer: its name and type, its geometry before and after
    (`k3 s2 p1 d1 -> k3 s1 p2 d2`, "global", a scale or a size), and why."""

    layer: str
    type: str
    before: str
    after: str
    reasons: tuple[str, ...]


def _schema(proto):
    """The schema of a fork's caffe.proto (None: the built-in one)."""
    if not proto:
        return None
    from .formats.protoc import load
    return load(os.fspath(proto))


class _Input(NamedTuple):
    loaded: Loaded
    text: str              # the text as given (or the message as text)
    like: Any              # the message whose class the result takes (None: ours)
    path: str | None       # the file it came from


def _load(net, proto, name: str | None) -> _Input:
    """Read `net`: a path (str without newline or brace, or os.PathLike), prototxt
    text, or a NetParameter message of any schema."""
    schema = _schema(proto)
    if foreign.is_net_message(net):
        ours = (schema or builtin()).owns(net)
        text = foreign.to_text(net)
        return _Input(load_text(text, name or "<message>", schema), text, None if ours else net,
                      None)
    if isinstance(net, os.PathLike) or (isinstance(net, str) and "\n" not in net
                                        and "{" not in net):
        path = os.fspath(net)
        text = read_text(path)
        return _Input(load_text(text, name or path, schema), text, None, path)
    if isinstance(net, str):
        return _Input(load_text(net, name or "<string>", schema), net, None, None)
    raise UsageError(f"convert() takes a path, prototxt text or a NetParameter message, not "
                     f"{type(net).__name__}")


def options(output_stride: int | None = 8, *, from_layer: str | None = None, exact: bool = False,
            multi_grid: Sequence[int] | None = None, fc_to_conv: bool = False,
            decimate: Sequence[int] | None = None, input_shape: Sequence[int] | None = None,
            assume_same_grid: Sequence[str] = (), align: bool = False,
            weights_follow: bool = False) -> Options:
    """The planner's Options from the keyword arguments of `convert`, checked as the
    command line checks its flags (pipeline/values.py)."""
    def check(name, check_, v):
        try:
            return None if v is None else check_(v)
        except ValueError as exc:
            raise UsageError(f"{name} must be {exc}, not {v!r}") from None
    if decimate is not None and not fc_to_conv:
        raise UsageError("decimate acts on the heads that fc_to_conv converts; add fc_to_conv")
    return Options(output_stride=None if from_layer else check("output_stride", values.positive,
                                                               output_stride),
                   from_layer=from_layer, mode=EXACT if exact else SEED,
                   input_shape=check("input_shape", values.input_shape, input_shape),
                   multi_grid=check("multi_grid", values.rates, multi_grid),
                   fc_to_conv=bool(fc_to_conv),
                   decimate=check("decimate", values.decimation, decimate),
                   weights_follow=weights_follow,
                   assume_same_grid=check("assume_same_grid", values.names,
                                          list(assume_same_grid) or None) or (),
                   align=bool(align))


def convert(net, output_stride: int | None = 8, *, from_layer: str | None = None,
            exact: bool = False, multi_grid: Sequence[int] | None = None,
            fc_to_conv: bool = False, decimate: Sequence[int] | None = None,
            truncate_after: str | None = None, input_shape: Sequence[int] | None = None,
            assume_same_grid: Sequence[str] = (), align: bool = False, proto=None,
            weights=None, weights_out=None, keep_layout: bool = True, name: str | None = None,
            warn: bool = True) -> Conversion:
    """Convert a network to `output_stride` (or from the layer `from_layer` on).

    net               a path, prototxt text, or a NetParameter message of any schema
    exact             the function-preserving rule instead of the seed convention
    multi_grid        DeepLab v3 unit rates for the last stage (1, 2, 4)
    fc_to_conv        InnerProduct heads over a map become convolutions
    decimate          (taps, channels) of those heads (DeepLab-LargeFOV: (3, 4))
    truncate_after    drop every layer after this one
    input_shape       (N, C, H, W) to reason with when the file gives none
    assume_same_grid  layer types, unknown to caffe_atrous, that keep their input's grid
    align             "same" padding for every kernel larger than 1 (strided poolings
                      round down), so that each map is ceil(input / stride), aligned
                      with the image; not exact, the weights still fit
    proto             a fork's caffe.proto to read and write with
    weights           a caffemodel: checked against the converted network now (an
                      AtrousError when it does not fit; the WeightsReport is
                      `weights_report`), and the source of write_weights
    weights_out       where to write the converted network's caffemodel (needs weights)
    keep_layout       keep the input's comments and layout (False: canonical text)
    name              how messages name the input (default: its path)
    warn              issue the conversion's warnings as AtrousWarning
    """
    got = _load(net, proto, name)
    loaded = truncate(got.loaded, truncate_after) if truncate_after else got.loaded
    opts = options(output_stride, from_layer=from_layer, exact=exact, multi_grid=multi_grid,
                   fc_to_conv=fc_to_conv, decimate=decimate, input_shape=input_shape,
                   assume_same_grid=assume_same_grid, align=align,
                   weights_follow=weights_out is not None)
    if weights_out is not None and weights is None:
        raise UsageError("weights_out needs weights, the original caffemodel")
    conv = Conversion(convert_loaded(loaded, opts, layout=keep_layout), got, opts)
    if warn:
        for w in conv.warnings:
            _warnings.warn(AtrousWarning(w), stacklevel=2)
    if weights_out is not None:
        conv.write_weights(weights_out, weights)
    elif weights is not None:
        conv.check_weights(weights)
    return conv


class Conversion:
    """A converted network: its text and message, what changed and why, and the
    converted network's weights, report and picture.

    text           the converted prototxt (the input's layout kept, when it was text)
    net            the converted NetParameter, of the input message's class if one was given
    changes        every changed layer (Change)
    warnings       what the conversion warns about (ConversionWarning: layer, message)
    notes          what it says without warning (a head left as it is, ...)
    output_stride  (before, after)
    legacy         the input was a V1 file (the output is V2)
    weights_report the last weights check (check_weights, write_weights), or None
    """

    def __init__(self, result: Result, got: _Input, opts: Options):
        self.result, self.opts = result, opts
        self._like, self._path, self._source, self._weights = got.like, got.path, got.text, None
        self.weights_report = None
        self.text: str = result.text
        self.legacy: bool = result.loaded.legacy
        self.output_stride = (result.plan.stride_before, result.plan.stride_after)

    @property
    def net(self):
        """The converted NetParameter: of the input message's class if a message was
        given (read back from the text by field names), else caffe_atrous's own."""
        return self.result.net if self._like is None else foreign.from_text(self.text,
                                                                            self._like)

    @property
    def changes(self) -> list[Change]:
        """Every changed layer, in file order."""
        from .reports.text import change_pair, layer_changes
        out = []
        for c in layer_changes(self.result.plan):
            before, after = change_pair(c)
            out.append(Change(c["name"], c["type"], before, after, tuple(c["why"])))
        return out

    @property
    def warnings(self) -> list[ConversionWarning]:
        """What the conversion warns about, each tied to its layer (and the notes of
        reading a V1 file)."""
        return list(self.result.warnings)

    @property
    def notes(self) -> list[str]:
        """What the conversion says without warning (a head left as it is, ...)."""
        return list(self.result.plan.notes)

    def summary(self, by_output_stride: bool | None = None) -> str:
        """One line: what changed (or that nothing had to), and outputs at other strides."""
        if by_output_stride is None:
            by_output_stride = self.opts.from_layer is None
        return self.result.plan.summary(by_output_stride)

    def write(self, path) -> None:
        """Write the text to `path`, atomically; never over the input file."""
        path = os.fspath(path)
        if self._path is not None and same_file(self._path, path):
            raise UsageError("this is the input file; caffe_atrous never overwrites its input: "
                             "choose another path", file=path)
        write_text(path, self.text)

    def is_written_to(self, path) -> bool:
        """Whether `path` holds exactly this conversion (what `--check` asks)."""
        try:
            with open(os.fspath(path), encoding="utf-8", newline="") as fh:
                return fh.read() == self.text
        except OSError:
            return False

    def diff(self, target: str | None = None) -> str:
        """A unified diff of the input text and the conversion."""
        name = self.result.loaded.path
        return "".join(unified_diff(self._source, self.text, name,
                                    target or f"{name} (converted)"))

    def check_weights(self, caffemodel, name: str | None = None):
        """Check that `caffemodel` fits the converted network (layer names, blob counts
        and shapes); an AtrousError naming the layer when it does not. Returns the
        WeightsReport (matched, missing, mismatched, unused; `line()` sums it up)."""
        from .weights.converted import for_converted
        self.weights_report = for_converted(self.result, name or self._path or "<converted>",
                                            os.fspath(caffemodel), None, self.opts.input_shape)
        self._weights = os.fspath(caffemodel)
        return self.weights_report

    def write_weights(self, out, caffemodel=None):
        """Write the caffemodel of the converted network to `out`, from `caffemodel`
        (default: the `weights` given to convert): the same blobs, the converted
        definitions (an InnerProduct made a convolution gets its weight reshaped)."""
        source = os.fspath(caffemodel) if caffemodel is not None else self._weights
        if source is None:
            raise UsageError("write_weights needs the original caffemodel: give weights= to "
                             "convert, or caffemodel= here")
        from .weights.converted import for_converted
        self.weights_report = for_converted(self.result, os.fspath(out), source, os.fspath(out),
                                            self.opts.input_shape)
        self._weights = source
        return self.weights_report

    def report(self) -> dict[str, Any]:
        """Per stage: output stride, receptive field, size, multiply-accumulates and
        activation memory before and after, and every changed layer (as --report-json)."""
        from .reports.text import build
        return build(self.result.loaded, self.result, self.opts.input_shape)

    def report_text(self) -> str:
        """The report as the text table --report prints."""
        from .reports.text import format_table
        return format_table(self.report())

    def report_html(self, path=None) -> str:
        """The --report-html page (needs the extra 'report' and Graphviz); written to
        `path` too when given."""
        from .reports.html import render
        page = render(self.result.loaded, self.result, self.opts.input_shape, self._source)
        if path is not None:
            write_text(os.fspath(path), page)
        return page


def verify(original, converted, weights, *, new_weights=None, blob: str | None = None,
           input_shape: Sequence[int] | None = None, engine: str = "auto", seed: int = 0,
           tolerance: float = 1e-4, proto=None):
    """Run the original and the converted network (paths) with the same weights on
    the same random input in an inference engine ("opencv", "caffe" or "auto") and
    compare the converted output, sampled every m pixels, with the original's.
    `new_weights`: the converted caffemodel (after fc_to_conv). Returns the verify
    Report (`ok`, `max_abs`, `max_rel`, `lines()`); raises AtrousError when the
    networks cannot be compared."""
    from .verification.compare import verify as run
    shape = None if input_shape is None else values.input_shape(input_shape)
    return run(os.fspath(original), os.fspath(converted), os.fspath(weights), blob=blob,
               new_weights=None if new_weights is None else os.fspath(new_weights),
               input_shape=shape, engine=engine, seed=seed, tolerance=tolerance,
               schema=_schema(proto))


def init_weights(net, out, *, seed: int = 0, input_shape: Sequence[int] | None = None,
                 proto=None) -> dict[str, list[tuple[int, ...]]]:
    """Write random weights for `net` (a path, text or message) to `out`, as Caffe's
    net.save would; returns the layers written with their blob shapes."""
    from .weights.init import random_weights
    shape = None if input_shape is None else values.input_shape(input_shape)
    return random_weights(_load(net, proto, None).loaded, os.fspath(out), seed=seed,
                          input_shape=shape)


def preset(name_or_path) -> dict[str, Any]:
    """The keyword arguments of `convert` a preset holds (a bundled name such as
    "deeplab-v2", or a YAML file): `convert(net, **preset("deeplab-v2"))`."""
    from .pipeline.presets import load
    keys = set(convert.__code__.co_varnames[:convert.__code__.co_argcount
                                            + convert.__code__.co_kwonlyargcount])
    return {k: v for k, v in load(os.fspath(name_or_path)).items() if k in keys}
