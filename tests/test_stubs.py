"""The hand-written stubs of ``anyvar._core`` name exactly what the extension exports."""

import ast
from pathlib import Path

from anyvar import _core

STUB = Path(_core.__file__).with_name("_core.pyi")


def stub_names() -> dict[str, set[str]]:
    tree = ast.parse(STUB.read_text())
    names: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
        elif isinstance(node, ast.FunctionDef):
            names[node.name] = set()
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = set()
    return names


def test_stub_matches_the_extension():
    stubbed = stub_names()
    exported = {n for n in dir(_core) if not n.startswith("_") or n == "__version__"}
    assert set(stubbed) == exported
    for cls, methods in stubbed.items():
        for method in methods - {"__init__"}:
            assert hasattr(getattr(_core, cls), method), f"{cls}.{method} is not in the extension"
