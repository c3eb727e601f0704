"""Each public function and class of the run API, the models and the dataset families says why it exists.

Public: no leading underscore, at module level or in a class (methods, properties, nested classes).
The API reference (docs/reference/api.md) shows these docstrings.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(
    {
        *(ROOT / p for p in (
            "utils/run.py", "utils/cli.py", "utils/registry.py", "models/methods.py", "models/build.py",
            "models/ide.py", "models/classifier.py", "models/codebook.py", "dataset/synthetic.py",
        )),
        *(ROOT / "models" / "encoder").glob("*.py"),
        *(ROOT / "dataset" / "families").glob("*.py"),
    }
)


def undocumented(source: str) -> list[str]:
    """Qualified names of the public functions and classes in ``source`` that have no docstring."""
    missing: list[str] = []

    def walk(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
            if isinstance(node, defs) and not node.name.startswith("_"):
                if not (ast.get_docstring(node) or "").strip():
                    missing.append(f"{prefix}{node.name} (line {node.lineno})")
                if isinstance(node, ast.ClassDef):
                    walk(node.body, f"{prefix}{node.name}.")

    walk(ast.parse(source).body, "")
    return missing


def test_the_walker_finds_what_lacks_a_docstring():
    source = '''
def public(): pass
def _private(): pass
class Documented:
    """Why."""
    def method(self): pass
    def _helper(self): pass
    @property
    def size(self):
        """Documented property."""
class Bare:
    class Inner:
        pass
'''
    assert undocumented(source) == [
        "public (line 2)", "Documented.method (line 6)", "Bare (line 11)", "Bare.Inner (line 12)",
    ]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_public_functions_and_classes_have_docstrings(path: Path):
    source = path.read_text()
    assert (ast.get_docstring(ast.parse(source)) or "").strip(), f"{path.relative_to(ROOT)} has no module docstring"
    missing = undocumented(source)
    assert not missing, f"{path.relative_to(ROOT)}: no docstring on {', '.join(missing)}"
