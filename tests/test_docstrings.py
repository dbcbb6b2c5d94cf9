"""Every module of caffe_atrous (package __init__ files included) has a docstring, and so
does every public function, method and class defined at module or class level: the
docstrings are the reference documentation. Nested closures are not held to it."""

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "caffe_atrous"
DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _statements(body: list[ast.stmt]):
    """The statements of a module or class body, looking into if/try/with blocks (a
    definition under `if TYPE_CHECKING:` or in a `try` is still at that level)."""
    for node in body:
        yield node
        if isinstance(node, (ast.If, ast.Try, ast.With)):
            for part in ("body", "orelse", "finalbody"):
                yield from _statements(getattr(node, part, []))
            for handler in getattr(node, "handlers", []):
                yield from _statements(handler.body)


def public_definitions(tree: ast.Module):
    """(dotted name, node) of every function and class defined at module level or in a
    class body (at any depth of classes) whose own name does not start with `_`."""
    def walk(body, prefix):
        for node in _statements(body):
            if not isinstance(node, DEFINITIONS):
                continue
            if not node.name.startswith("_"):
                yield prefix + node.name, node
            if isinstance(node, ast.ClassDef):
                yield from walk(node.body, f"{prefix}{node.name}.")
    yield from walk(tree.body, "")


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_docstring():
    missing = [str(p.relative_to(ROOT)) for p in _modules()
               if not ast.get_docstring(ast.parse(p.read_text()))]
    assert missing == []


def test_every_public_function_and_class_has_a_docstring():
    missing, seen = [], 0
    for path in _modules():
        for name, node in public_definitions(ast.parse(path.read_text())):
            seen += 1
            if not (ast.get_docstring(node) or "").strip():
                missing.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    assert seen > 200                      # the walk does see the package
    assert missing == []


def test_the_check_sees_methods_and_skips_private_names_and_closures():
    tree = ast.parse(
        "def f():\n    def closure(): pass\n"
        "class C:\n    def m(self): pass\n    def _p(self): pass\n"
        "    class Inner:\n        def n(self): pass\n"
        "class _Private:\n    def shown(self): pass\n"
        "if True:\n    def g(): pass\n"
        "def _h(): pass\n")
    assert [name for name, _ in public_definitions(tree)] == \
        ["f", "C", "C.m", "C.Inner", "C.Inner.n", "_Private.shown", "g"]
