"""Imports run downwards only: the engine, the tools, the store and the domain never import the API layer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "agent"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


@pytest.mark.parametrize("layer", ["engine", "tools", "store", "llm", "domain.py"])
def test_lower_layers_do_not_import_the_api(layer: str) -> None:
    target = ROOT / layer
    files = [target] if target.is_file() else sorted(target.rglob("*.py"))
    offenders = {str(f.relative_to(ROOT)): m for f in files for m in _imports(f) if m.startswith("agent.api")}
    assert offenders == {}
