"""The network as a graph of plain objects: layers, blobs, producers, consumers.

A Graph is one phase (TRAIN or TEST) of a network: the layers active in that
phase, in file order. Every top a layer writes is a new Blob, so in-place
layers (ReLU, BatchNorm, Scale writing their input) give a chain of blobs with
the same name, and each Blob has exactly one producer (None for a network
input) and its consumers.
"""

from __future__ import annotations

from ..core.errors import AtrousError
from .records import PHASES, LayerSpec


class Blob:
    """One version of a named blob: the layer that writes it (None: a network
    input), the layers that read it. Compared by identity."""

    __slots__ = ("name", "producer", "consumers", "shape")

    def __init__(self, name: str, producer: LayerSpec | None, *,
                 shape: tuple[int, ...] | None = None):
        self.name = name
        self.producer = producer
        self.consumers: list[LayerSpec] = []
        self.shape = shape                         # declared shape of a network input

    def __repr__(self) -> str:
        by = self.producer.name if self.producer else "input"
        return f"Blob({self.name!r} from {by})"


class Graph:
    """One phase of a network: the layers active in `phase`, in file order, its `inputs`
    and every version of every blob. `input_shape` is --input-shape, the first input's size
    (None: the declared one). Raises an AtrousError for a duplicate layer name or a bottom
    no earlier layer writes."""

    def __init__(self, layers: list[LayerSpec], phase: str,
                 inputs: list[tuple[str, tuple[int, ...] | None]] = (), path: str | None = None,
                 multi_phase: bool = False, input_shape: tuple[int, ...] | None = None):
        self.phase = phase
        self.input_shape = input_shape     # --input-shape: the first input's size, if given
        self.multi_phase = multi_phase
        self.path = path
        self.layers = [l for l in layers if phase in l.phases]
        self.inputs: list[Blob] = []
        self.blobs: list[Blob] = []
        self._bottoms: dict[int, list[Blob]] = {}
        self._tops: dict[int, list[Blob]] = {}
        self._by_name: dict[str, LayerSpec] = {}
        current: dict[str, Blob] = {}
        for name, shape in inputs:
            blob = Blob(name, None, shape=shape)
            self.inputs.append(blob)
            self.blobs.append(blob)
            current[name] = blob
        for layer in self.layers:
            other = self._by_name.get(layer.name)
            if other is not None:
                where = f" (line {other.line})" if other.line else ""
                raise AtrousError(f"duplicate layer name: an earlier layer{where} has the same name "
                                  f"in phase {phase}; rename one of them",
                                  file=path, line=layer.line, layer=layer.name)
            self._by_name[layer.name] = layer
            bottoms = []
            for b in layer.bottoms:
                if b not in current:
                    raise AtrousError(
                        f"bottom '{b}' is not produced by any earlier layer{self._phase_note()}; "
                        "check the name, or add the layer or input that makes it",
                        file=path, line=layer.line, layer=layer.name)
                blob = current[b]
                blob.consumers.append(layer)
                bottoms.append(blob)
            self._bottoms[layer.index] = bottoms
            tops = []
            for t in layer.tops:
                blob = Blob(t, layer)
                current[t] = blob
                self.blobs.append(blob)
                tops.append(blob)
                if not layer.bottoms:
                    self.inputs.append(blob)
            self._tops[layer.index] = tops

    def _phase_note(self) -> str:
        return f" in phase {self.phase}" if self.multi_phase else ""

    def bottoms(self, layer: LayerSpec) -> list[Blob]:
        """The blobs `layer` reads, in the order of its bottoms."""
        return self._bottoms[layer.index]

    def tops(self, layer: LayerSpec) -> list[Blob]:
        """The blobs `layer` writes, in the order of its tops."""
        return self._tops[layer.index]

    def layer(self, name: str) -> LayerSpec | None:
        """The layer called `name` in this phase, or None."""
        return self._by_name.get(name)


def phases_in_use(layers: list[LayerSpec]) -> list[str]:
    """The phases the file is written for: those named by some layer's rules
    (a train_val file names both; a test.prototxt with one TEST-only data layer,
    TEST alone), or TEST when no layer depends on the phase."""
    named = {p for l in layers if l.phases != frozenset(PHASES) for p in l.phases}
    return [p for p in PHASES if p in named] or ["TEST"]


def build_graphs(layers: list[LayerSpec], inputs=(), path: str | None = None,
                 input_shape: tuple[int, ...] | None = None) -> list[Graph]:
    """One Graph per phase the network uses (`input_shape`: see Graph)."""
    phases = phases_in_use(layers)
    return [Graph(layers, p, inputs, path, multi_phase=len(phases) > 1, input_shape=input_shape)
            for p in phases]


def test_phase(graphs: list[Graph]) -> Graph:
    """The graph a deployed network runs: TEST, or the only phase there is."""
    return next((g for g in graphs if g.phase == "TEST"), graphs[0])
