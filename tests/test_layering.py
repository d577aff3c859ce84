"""Imports go http -> schema -> resolvers -> storage, rest -> resolvers -> storage,
collect -> resolvers -> storage and emit -> resolvers -> storage, never back; storage never sees
Strawberry; the demo data writes through storage's bulk functions; and no module of jobql or
bench imports itself in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "jobql"

UPPER = (
    "jobql.http",
    "jobql.rest",
    "jobql.app",
    "jobql.cli",
    "jobql.demo",
    "jobql.tools",
    "jobql.collect",
    "jobql.emit",
)
# A command that works through the resolvers in the background: no GraphQL, no HTTP face, nothing
# of the other commands (`collect`, `emit`).
BACKGROUND_COMMAND = (
    "strawberry",
    "graphql",
    "starlette",
    "jobql.schema",
    "jobql.storage",
    "jobql.http",
    "jobql.rest",
    "jobql.app",
    "jobql.cli",
    "jobql.demo",
    "jobql.tools",
)
FORBIDDEN = {
    "storage": ("strawberry", "graphql", "starlette", "jobql.schema", "jobql.resolvers", *UPPER),
    "resolvers": ("strawberry", "graphql", "starlette", "jobql.schema", *UPPER),
    "schema": ("sqlalchemy", "jobql.storage", *UPPER),
    # GraphQL over HTTP: uses the schema and the resolvers, never storage itself.
    "http": ("sqlalchemy", "jobql.storage", "jobql.rest", "jobql.app", "jobql.cli"),
    # Demo data: generated in Python, written through storage's public bulk functions.
    "demo": (
        "strawberry",
        "graphql",
        "starlette",
        "sqlalchemy",
        "jobql.schema",
        "jobql.resolvers",
        "jobql.http",
        "jobql.rest",
        "jobql.storage.models",
        "jobql.storage.engine",
    ),
    # Maintenance commands' machinery: schema files in, reports out.
    "tools": ("sqlalchemy", "starlette", "jobql.storage", "jobql.resolvers", "jobql.http"),
    # Parsers of the source formats: pure functions from text to ingest records.
    "importers": (
        "strawberry",
        "graphql",
        "starlette",
        "sqlalchemy",
        "jobql.schema",
        "jobql.resolvers",
    ),
    # The collector: pulls the sources through their SDKs into the one ingest path, through the
    # resolvers (as rest does); no GraphQL, no HTTP face.
    "collect": BACKGROUND_COMMAND,
    # Its adapters: call the SDK, return records; neither the collector's logic nor the store.
    "collect/sources": (
        "sqlalchemy",
        "jobql.resolvers",
        "jobql.storage",
        "jobql.collect.caller",
        "jobql.collect.checkpoints",
        "jobql.collect.runner",
        "jobql.collect.walks",
    ),
    # OpenLineage out: reads the event log through the resolvers and sends through
    # openlineage-python; no GraphQL, no HTTP face, nothing of the other commands.
    "emit": (*BACKGROUND_COMMAND, "jobql.collect", "jobql.importers"),
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
    "demo": ("sqlalchemy.ext.asyncio",),  # the engine it is handed, as a type
    # The records' vocabulary; and the collector's process owns its engine (opened, checked to
    # be migrated, closed), as jobql.app's lifespan does.
    "collect": (
        "jobql.storage.records",
        "jobql.storage.enums",
        "jobql.storage.engine",
        "jobql.storage.migrate",
    ),
    "collect/sources": ("jobql.storage.records",),
    # `jobql emit` owns its engine (opened, checked to be migrated, closed), as collect does.
    "emit": ("jobql.storage.engine", "jobql.storage.migrate"),
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


ROOTS = [PACKAGE, PACKAGE.parent / "bench"]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of jobql and bench it imports, anywhere in its text (type-checking
    and function-level imports included: a circle hidden in a function is still a circle).
    `from package import name` counts as an import of `package.name` where that is a module.

    One exception: GraphQL types that refer to each other (an Instance has a Job, a Job has
    Instances) import each other's module only for Strawberry's `strawberry.lazy("module")`,
    its mechanism for such references: neither module needs the other to load. An import of a
    module the same file names in `strawberry.lazy(...)` is not counted."""
    paths = {
        _module_name(path): path
        for root in ROOTS
        for path in root.rglob("*.py")
        if "node_modules" not in path.parts
    }
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        edges: set[str] = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        lazy = {
            node.args[0].value
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "lazy"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(
                        [*package.split(".")[: len(package.split(".")) - node.level + 1], base]
                    ).strip(".")
                for alias in node.names:
                    edges.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in paths else base)
        graph[module] = {
            edge for edge in edges if edge in paths and edge != module and edge not in lazy
        }
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_no_import_circles() -> None:
    assert circles(import_graph()) == []


def test_an_import_circle_is_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c"]]


def test_metrics_import_nothing_of_jobql() -> None:
    """jobql/metrics.py is counted in by every layer: it may depend on none of them."""
    imported = imported_modules(PACKAGE / "metrics.py")
    assert [module for module in imported if module.startswith("jobql")] == []
