"""OpenTelemetry spans, caught by the SDK's in-memory exporter: the request (continuing the
caller's `traceparent`), the operation, one span per root field with its strategy, and the SQL
statements under it; no variable values in any attribute."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import make_instance, make_job, new_workspace
from tests.ops.conftest import AppClient

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
CALLER_SPAN = 0xB7AD6B7169203331
TRACEPARENT = f"00-{TRACE_ID:032x}-{CALLER_SPAN:016x}-01"
DASH = """
query Dash($job: String) {
  instances(first: 2, filter: { jobName: $job }) { nodes { instanceId status } }
}
"""
SECRET = "variable-value-never-recorded"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    found = InMemorySpanExporter()
    yield found
    found.shutdown()


def provider_for(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


class Tree:
    def __init__(self, spans: tuple[ReadableSpan, ...]) -> None:
        self.spans = spans
        self.by_id = {span.context.span_id: span for span in spans}

    def one(self, name: str) -> ReadableSpan:
        (found,) = [span for span in self.spans if span.name == name]
        return found

    def children(self, parent: ReadableSpan) -> list[ReadableSpan]:
        return [
            span
            for span in self.spans
            if span.parent is not None and span.parent.span_id == parent.context.span_id
        ]

    def statements(self, parent: ReadableSpan) -> list[ReadableSpan]:
        """SQL spans right under `parent` that read instances (not BEGIN, pings, or the
        driver's set-up queries of a new connection)."""
        return [span for span in self.children(parent) if "instance" in _statement(span)]


def _statement(span: ReadableSpan) -> str:
    attributes = span.attributes or {}
    if "db.system" not in attributes and "db.system.name" not in attributes:
        return ""
    return str(attributes.get("db.statement") or attributes.get("db.query.text") or "")


def _attribute_values(spans: tuple[ReadableSpan, ...]) -> list[Any]:
    return [value for span in spans for value in (span.attributes or {}).values()]


async def request_tree(
    exporter: InMemorySpanExporter, client: Any, workspace: str, job: str
) -> Tree:
    exporter.clear()
    response = await client.post(
        "/graphql",
        json={"query": DASH, "variables": {"job": job}},
        headers={"workspace": workspace, "traceparent": TRACEPARENT},
    )
    assert response.status_code == 200
    assert response.json()["data"]["instances"]["nodes"] == [{"instanceId": 5, "status": "SUCCESS"}]
    # The request's trace only: the instrumentation is process-wide, and work left running by
    # earlier tests in this process (their apps' background reads) makes spans of other traces.
    spans = [span for span in exporter.get_finished_spans() if span.context.trace_id == TRACE_ID]
    assert not any(SECRET in str(value) for value in _attribute_values(spans))
    return Tree(spans)


def check_request(tree: Tree, strategy: str) -> tuple[ReadableSpan, ReadableSpan]:
    """The request span and the root field's span; the operation's span between them."""
    request = tree.one("POST /graphql")
    assert request.parent is not None
    assert request.parent.is_remote
    assert request.parent.span_id == CALLER_SPAN
    assert request.attributes is not None
    assert request.attributes["http.route"] == "/graphql"
    assert request.attributes["graphql.operation.name"] == "Dash"
    assert request.attributes["jobql.strategy"] == strategy
    operation = tree.one("GraphQL Query: Dash")
    assert operation.parent is not None
    assert operation.parent.span_id == request.context.span_id
    field = tree.one("GraphQL Resolving: instances")
    assert field.parent is not None
    assert field.parent.span_id == operation.context.span_id
    assert field.attributes is not None
    assert field.attributes["jobql.strategy"] == strategy
    return request, field


@pytest.mark.parametrize("strategy", ["compiled", "reference"])
async def test_span_tree(
    engine: AsyncEngine, app_client: AppClient, exporter: InMemorySpanExporter, strategy: str
) -> None:
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace, name=SECRET)
    await make_instance(engine, job, vendor_instance_id=5, status="SUCCESS")
    _, client = await app_client(read_strategy=strategy, tracer_provider=provider_for(exporter))

    tree = await request_tree(exporter, client, workspace.name, SECRET)
    _, field = check_request(tree, strategy)
    operation = tree.one("GraphQL Query: Dash")
    assert {span.name for span in tree.children(operation)} >= {
        "GraphQL Parsing",
        "GraphQL Validation",
        "GraphQL Resolving: instances",
    }
    statements = tree.statements(field)
    if strategy == "compiled":
        assert len(statements) == 1  # the whole answer in one statement
    else:
        assert statements  # the page, under its root field (nested loads come after it)

    if strategy == "compiled":
        # Learned: the next request is the fast lane's, with the same two levels and one
        # statement, and neither parsing nor validation.
        tree = await request_tree(exporter, client, workspace.name, SECRET)
        _, field = check_request(tree, "fast_path")
        assert len(tree.statements(field)) == 1
        assert not any(span.name.startswith("GraphQL Parsing") for span in tree.spans)


async def test_no_spans_without_tracing(engine: AsyncEngine, app_client: AppClient) -> None:
    app, client = await app_client()
    assert app.state.tracing is None
    response = await client.post(
        "/graphql", json={"query": "{ jobs { totalCount } }"}, headers={"traceparent": TRACEPARENT}
    )
    assert response.status_code == 200
