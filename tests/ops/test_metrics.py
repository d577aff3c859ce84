"""`/metrics` after known traffic: each request, strategy, error code, APQ result, ingest outcome,
refusal and pool checkout counted exactly once, with bounded labels; and the `metrics` scope."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql import metrics
from jobql.resolvers.checkpoints import save_checkpoints
from jobql.schema import execution
from jobql.storage.records import CheckpointRecord
from tests.factories import first_refusal, make_instance, make_job, new_workspace, slot_held
from tests.ops.conftest import AppClient, delta, scrape, token_entry, tokens_json

REQUESTS = "jobql_http_request_duration_seconds_count"
LIST = "query OpsList { instances(first: 2) { nodes { instanceId status } } }"
RECORD = """
mutation OpsRecord($input: [InstanceInput!]!) {
  recordInstances(input: $input) { results { outcome userErrors { code } } }
}
"""


def item(instance_id: int, status: str = "RUNNING", **fields: Any) -> dict[str, Any]:
    return {
        "jobName": "ops_job",
        "instanceId": instance_id,
        "status": status,
        "planTime": "2024-03-04T03:53:00Z",
        **fields,
    }


async def post(
    client: httpx.AsyncClient, query: str | None, workspace: str, **body: Any
) -> httpx.Response:
    payload = {"query": query, **body} if query is not None else body
    return await client.post("/graphql", json=payload, headers={"workspace": workspace})


async def test_reads_are_counted_by_strategy(engine: AsyncEngine, app_client: AppClient) -> None:
    workspace = await new_workspace(engine)
    ws = workspace.name
    await make_instance(engine, await make_job(engine, workspace), vendor_instance_id=1)
    _, compiled = await app_client()
    _, reference = await app_client(read_strategy="reference")
    before = await scrape(compiled)
    # The first run goes through the full pipeline (compiled), the next two the fast lane.
    for _ in range(3):
        assert (await post(compiled, LIST, ws, operationName="OpsList")).status_code == 200
    for _ in range(2):
        assert (await post(reference, LIST, ws)).status_code == 200
    after = await scrape(compiled)

    def requests(strategy: str) -> float:
        return delta(before, after, REQUESTS, route="/graphql", operation="OpsList",
                     strategy=strategy, outcome="success")  # fmt: skip

    assert requests("compiled") == 1
    assert requests("fast_path") == 2
    assert requests("reference") == 2  # no operationName sent: the document names it
    assert delta(before, after, REQUESTS, operation="OpsList") == 5
    seconds = "jobql_http_request_duration_seconds_sum"
    assert delta(before, after, seconds, operation="OpsList", strategy="fast_path") > 0
    # The scrape before this one is itself a request.
    assert delta(before, after, REQUESTS, route="/metrics", operation="none") == 1


async def test_a_fallback_is_counted(
    engine: AsyncEngine, app_client: AppClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = await new_workspace(engine)
    await make_instance(engine, await make_job(engine, workspace), vendor_instance_id=7)
    real = execution.selection.read
    failed = []

    async def failing_once(*args: Any, **kwargs: Any) -> Any:
        if not failed:
            failed.append(True)
            raise DBAPIError("SELECT", {}, sqlite3.OperationalError("malformed JSON"))
        return await real(*args, **kwargs)

    monkeypatch.setattr(execution.selection, "read", failing_once)
    _, client = await app_client()
    before = await scrape(client)
    response = await post(client, "query OpsFallback { instances { nodes { instanceId } } }",
                          workspace.name)  # fmt: skip
    assert response.json()["data"] == {"instances": {"nodes": [{"instanceId": 7}]}}
    after = await scrape(client)
    assert delta(before, after, "jobql_compiled_fallbacks_total", field="instances") == 1
    assert delta(before, after, REQUESTS, operation="OpsFallback", strategy="fallback") == 1


async def test_errors_are_counted_by_code(engine: AsyncEngine, app_client: AppClient) -> None:
    ws = (await new_workspace(engine)).name
    _, client = await app_client()
    before = await scrape(client)
    assert (await post(client, '{ job(name: "missing") { name } }', ws)).status_code == 200
    assert (await post(client, "{ jobs(", ws)).status_code == 200
    assert (await post(client, "{ nope }", ws)).status_code == 200
    broken = await client.post(
        "/graphql", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400
    after = await scrape(client)
    errors = "jobql_graphql_errors_total"
    assert delta(before, after, errors, code="NOT_FOUND") == 1
    assert delta(before, after, errors, code="GRAPHQL_PARSE_FAILED") == 1
    assert delta(before, after, errors, code="GRAPHQL_VALIDATION_FAILED") == 1
    assert delta(before, after, errors, code="BAD_REQUEST") == 1
    assert delta(before, after, errors) == 4
    graphql = {"route": "/graphql", "operation": "anonymous"}
    assert delta(before, after, REQUESTS, **graphql, outcome="graphql_error") == 3
    assert delta(before, after, REQUESTS, **graphql, outcome="client_error") == 1


async def test_stream_errors_are_counted_by_code(
    engine: AsyncEngine, app_client: AppClient
) -> None:
    """/graphql/stream: its JSON refusals before the stream starts, and the errors it streams
    (a document that does not parse, validate or keep within the limits), by code, as
    /graphql's."""
    ws = (await new_workspace(engine)).name
    tokens = tokens_json(
        token_entry("ops-stream", [ws], ["read"]), token_entry("ops-scraper", [], ["metrics"])
    )
    _, client = await app_client(tokens=tokens, max_depth=2, max_body_bytes=2048)
    sse = {"authorization": "Bearer ops-stream", "workspace": ws, "accept": "text/event-stream"}

    async def stream(body: Any = None, **headers: str) -> httpx.Response:
        return await client.post("/graphql/stream", json=body, headers={**sse, **headers})

    async def chunked() -> AsyncIterator[bytes]:  # declares no length: the stream's own 413
        yield b'{"query": "' + b" " * 4096 + b'{ jobs { totalCount } }"}'

    before = await scrape(client, authorization="Bearer ops-scraper")
    refusals = [
        await stream({"query": "{ jobs { totalCount } }"}, accept="application/json"),  # 406
        await client.get("/graphql/stream", headers=sse),  # 405
        await stream([1, 2]),  # 400: not a GraphQL request
        await stream({"query": None}),  # 400: no query
        await stream({"query": "{ jobs { totalCount } }"}, workspace="ops_elsewhere"),  # 403
        await stream({"query": "{ jobs { totalCount } }"}, authorization="Bearer nobody"),  # 401
        await client.post("/graphql/stream", content=chunked(), headers=sse),  # 413
    ]
    assert [r.status_code for r in refusals] == [406, 405, 400, 400, 403, 401, 413]
    streamed = [
        await stream({"query": "{ jobs("}),
        await stream({"query": "{ nope }"}),
        await stream({"query": "subscription { nope }"}),
        await stream({"query": "{ jobs { nodes { instances { nodes { instanceId } } } } }"}),
        await stream({"query": "{ jobs { totalCount } }"}),  # no error
    ]
    assert [r.status_code for r in streamed] == [200] * 5
    codes = [
        [e["extensions"]["code"] for e in json.loads(line.removeprefix("data: "))["errors"]]
        for r in streamed[:4]
        for line in r.text.splitlines()
        if line.startswith("data: {")
    ]
    assert codes == [
        ["GRAPHQL_PARSE_FAILED"],
        ["GRAPHQL_VALIDATION_FAILED"],
        ["GRAPHQL_VALIDATION_FAILED"],
        ["QUERY_TOO_COMPLEX"],
    ]
    after = await scrape(client, authorization="Bearer ops-scraper")
    errors = "jobql_graphql_errors_total"
    assert delta(before, after, errors, code="BAD_REQUEST") == 4
    assert delta(before, after, errors, code="FORBIDDEN") == 1
    assert delta(before, after, errors, code="UNAUTHENTICATED") == 1
    assert delta(before, after, errors, code="PAYLOAD_TOO_LARGE") == 1
    assert delta(before, after, errors, code="GRAPHQL_PARSE_FAILED") == 1
    assert delta(before, after, errors, code="GRAPHQL_VALIDATION_FAILED") == 2
    assert delta(before, after, errors, code="QUERY_TOO_COMPLEX") == 1
    assert delta(before, after, errors) == 11
    stream_requests = {"route": "/graphql/stream"}
    assert delta(before, after, REQUESTS, **stream_requests, outcome="client_error") == 7
    assert delta(before, after, REQUESTS, **stream_requests, outcome="graphql_error") == 4
    assert delta(before, after, REQUESTS, **stream_requests, outcome="success") == 1


async def test_persisted_queries_hits_misses_and_registrations(
    engine: AsyncEngine, app_client: AppClient
) -> None:
    ws = (await new_workspace(engine)).name
    query = "{ jobs(first: 1) { totalCount } }  # ops " + ws
    digest = hashlib.sha256(query.encode()).hexdigest()
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    _, client = await app_client()
    before = await scrape(client)
    miss = await post(client, None, ws, extensions=persisted)
    assert miss.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert "data" in (await post(client, query, ws, extensions=persisted)).json()
    for _ in range(2):  # by the fast lane (the registration taught it): one hit each
        assert "data" in (await post(client, None, ws, extensions=persisted)).json()
    after = await scrape(client)
    apq = "jobql_persisted_queries_total"
    assert delta(before, after, apq, result="miss") == 1
    assert delta(before, after, apq, result="registered") == 1
    assert delta(before, after, apq, result="hit") == 2
    # Anonymous documents sent by hash are labelled with it.
    assert delta(before, after, REQUESTS, operation=digest) == 4
    assert delta(before, after, REQUESTS, operation=digest, strategy="fast_path") == 2


async def test_ingest_outcomes(engine: AsyncEngine, app_client: AppClient) -> None:
    ws = (await new_workspace(engine)).name
    _, client = await app_client()
    at = "2024-03-04T04:00:0{}Z".format
    calls = [
        [item(1, reportedAt=at(2)), item(2, startTime=at(5), endTime=at(4))],
        [item(1, reportedAt=at(2))],
        [item(1, "SUCCESS", reportedAt=at(3))],
        [item(1, "FAIL", reportedAt=at(1))],
    ]
    before = await scrape(client)
    outcomes = []
    for items in calls:
        response = await post(client, RECORD, ws, variables={"input": items})
        for result in response.json()["data"]["recordInstances"]["results"]:
            outcomes.append(result["outcome"] or result["userErrors"][0]["code"])
    after = await scrape(client)
    assert outcomes == ["CREATED", "INVALID_VALUE", "UNCHANGED", "UPDATED", "STALE"]
    for outcome in ("created", "rejected", "unchanged", "updated", "stale"):
        counted = delta(before, after, "jobql_ingest_items_total", kind="instance", outcome=outcome)
        assert counted == 1, outcome
    # Mutations read no root field: no strategy.
    assert delta(before, after, REQUESTS, operation="OpsRecord", strategy="none") == 4


async def test_admission_refusals(engine: AsyncEngine, app_client: AppClient) -> None:
    ws = (await new_workspace(engine)).name
    _, client = await app_client(max_concurrency=1)
    before = await scrape(client)
    headers = {"content-type": "application/json", "workspace": ws}
    async with slot_held(client, headers) as held:
        refused = await first_refusal(
            client, "/graphql?query={__typename}", headers={"workspace": ws}
        )
    assert refused is not None
    assert refused.headers["retry-after"] == "1"
    assert (await held).status_code == 200
    after = await scrape(client)
    assert delta(before, after, "jobql_admission_rejected_total") == 1
    assert delta(before, after, "jobql_graphql_errors_total", code="SERVICE_UNAVAILABLE") == 1
    assert delta(before, after, REQUESTS, route="/graphql", outcome="server_error") == 1


async def test_pool_checkouts_and_connections(engine: AsyncEngine, app_client: AppClient) -> None:
    workspace = await new_workspace(engine)
    await make_instance(engine, await make_job(engine, workspace), vendor_instance_id=3)
    _, client = await app_client()
    assert (await post(client, LIST, workspace.name)).status_code == 200  # learns the document
    before = await scrape(client)
    for _ in range(3):
        assert (await post(client, LIST, workspace.name)).status_code == 200
    after = await scrape(client)
    checkouts = "jobql_db_pool_wait_seconds_count"
    if engine.dialect.name == "postgresql":
        # The fast lane's single statement goes straight to asyncpg's pool.
        assert delta(before, after, checkouts, pool="asyncpg") == 3
        assert after.value("jobql_db_pool_open_connections", pool="asyncpg") >= 1
    else:
        # The three requests and the scrape's read of the collectors; the counter is the
        # process's, so work left running by earlier tests in this process may add to it.
        assert delta(before, after, checkouts, pool="sqlalchemy") >= 3 + 1
    for pool in ("sqlalchemy", "asyncpg"):
        assert delta(before, after, "jobql_db_pool_in_use_connections", pool=pool) == 0
        assert delta(before, after, "jobql_db_pool_timeouts_total", pool=pool) == 0
    assert after.value("jobql_db_pool_max_connections", pool="sqlalchemy") >= 10


async def test_metrics_need_the_metrics_scope(engine: AsyncEngine, app_client: AppClient) -> None:
    ws = (await new_workspace(engine)).name
    tokens = tokens_json(
        token_entry("ops-reader", ["*"], ["read"]),
        token_entry("ops-scraper", [], ["metrics"]),
    )
    _, client = await app_client(tokens=tokens)
    assert (await client.get("/metrics")).status_code == 401
    refused = await client.get("/metrics", headers={"authorization": "Bearer ops-reader"})
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    scraper = {"authorization": "Bearer ops-scraper"}
    assert REQUESTS in (await scrape(client, **scraper)).names()
    # The metrics scope reads counts, never data.
    data = await client.post(
        "/graphql", json={"query": "{ jobs { totalCount } }"}, headers={**scraper, "workspace": ws}
    )
    assert data.status_code == 403
    for path in ("/livez", "/readyz", "/healthz"):
        assert (await client.get(path)).status_code == 200, path


async def test_collector_lag_per_source(engine: AsyncEngine, app_client: AppClient) -> None:
    source = f"ops-dlf-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    await save_checkpoints(
        engine,
        [
            CheckpointRecord(
                source,
                "",  # the source's own row (jobql.collect.checkpoints.SOURCE_SCOPE)
                "dlf",
                high_water=now - timedelta(seconds=90),
                last_success_at=now - timedelta(seconds=30),
            ),
            # A scope of the source (a walk) is no source of its own.
            CheckpointRecord(source, "walk", "dlf", high_water=now - timedelta(days=1)),
        ],
    )
    _, client = await app_client()
    scraped = await scrape(client)
    lag = scraped.value("jobql_collector_lag_seconds", source=source, kind="dlf")
    assert 90 <= lag < 150
    success = scraped.value("jobql_collector_last_success_timestamp_seconds", source=source)
    assert success == pytest.approx((now - timedelta(seconds=30)).timestamp(), abs=0.01)
    assert scraped.value("jobql_collector_last_error_timestamp_seconds", source=source) == 0


async def test_metrics_can_be_switched_off(app_client: AppClient) -> None:
    _, client = await app_client(metrics=False)
    assert (await client.get("/metrics")).status_code == 404


def test_operation_labels_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "MAX_OPERATIONS", 2)
    monkeypatch.setattr(metrics, "_operations", set())
    assert metrics.operation_label(None, None) == "anonymous"
    assert metrics.operation_label("not a name!", None) == "anonymous"
    assert metrics.operation_label("A", None) == "A"
    assert metrics.operation_label(None, {"persistedQuery": {"sha256Hash": "F" * 64}}) == "f" * 64
    assert metrics.operation_label("B", None) == "other"
    assert metrics.operation_label("A", None) == "A"
