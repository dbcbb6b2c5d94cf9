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


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError("a whole number of at least 1")
    return v


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError("true or false")
    return v


def _str(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise ValueError("a name or a path")
    return v


def _names(v: Any) -> tuple[str, ...]:
    """One name, or a list of names (`assume-same-grid: [Upsample, MyReLU]`)."""
    items = [v] if isinstance(v, str) else v
    if not isinstance(items, list) or not items or \
            not all(isinstance(x, str) and x for x in items):
        raise ValueError("a layer type or a list of them, like [MyReLU]")
    return tuple(items)


def _ints(n: int | None) -> Callable[[Any], tuple[int, ...]]:
    def check(v: Any) -> tuple[int, ...]:
        if isinstance(v, str):
            v = [x.strip() for x in v.split(",")]
            try:
                v = [int(x) for x in v]
            except ValueError:
                v = None
        if not isinstance(v, list) or not v or (n and len(v) != n) or \
                not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in v):
            raise ValueError(f"a list of {n or 'one or more'} whole numbers, like "
                             + {4: "[1, 3, 513, 513]", 2: "[3, 4]"}.get(n, "[1, 2, 4]"))
        return tuple(v)
    return check


# key -> (argparse dest, validator)
KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "description": ("description", _str),
    "output-stride": ("output_stride", _int),
    "from": ("from_layer", _str),
    "exact": ("exact", _bool),
    "multi-grid": ("multi_grid", _ints(None)),
    "fc-to-conv": ("fc_to_conv", _bool),
    "decimate": ("decimate", _ints(2)),
    "assume-same-grid": ("assume_same_grid", _names),
    "truncate-after": ("truncate_after", _str),
    "input-shape": ("input_shape", _ints(4)),
    "weights": ("weights", _str),
    "weights-out": ("weights_out", _str),
    "report": ("report", _bool),
    "report-json": ("report_json", _str),
    "report-html": ("report_html", _str),
    "diff": ("diff", _bool),
    "canonical": ("canonical", _bool),
    "quiet": ("quiet", _bool),
    "verbose": ("verbose", _bool),
    "proto": ("proto", _str),
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
