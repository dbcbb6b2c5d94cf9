"""Reading a network: a prototxt file or text into a Loaded, V1 upgraded to V2.

    loaded = load_text(read_text("net.prototxt"), "net.prototxt")
    loaded.graph()            # the TEST-phase graph (graph/graph.py)
"""

from __future__ import annotations

from ..core.errors import AtrousError, ConversionWarning, UsageError
from ..formats import netspec, prototxt, upgrade
from ..formats.netspec import Net
from ..formats.schema import Schema
from ..graph.graph import Graph, build_graphs, test_phase
from ..graph.reader import read_layers
from ..graph.records import LayerSpec


class Loaded:
    """A network read and normalised to V2, with what the reader noticed.

    net      the V2 NetParameter
    path     the file it came from (for messages)
    lines    the line of each layer in that file (None where the file has none)
    legacy   it was a V1 file
    notes    what reading it said (V1 fields that could not be carried over)
    text     the user's text, when the output can keep its layout
    parsed   what `text` parses to (before truncation)
    schema   the schema it was read with (None: the built-in one)
    blocks   where its layer blocks are in `text` (prototxt.layer_blocks)
    """

    __slots__ = ("net", "path", "lines", "legacy", "notes", "text", "parsed", "schema", "blocks")

    def __init__(self, net: Net, *, path: str, lines: list[int | None], legacy: bool = False,
                 notes: list[ConversionWarning] | None = None, text: str | None = None,
                 parsed: Net | None = None, schema: Schema | None = None,
                 blocks: list | None = None):
        self.net, self.path, self.lines, self.legacy = net, path, lines, legacy
        self.notes = [] if notes is None else notes
        self.text, self.parsed, self.schema, self.blocks = text, parsed, schema, blocks

    def replace(self, **changes) -> Loaded:
        """A copy with some fields changed."""
        fields = {name: getattr(self, name) for name in Loaded.__slots__ if name != "net"}
        fields.update(changes)
        return Loaded(fields.pop("net", self.net), **fields)

    def specs(self) -> list[LayerSpec]:
        """The layers of `net` as LayerSpecs, in file order, with their lines; raises an
        AtrousError, located in the file, for a layer it cannot read."""
        return read_layers(self.net, self.lines, self.path)

    def graphs(self, input_shape: tuple[int, ...] | None = None) -> list[Graph]:
        """One graph per phase; `input_shape` (--input-shape) sizes the first input."""
        try:
            inputs = netspec.declared_inputs(self.net)
        except AtrousError as exc:
            raise exc.located(self.path) from None
        return build_graphs(self.specs(), inputs, self.path, input_shape)

    def graph(self, input_shape: tuple[int, ...] | None = None) -> Graph:
        """The TEST-phase graph (what runs when the network is deployed)."""
        return test_phase(self.graphs(input_shape))


def read_text(path: str) -> str:
    """A prototxt file's text ('-': standard input), with one-line errors."""
    import sys
    try:
        if path == "-":                 # bytes, so that the decoding below is strict here too
            stream = getattr(sys.stdin, "buffer", None)
            if stream is None:
                return sys.stdin.read()
            return stream.read().decode("utf-8")
        with open(path, encoding="utf-8", newline="") as fh:    # CRLF files stay CRLF
            return fh.read()
    except FileNotFoundError:
        raise UsageError("no such file", file=path) from None
    except IsADirectoryError:
        raise UsageError("is a directory, not a prototxt file", file=path) from None
    except UnicodeDecodeError as exc:
        raise AtrousError(f"not a text file ({exc.reason} at byte {exc.start}); is this a binary "
                          ".caffemodel rather than a .prototxt?",
                          file="<stdin>" if path == "-" else path) from None
    except OSError as exc:
        raise AtrousError(f"cannot read: {exc.strerror}", file=path) from None


def load_text(text: str, path: str = "<string>", schema: Schema | None = None) -> Loaded:
    """Parse prototxt text with `schema` (a fork's, from --proto; default: the
    built-in one); V1 files are upgraded to V2 (and the notes say so)."""
    net, parsed = prototxt.parse(text, path, schema)
    lines: list[int | None] = list(parsed.layer_lines)
    if not parsed.legacy:
        return Loaded(net, path=path, lines=lines, text=text, parsed=net, schema=schema,
                      blocks=list(parsed.layer_blocks))
    try:
        up = upgrade.upgrade_v1(net)
    except AtrousError as exc:
        raise exc.located(path) from None
    lines = [None if i is None or i >= len(lines) else lines[i] for i in up.origin]
    return Loaded(up.net, path=path, lines=lines, legacy=True, notes=up.notes, schema=schema)


def truncate(loaded: Loaded, last: str) -> Loaded:
    """Drop every layer after the layer named `last`."""
    names = netspec.layer_names(loaded.net)
    index = names.index(last) if last in names else None
    if index is None:
        raise UsageError(f"--truncate-after {last}: no layer has that name", file=loaded.path)
    return loaded.replace(net=netspec.truncate_after(loaded.net, index),
                          lines=loaded.lines[: index + 1])


