"""YAML presets: every command-line option of a conversion, in a file.

    # configs/deeplab-v3.yaml
    description: DeepLab v3, output stride 16 with multi-grid (1, 2, 4)
    output-stride: 16
    multi-grid: [1, 2, 4]

Keys are the long option names. `--config NAME` loads configs/NAME.yaml (the
bundled presets), `--config FILE` any file; options given on the command line
win. Errors name the file and the line, and list the allowed keys.

The presets live in the repository's top-level configs/ and are installed as the
package caffe_atrous.configs (pyproject.toml maps one to the other), so they are
found through the import system: in a wheel, a sdist or an editable install alike.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import yaml

from ..core.errors import UsageError
from . import values

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

PRESETS = "caffe_atrous.configs"


def presets() -> dict[str, Traversable]:
    """The bundled presets as installed with the package: name -> file."""
    try:
        folder = resources.files(PRESETS)
    except ModuleNotFoundError:             # an install that left the presets out
        return {}
    return {f.name.removesuffix(".yaml"): f for f in folder.iterdir()
            if f.name.endswith(".yaml") and f.is_file()}


# key -> (argparse dest, validator)
KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "description": ("description", values.text),
    "output-stride": ("output_stride", values.positive),
    "from": ("from_layer", values.text),
    "exact": ("exact", values.flag),
    "multi-grid": ("multi_grid", values.rates),
    "fc-to-conv": ("fc_to_conv", values.flag),
    "decimate": ("decimate", values.decimation),
    "assume-same-grid": ("assume_same_grid", values.names),
    "align": ("align", values.flag),
    "truncate-after": ("truncate_after", values.text),
    "input-shape": ("input_shape", values.input_shape),
    "weights": ("weights", values.text),
    "weights-out": ("weights_out", values.text),
    "report": ("report", values.flag),
    "report-json": ("report_json", values.text),
    "report-html": ("report_html", values.text),
    "diff": ("diff", values.flag),
    "canonical": ("canonical", values.flag),
    "quiet": ("quiet", values.flag),
    "verbose": ("verbose", values.flag),
    "proto": ("proto", values.text),
}


def resolve(name_or_path: str) -> Path | Traversable:
    """A bundled preset by name, or a file."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    bundled = presets()
    if "/" not in name_or_path and name_or_path in bundled:
        return bundled[name_or_path]
    names = ", ".join(sorted(bundled)) or "none in this installation; reinstall caffe-atrous"
    raise UsageError(f"--config {name_or_path}: no such file, and no bundled preset of that name "
                     f"(presets: {names})")


def load(name_or_path: str) -> dict[str, Any]:
    """Validated options of a preset: argparse dest -> value."""
    path = resolve(name_or_path)
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"YAML syntax error: {what}", file=shown,
                         line=mark.line + 1 if mark else None,
                         column=mark.column + 1 if mark else None) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read: {exc}", file=shown) from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not isinstance(root, yaml.MappingNode):
        raise UsageError("a config is a mapping of option names to values (`output-stride: 8`)",
                         file=shown, line=1)
    lines = {k.value: k.start_mark.line + 1 for k, _ in root.value}
    out: dict[str, Any] = {}
    for key, value in data.items():
        line = lines.get(key)
        if key not in KEYS:
            raise UsageError(f"unknown key '{key}'; allowed keys: {', '.join(KEYS)}",
                             file=shown, line=line)
        dest, check = KEYS[key]
        try:
            out[dest] = check(value)
        except ValueError as exc:
            raise UsageError(f"'{key}' must be {exc}, not {value!r}", file=shown,
                             line=line) from None
    if "output_stride" in out and "from_layer" in out:
        raise UsageError("give 'output-stride' or 'from', not both", file=shown)
    return out
