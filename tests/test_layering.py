"""Imports go schema -> resolvers -> storage and rest -> resolvers -> storage, never back;
storage never sees Strawberry."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "jobql"

FORBIDDEN = {
    "storage": ("strawberry", "graphql", "starlette", "jobql.schema", "jobql.resolvers"),
    "resolvers": ("strawberry", "graphql", "starlette", "jobql.schema"),
    "schema": ("sqlalchemy", "jobql.storage", "jobql.app", "jobql.cli"),
    # Parsers of the source formats: pure functions from text to ingest records.
    "importers": (
        "strawberry",
        "graphql",
        "starlette",
        "sqlalchemy",
        "jobql.schema",
        "jobql.resolvers",
    ),
    # The source REST endpoints: a second face beside GraphQL, on the same resolvers.
    "rest": (
        "strawberry",
        "graphql",
        "sqlalchemy",
        "jobql.schema",
        "jobql.storage",
        "jobql.importers",
        "jobql.app",
        "jobql.cli",
    ),
}
# The model's vocabulary (plain Python enums) and its one text form of a time are shared by
# schema and storage, so that GraphQL values and stored values cannot drift apart.
ALLOWED = {
    "schema": ("jobql.storage.enums", "jobql.storage.types"),
    "rest": ("jobql.storage.enums", "jobql.storage.types"),
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
        if module.startswith(FORBIDDEN[layer]) and not module.startswith(ALLOWED.get(layer, ()))
    ]
    assert offenders == []
