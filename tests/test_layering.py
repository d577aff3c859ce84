"""Imports go schema -> resolvers -> storage, never back; storage never sees Strawberry."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "jobql"

FORBIDDEN = {
    "storage": ("strawberry", "graphql", "starlette", "jobql.schema", "jobql.resolvers"),
    "resolvers": ("strawberry", "graphql", "starlette", "jobql.schema"),
    "schema": ("sqlalchemy.orm", "jobql.app", "jobql.cli"),
}


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_does_not_import_upwards(layer: str) -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)} imports {module}"
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        for module in imported_modules(path)
        if module.startswith(FORBIDDEN[layer])
    ]
    assert offenders == []
