"""The layering of caffe_atrous, as the package docstring states it, holds for every
module (package __init__ files included); protobuf stays in formats/."""

import ast
import re
from pathlib import Path

import caffe_atrous
from conftest import ROOT

PACKAGE = ROOT / "caffe_atrous"
# What may sit beside the packages: the public API and the entry points.
TOP_MODULES = {"__init__.py", "__main__.py", "api.py"}


def layers() -> list[set[str]]:
    """The one description of the layering: the `LAYERS:` line of the package docstring,
    lowest first ('a -> b, c -> d': b and c are one layer)."""
    line = re.search(r"^\s*LAYERS:\s*(.+)$", caffe_atrous.__doc__, re.M).group(1)
    return [{n.strip() for n in step.split(",")} for step in line.split("->")]


def layer_of(module: str) -> int:
    """The layer of a module given as its dotted name inside the package ('' is the
    package itself, whose __init__ is the public API: the top)."""
    top = module.split(".")[0]
    steps = layers()
    if top == "__version__":            # the version string, defined first in __init__.py
        return 0
    if top == "":
        return len(steps) - 1
    return next(i for i, names in enumerate(steps) if top in names)


def module_name(path: Path) -> tuple[str, list[str]]:
    """(dotted name, package parts) of a file of the package."""
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), parts[:-1]
    return ".".join(parts), parts[:-1]


def imports(path: Path):
    """Dotted names (inside the package) that `path` imports; '<external>x' for others."""
    _, package = module_name(path)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
            if target:
                yield target
            else:
                yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("caffe_atrous"):
            yield node.module.partition(".")[2]
        elif isinstance(node, ast.Import):
            for a in node.names:
                inside = a.name.startswith("caffe_atrous.")
                yield a.name.partition(".")[2] if inside else f"<external>{a.name}"


def test_every_package_has_a_layer():
    names = set().union(*layers())
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages - {"configs"} == names - {"__main__", "api"}


def test_only_the_api_and_entry_points_sit_beside_the_packages():
    top = {p.name for p in PACKAGE.glob("*.py")}
    assert top <= TOP_MODULES, top - TOP_MODULES


def test_imports_go_one_way():
    checked = 0
    for path in PACKAGE.rglob("*.py"):
        name, _ = module_name(path)
        me = layer_of(name)
        for target in imports(path):
            if target.startswith("<external>"):
                continue
            assert layer_of(target) <= me, f"{path.relative_to(PACKAGE)} imports {target}"
            checked += 1
    assert checked > 100


def test_the_check_sees_init_files_and_absolute_imports(tmp_path, monkeypatch):
    # an __init__'s relative imports resolve from its own package
    assert "core.errors" in set(imports(PACKAGE / "cli" / "__init__.py"))
    assert layer_of(module_name(PACKAGE / "cli" / "__init__.py")[0]) == layer_of("cli")
    # and a module that imports upward, relatively or absolutely, is caught
    fake = tmp_path / "caffe_atrous" / "formats"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("from ..cli import main\nimport caffe_atrous.api\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", tmp_path / "caffe_atrous")
    found = list(imports(fake / "__init__.py"))
    assert found == ["cli", "api"]
    assert all(layer_of(t) > layer_of("formats") for t in found)


def _imported_modules(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and not node.level:
            yield node.module or ""
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


def test_protobuf_stays_in_formats():
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "formats":
            continue
        for module in _imported_modules(path):
            assert not module.startswith("google.protobuf") and "caffe_pb2" not in module, rel


def test_the_readme_tells_the_same_layering():
    line = re.search(r"^\s*LAYERS:\s*(.+)$", caffe_atrous.__doc__, re.M).group(1).strip()
    assert line in (ROOT / "docs" / "architecture.md").read_text()
