"""Inference engines that run a Caffe network, one runner per engine.

A runner loads (prototxt, caffemodel) and returns blobs by name for an input.
OpenCV's Caffe importer (opencv-python-headless below 5.0) is installed by
`make`; pycaffe is used when `import caffe` works. Nothing else in
caffe_atrous imports either engine.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import AtrousError, UsageError


class Runner:
    """An inference engine: `name` (as --engine takes it), its version, and `run`."""

    name = "?"

    def version(self) -> str:
        """The engine and its version, as the report names it (`OpenCV 4.10.0`)."""
        raise NotImplementedError

    def run(self, prototxt: str, caffemodel: str, inputs: dict[str, np.ndarray],
            blobs: dict[str, str]) -> dict[str, np.ndarray]:
        """Forward `inputs`; return the blobs asked for. `blobs` maps each blob
        name to the last layer that writes it (OpenCV names outputs by layer)."""
        raise NotImplementedError


class OpenCVRunner(Runner):
    """OpenCV's Caffe importer (cv2.dnn, fusion off). Making one raises a `UsageError`
    when OpenCV is missing or has no Caffe importer."""

    name = "opencv"

    def __init__(self):
        try:
            import cv2
        except ImportError:
            raise UsageError("OpenCV is not installed: pip install 'caffe-atrous[verify]' "
                             "(or use --engine caffe)") from None
        if not hasattr(cv2, "dnn") or not hasattr(cv2.dnn, "readNetFromCaffe"):
            raise UsageError(f"this OpenCV ({cv2.__version__}) has no Caffe importer; install "
                             "opencv-python-headless below 5.0")
        self.cv2 = cv2

    def version(self) -> str:
        """OpenCV's version, as `OpenCV 4.10.0`."""
        return f"OpenCV {self.cv2.__version__}"

    def run(self, prototxt, caffemodel, inputs, blobs):
        """`Runner.run` with cv2.dnn: the blobs read from the outputs of the layers `blobs`
        names. Raises an AtrousError when OpenCV cannot load or run the network."""
        cv2 = self.cv2
        try:
            net = cv2.dnn.readNetFromCaffe(prototxt, caffemodel)
        except cv2.error as exc:
            msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else "cannot load"
            raise AtrousError(f"OpenCV cannot load this network: {msg}", file=prototxt) from None
        net.enableFusion(False)          # every layer's own output, as in Caffe
        for name, value in inputs.items():
            net.setInput(value, name)
        layers = list(dict.fromkeys(blobs.values()))
        try:
            outs = net.forward(layers)
        except cv2.error as exc:
            msg = str(exc).strip().splitlines()[-1]
            raise AtrousError(f"OpenCV could not run this network: {msg}", file=prototxt) from None
        by_layer = dict(zip(layers, outs))
        return {blob: np.asarray(by_layer[layer]) for blob, layer in blobs.items()}


class CaffeRunner(Runner):
    """pycaffe, in CPU mode, the TEST phase. Making one raises a `UsageError` when
    `import caffe` fails."""

    name = "caffe"

    def __init__(self):
        try:
            import caffe  # type: ignore
        except ImportError:
            raise UsageError("pycaffe is not importable here (`import caffe` fails); use "
                             "--engine opencv") from None
        except Exception as exc:            # noqa: BLE001 - pycaffe's own start-up failed
            raise UsageError(f"pycaffe is on the path but fails to start in this Python "
                             f"({type(exc).__name__}: {exc}); a pycaffe built against numpy "
                             f"1.x fails beside numpy {np.__version__}: run caffe-atrous with "
                             "the Python pycaffe was built for (with numpy 1.x), or use "
                             "--engine opencv") from None
        self.caffe = caffe
        caffe.set_mode_cpu()

    def version(self) -> str:
        """`pycaffe` and caffe's `__version__`, where the build has one."""
        return f"pycaffe {getattr(self.caffe, '__version__', '')}".strip()

    def run(self, prototxt, caffemodel, inputs, blobs):
        """`Runner.run` with pycaffe: each input blob reshaped to its array, one forward pass,
        the blobs read by name (copied out of the net)."""
        net = self.caffe.Net(prototxt, caffemodel, self.caffe.TEST)
        for name, value in inputs.items():
            net.blobs[name].reshape(*value.shape)
            net.blobs[name].data[...] = value
        net.forward()
        return {blob: np.array(net.blobs[blob].data) for blob in blobs}


def get(engine: str) -> Runner:
    """The runner of `engine`: opencv, caffe, or auto (pycaffe when importable, else
    OpenCV). Raises a `UsageError` for another name or an engine that is missing."""
    if engine == "opencv":
        return OpenCVRunner()
    if engine == "caffe":
        return CaffeRunner()
    if engine == "auto":
        try:
            return CaffeRunner()
        except UsageError:
            return OpenCVRunner()
    raise UsageError(f"unknown engine {engine!r}: opencv, caffe or auto")
