"""Subscriptions end to end: npm `graphql-ws` and `graphql-sse` clients against real
`jobql serve` processes, two workers on PostgreSQL, one on SQLite, while 1,000 writes arrive
through mutations and `jobql import`.

Every subscriber of a filter gets exactly the events of the writes that match it, in commit
order per instance; none of another workspace; none of a rolled-back batch; a subscriber whose
connection is cut resumes with its cursor and misses nothing, gets nothing twice; a stalled
subscriber is disconnected while writes and the other subscribers go on; a token without the
workspace, or no valid token, is refused with the protocol's close codes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections import Counter, defaultdict
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import websockets
from sqlalchemy import text

from jobql.storage.engine import create_engine
from tests.conftest import create_postgres_database, drop_postgres_database
from tests.live.conftest import Agent, Server, serve, tokens_config

pytestmark = pytest.mark.e2e
T = TypeVar("T")

EVENTS = """
subscription Events($filter: InstanceFilter, $after: String) {
  instanceEvents(filter: $filter, after: $after) {
    cursor kind status previousStatus
    instance { jobName instanceId status nodes { nodes { name status } } }
  }
}
"""
# The same events with another selection: another group, the same events.
EVENTS_SMALL = """
subscription Small($filter: InstanceFilter) {
  instanceEvents(filter: $filter) { cursor status instance { instanceId } }
}
"""
BIG = """
subscription Big($filter: InstanceFilter) {
  instanceEvents(filter: $filter) { cursor instance { instanceId runtime { code } } }
}
"""
WATCH = """
subscription Watch($job: String!, $id: Long!) {
  instance(jobName: $job, instanceId: $id) { instanceId status nodes { nodes { name status } } }
}
"""
RECORD = """
mutation Record($input: [InstanceInput!]!) {
  recordInstances(input: $input) { results { outcome userErrors { message } } }
}
"""
WRITERS = 4
PER_WRITER = 25
IMPORTED = 200
# A write of this instance id trips a trigger after its event row is written: rolled back.
ROLLBACK_ID = 999_999
QUEUE_SIZE = 200


def _in_thread(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` to its end from a synchronous fixture. In a thread of its own: asyncio.run
    in the main thread would leave it without an event loop, which later tests' loaders ask for."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _install_rollback_trigger(database_url: str) -> None:
    async def run() -> None:
        engine = create_engine(database_url)
        try:
            async with engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    await connection.execute(
                        text(
                            "CREATE FUNCTION refuse_event() RETURNS trigger AS $$ BEGIN "
                            "RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql"
                        )
                    )
                    await connection.execute(
                        text(
                            "CREATE TRIGGER refuse BEFORE INSERT ON instance_event FOR EACH ROW "
                            f"WHEN (NEW.vendor_instance_id = {ROLLBACK_ID}) "
                            "EXECUTE FUNCTION refuse_event()"
                        )
                    )
                else:
                    await connection.execute(
                        text(
                            "CREATE TRIGGER refuse BEFORE INSERT ON instance_event "
                            f"WHEN NEW.vendor_instance_id = {ROLLBACK_ID} "
                            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                        )
                    )
        finally:
            await engine.dispose()

    _in_thread(run())


def _migrate(database_url: str) -> None:
    from jobql.storage import migrate

    async def run() -> None:
        engine = create_engine(database_url)
        try:
            await migrate.upgrade(engine)
        finally:
            await engine.dispose()

    _in_thread(run())


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp(f"live_{request.param}")
    env = {
        "JOBQL_TOKENS": tokens_config(),
        "JOBQL_LIVE_QUEUE_SIZE": str(QUEUE_SIZE),
        "JOBQL_LIVE_POLL_INTERVAL": "0.5",
        "JOBQL_LOG_LEVEL": "warning",
    }
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir / 'live.db'}"
        _migrate(url)
        _install_rollback_trigger(url)
        with serve(workdir, url, workers=1, **env) as running:
            yield running
        return
    name, engine = _in_thread(_new_postgres())
    url = engine.url.render_as_string(hide_password=False)
    try:
        _migrate(url)
        _install_rollback_trigger(url)
        with serve(workdir, url, workers=2, **env) as running:
            yield running
    finally:
        _in_thread(drop_postgres_database(name))


async def _new_postgres() -> tuple[str, Any]:
    name, engine = await create_postgres_database()
    await engine.dispose()
    return name, engine


def _auth(token: str, workspace: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "workspace": workspace}


def _item(
    job: str, instance_id: int, status: str, *, at: int, nodes: list[tuple[str, str]] | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "jobName": job,
        "instanceId": instance_id,
        "status": status,
        "planTime": "2026-01-01T00:00:00Z",
        "reportedAt": f"2026-01-01T00:{at // 60:02d}:{at % 60:02d}Z",
    }
    if nodes is not None:
        item["nodes"] = [{"name": n, "type": "SQL", "status": s} for n, s in nodes]
    return item


class Writes:
    """What was written, and so which events each filter must see, per instance in order."""

    def __init__(self) -> None:
        self.events: dict[tuple[str, str, int], list[str]] = defaultdict(list)
        self.items = 0

    def expect(self, workspace: str, job: str, instance_id: int, status: str) -> None:
        self.events[(workspace, job, instance_id)].append(status)

    def of(self, workspace: str, job: str | None = None) -> dict[int, list[str]]:
        return {
            key[2]: statuses
            for key, statuses in self.events.items()
            if key[0] == workspace and (job is None or key[1] == job)
        }

    def count(self, workspace: str, job: str | None = None) -> int:
        return sum(len(v) for v in self.of(workspace, job).values())


async def _record(
    http: httpx.AsyncClient, workspace: str, items: list[dict[str, Any]]
) -> list[str]:
    response = await http.post(
        "/graphql",
        json={"query": RECORD, "variables": {"input": items}},
        headers={"workspace": workspace},
    )
    body = response.json()
    assert "errors" not in body, body
    return [r["outcome"] for r in body["data"]["recordInstances"]["results"]]


async def _writer(http: httpx.AsyncClient, writes: Writes, number: int) -> None:
    """One writer's instances of live_a, round by round: created, running, nodes changed, the
    same again (UNCHANGED), an older report (STALE), finished."""
    ids = [number * 100 + i for i in range(1, PER_WRITER + 1)]
    rounds: list[tuple[list[dict[str, Any]], str | None]] = [
        ([_item("live_a", i, "WAITING", at=1) for i in ids], "CREATED"),
        ([_item("live_a", i, "RUNNING", at=2, nodes=[("n1", "RUNNING")]) for i in ids], "UPDATED"),
        (
            [
                _item("live_a", i, "RUNNING", at=3, nodes=[("n1", "SUCCESS"), ("n2", "RUNNING")])
                for i in ids
            ],
            "UPDATED",
        ),
        (
            [
                _item("live_a", i, "RUNNING", at=3, nodes=[("n1", "SUCCESS"), ("n2", "RUNNING")])
                for i in ids
            ],
            "UNCHANGED",
        ),
        ([_item("live_a", i, "FAIL", at=0) for i in ids], "STALE"),
        ([_item("live_a", i, "SUCCESS" if i % 2 else "FAIL", at=4) for i in ids], "UPDATED"),
    ]
    for items, outcome in rounds:
        outcomes = await _record(http, "ws1", items)
        assert set(outcomes) == {outcome}, outcomes
        writes.items += len(items)
        if outcome in ("CREATED", "UPDATED"):
            for item in items:
                writes.expect("ws1", "live_a", item["instanceId"], item["status"])


def _import_file(path: Path, status: str) -> None:
    path.write_text(
        json.dumps(
            {
                "total": IMPORTED,
                "instances": [
                    {
                        "jobName": "live_a",
                        "instanceId": 10_000 + i,
                        "planTime": 1767225600000,
                        "status": status
                        if status == "running"
                        else ("success" if i % 2 else "fail"),
                    }
                    for i in range(IMPORTED)
                ],
            }
        )
    )


def _event_id(cursor: str) -> int:
    text_ = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))[:-8].decode()
    return int(text_.split(":")[3])


def _check(received: list[dict[str, Any]], expected: dict[int, list[str]]) -> None:
    """Exactly the expected events: per instance in write order, none twice, ids rising."""
    events = [m["payload"]["data"]["instanceEvents"] for m in received]
    ids = [_event_id(e["cursor"]) for e in events]
    assert ids == sorted(ids), "events out of commit order"
    assert len(set(ids)) == len(ids), "an event twice"
    got: dict[int, list[str]] = defaultdict(list)
    for event in events:
        got[event["instance"]["instanceId"]].append(event["status"])
    assert dict(got) == expected
    kinds = Counter(e["kind"] for e in events)
    assert kinds["CREATED"] == len(expected)


async def test_every_subscriber_gets_exactly_its_events(
    server: Server, agent: Agent, tmp_path: Path
) -> None:
    ws = server.ws_url
    reader, other = _auth("ws1-reader", "ws1"), _auth("ws2-reader", "ws2")
    live_a = {"filter": {"jobName": "live_a"}}
    for client in ("a1", "a2", "fail", "small", "k", "watch"):
        await agent.connect(client, ws, **reader)
    await agent.connect("w2", ws, **other)
    await agent.connect("foreign", ws, **_auth("ws2-reader", "ws1"))
    await agent.connect("nobody", ws, **_auth("not-a-token", "ws1"))
    await agent.wait(
        lambda: len([m for m in agent.seen if m["ev"] == "connected"]) >= 7,
        what="seven connections",
    )
    await agent.wait(
        lambda: bool(agent.closed("foreign")) and bool(agent.closed("nobody")), what="refusals"
    )
    assert agent.closed("foreign")[0]["code"] == 4403
    assert agent.closed("nobody")[0]["code"] == 4401

    await agent.subscribe("a1", "a1", EVENTS, live_a)
    await agent.subscribe("a2", "a2", EVENTS, live_a)
    await agent.subscribe("k", "k", EVENTS, live_a)
    await agent.subscribe("fail", "fail", EVENTS, {"filter": {"statuses": ["FAIL"]}})
    await agent.subscribe("small", "small", EVENTS_SMALL, live_a)
    await agent.subscribe("w2", "w2", EVENTS, {})
    await agent.subscribe("watch", "watch", WATCH, {"job": "live_a", "id": 101})
    # The same over Server-Sent Events (graphql-sse, distinct connections).
    stream = server.url + "/graphql/stream"
    await agent.send(
        cmd="sse",
        client="sse",
        url=stream,
        headers={"authorization": "Bearer ws1-reader", "workspace": "ws1"},
    )
    await agent.subscribe("sse", "sse", EVENTS, live_a)
    await agent.send(
        cmd="sse",
        client="sse-foreign",
        url=stream,
        headers={"authorization": "Bearer ws2-reader", "workspace": "ws1"},
    )
    await agent.subscribe("sse-foreign", "sse-foreign", EVENTS, live_a)
    await agent.wait(lambda: bool(agent.of("sse-foreign", "error")), what="sse refusal")
    assert "403" in agent.of("sse-foreign", "error")[0]["errors"][0]["message"]
    await agent.wait(lambda: bool(agent.of("watch")), what="the watched instance")
    assert agent.of("watch")[0]["payload"]["data"] == {"instance": None}
    await asyncio.sleep(0.5)  # every subscription has joined before the first write

    writes = Writes()
    async with httpx.AsyncClient(
        base_url=server.url, headers={"authorization": "Bearer writer-secret"}, timeout=60
    ) as http:

        async def cut_and_resume() -> None:
            await agent.wait(lambda: len(agent.of("k")) >= 100, within=60, what="k's events")
            await agent.send(cmd="terminate", client="k")
            await agent.wait(lambda: bool(agent.closed("k")), what="k cut")
            last = agent.of("k")[-1]["payload"]["data"]["instanceEvents"]["cursor"]
            await agent.connect("k2", ws, **reader)
            await agent.subscribe("k2", "k2", EVENTS, {**live_a, "after": last})

        resumed = asyncio.create_task(cut_and_resume())
        # Concurrent writers, each with its own instances (so each instance's order is known).
        await asyncio.gather(*(_writer(http, writes, n) for n in range(1, WRITERS + 1)))
        # Another workspace, the same job names and instance ids.
        outcomes = await _record(
            http, "ws2", [_item("live_a", i, "RUNNING", at=1) for i in range(1, 21)]
        )
        assert outcomes == ["CREATED"] * 20
        for i in range(1, 21):
            writes.expect("ws2", "live_a", i, "RUNNING")
        # Another job of ws1: only the FAIL filter sees its failures.
        outcomes = await _record(
            http, "ws1", [_item("live_b", i, "FAIL", at=1) for i in range(1, 11)]
        )
        for i in range(1, 11):
            writes.expect("ws1", "live_b", i, "FAIL")
        # A batch that rolls back: none of its events is ever delivered.
        refused = await http.post(
            "/graphql",
            json={
                "query": RECORD,
                "variables": {
                    "input": [
                        _item("live_a", 5_000, "FAIL", at=1),
                        _item("live_a", ROLLBACK_ID, "FAIL", at=1),
                    ]
                },
            },
            headers={"workspace": "ws1"},
        )
        assert refused.json()["errors"][0]["extensions"]["code"] == "INTERNAL"
        writes.items += 50
        await resumed

    # jobql import, in another process: creates, then finishes 200 instances.
    for status in ("running", "done"):
        path = tmp_path / f"import-{status}.json"
        _import_file(path, status)
        run = server.jobql("import", "--workspace", "ws1", str(path))
        assert run.returncode == 0, run.stderr + run.stdout
        assert ("200 created" if status == "running" else "200 updated") in run.stdout
        writes.items += IMPORTED
        for i in range(IMPORTED):
            final = "RUNNING" if status == "running" else ("SUCCESS" if i % 2 else "FAIL")
            writes.expect("ws1", "live_a", 10_000 + i, final)
    assert writes.items >= 1_000

    expected_a = writes.of("ws1", "live_a")
    total_a = writes.count("ws1", "live_a")
    expected_fail = {
        i: [s for s in statuses if s == "FAIL"]
        for i, statuses in writes.of("ws1").items()
        if "FAIL" in statuses
    }
    for sub, count in (
        ("a1", total_a),
        ("a2", total_a),
        ("sse", total_a),
        ("small", total_a),
        ("w2", 20),
        ("fail", sum(len(v) for v in expected_fail.values())),
    ):
        await agent.wait(lambda s=sub, c=count: len(agent.of(s)) >= c, within=60, what=sub)
    await agent.wait(
        lambda: len(agent.of("k")) + len(agent.of("k2")) >= total_a, within=60, what="k2"
    )
    await asyncio.sleep(1.0)  # anything more would arrive now

    _check(agent.of("a1"), expected_a)
    _check(agent.of("a2"), expected_a)
    _check(agent.of("sse"), expected_a)
    assert not agent.of("sse", "error")
    assert not agent.of("sse-foreign")
    _check(agent.of("k") + agent.of("k2"), expected_a)
    _check(agent.of("w2"), writes.of("ws2"))
    assert len(agent.of("fail")) == sum(len(v) for v in expected_fail.values())
    # Live_b FAIL instances share ids with live_a ones: check by (job, id).
    failed = Counter(
        (e["instance"]["jobName"], e["instance"]["instanceId"])
        for e in (m["payload"]["data"]["instanceEvents"] for m in agent.of("fail"))
    )
    assert failed == Counter(
        {
            (key[1], key[2]): statuses.count("FAIL")
            for key, statuses in writes.events.items()
            if key[0] == "ws1" and "FAIL" in statuses
        }
    )
    small = [m["payload"]["data"]["instanceEvents"] for m in agent.of("small")]
    assert [e["cursor"] for e in small] == [
        m["payload"]["data"]["instanceEvents"]["cursor"] for m in agent.of("a1")
    ]
    first = agent.of("a1")[0]["payload"]["data"]["instanceEvents"]
    assert (first["kind"], first["previousStatus"]) == ("CREATED", None)
    # The watched instance: null, then after each of its four changes.
    watched = [m["payload"]["data"]["instance"] for m in agent.of("watch")]
    assert watched[-1] == {
        "instanceId": 101,
        "status": "SUCCESS",
        "nodes": {
            "nodes": [{"name": "n1", "status": "SUCCESS"}, {"name": "n2", "status": "RUNNING"}]
        },
    }
    assert 2 <= len(watched) <= 5
    for client in ("a1", "a2", "fail", "small", "w2", "watch", "k2"):
        assert not agent.closed(client), client
    if server.database_url.startswith("postgresql"):
        assert await _listeners(server.database_url) == 2  # one per worker


async def _listeners(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return int(
                await connection.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND query LIKE 'LISTEN%'"
                    )
                )
                or 0
            )
    finally:
        await engine.dispose()


async def test_a_stalled_subscriber_is_disconnected_and_nothing_else_waits(
    server: Server, agent: Agent
) -> None:
    reader = _auth("ws1-reader", "ws1")
    big = {"filter": {"jobName": "live_big"}}
    await agent.connect("stalled", server.ws_url, **reader)
    await agent.connect("steady", server.ws_url, **reader)
    await agent.wait(
        lambda: len([m for m in agent.seen if m["ev"] == "connected"]) >= 2, what="connected"
    )
    await agent.subscribe("stalled", "stalled", BIG, big)
    await agent.subscribe("steady", "steady", EVENTS_SMALL, big)
    await asyncio.sleep(0.5)
    await agent.send(cmd="pause", client="stalled")
    await agent.wait(lambda: any(m["ev"] == "paused" for m in agent.seen), what="paused")
    count, per_call = 600, 20
    async with httpx.AsyncClient(
        base_url=server.url, headers={"authorization": "Bearer writer-secret"}, timeout=60
    ) as http:
        for start in range(0, count, per_call):
            items = [
                {
                    **_item("live_big", i, "RUNNING", at=1),
                    # Incompressible, so that it fills the socket's buffers.
                    "runtime": {"code": secrets.token_urlsafe(30_000)},
                }
                for i in range(start, start + per_call)
            ]
            assert await _record(http, "ws1", items) == ["CREATED"] * per_call
    await agent.wait(lambda: len(agent.of("steady")) >= count, within=60, what="steady")
    await agent.send(cmd="resume", client="stalled")
    await agent.wait(lambda: bool(agent.closed("stalled")), within=60, what="stalled closed")
    closed = agent.closed("stalled")[0]
    assert closed["code"] in (4013, 1006), closed
    assert len(agent.of("stalled")) < count
    assert not agent.closed("steady")


async def _extensions(server: Server) -> str | None:
    """The WebSocket extensions the server accepted of a client offering permessage-deflate
    (as browsers and Node's ws do)."""
    async with websockets.connect(
        server.ws_url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    ) as socket:
        assert socket.response is not None
        return socket.response.headers.get("Sec-WebSocket-Extensions")


def test_no_compression_unless_configured(server: Server, tmp_path: Path) -> None:
    """Compressing each small message costs more CPU than it saves: off by default, even when
    the client offers it; JOBQL_LIVE_COMPRESSION=true turns it on."""
    assert asyncio.run(_extensions(server)) is None
    url = f"sqlite+aiosqlite:///{tmp_path / 'deflate.db'}"
    _migrate(url)
    with serve(tmp_path, url, workers=1, JOBQL_LIVE_COMPRESSION="true") as compressing:
        assert "permessage-deflate" in (asyncio.run(_extensions(compressing)) or "")
