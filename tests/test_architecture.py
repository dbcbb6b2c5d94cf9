"""Imports go one way: formats -> graph -> analysis -> rewrite -> convert ->
weights/verify/report -> cli; protobuf messages stay in formats/."""

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "caffe_atrous"
# Each layer may import only from the layers before it (and errors/window/atomic, the base).
LAYERS = [
    {"errors", "window", "atomic"},
    {"formats"},
    {"graph"},
    {"analysis"},
    {"rewrite"},
    {"convert", "config"},
    {"weights", "runners", "report", "report_html"},
    {"verify"},
    {"cli", "__main__"},
]


def layer_of(module: str) -> int:
    top = module.split(".")[0]
    if top == "__version__":                 # from the package itself
        return 0
    return next(i for i, names in enumerate(LAYERS) if top in names)


def imports(path: Path):
    tree = ast.parse(path.read_text())
    rel = path.relative_to(PACKAGE).with_suffix("")
    package = list(rel.parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
            if target:
                yield target
            else:
                yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            yield from (f"<external>{a.name}" for a in node.names)


def test_imports_go_one_way():
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).with_suffix("")
        if rel.name == "__init__":
            continue
        me = layer_of(".".join(rel.parts))
        for target in imports(path):
            if target.startswith("<external>"):
                continue
            assert layer_of(target) <= me, f"{rel} imports {target}"


def test_protobuf_stays_in_formats():
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "formats":
            continue
        text = path.read_text()
        assert "google.protobuf" not in text and "caffe_pb2" not in text, rel
