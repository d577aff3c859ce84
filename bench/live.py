"""Live data under load: subscribers on `jobql serve --workers 2` while writes arrive.

    python -m bench.live [--subscribers 100,1000] [--documents 100] [--rate 100] [--seconds 20]
                         [--workers 2] [--postgres-url URL] [--quick] [--top N]

Not a timed test: it prints one table. On a private PostgreSQL cluster (as `python -m bench`
starts one, with pg_stat_statements) or a scratch database on `--postgres-url`:

1. W1 alone: req/s of the dashboard query (16 concurrent clients), the baseline.
2. Writes alone (`--rate` recordInstances of one instance per second): the statements writing
   costs, to subtract.
3. For each subscriber count: that many graphql-transport-ws subscriptions (`--documents`
   distinct document x variables pairs, 10 per connection) while the same writes arrive:
   commit-to-delivery latency p50/p99 (the event's `at`, written in the writing transaction, to
   its arrival), server CPU per delivered event, database statements per event batch (beside
   the writes', per write as measured in 2; batches = the brokers' reads of the log: the groups'
   reads per batch; goal: independent of the subscribers, bounded by the distinct documents).
4. W1 again, while the largest subscriber count is served and the writes arrive.

`--top N` prints, after the table, each phase's N statements of most database time
(pg_stat_statements with planning tracked: calls, planning and execution ms per call, rows per
call): where a phase's database time went, to compare two builds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from bench import procs
from bench.data import create_scratch, drop_database
from bench.measure import PgStats
from bench.pgcluster import ClusterError, PrivateCluster
from jobql.storage import migrate
from jobql.storage.engine import create_engine

JOBS = 10
SELECTIONS = [
    "cursor at status",
    "cursor at kind status instance { instanceId }",
    "cursor at instance { instanceId status jobName }",
    "cursor at instance { instanceId status nodes(first: 5) { nodes { name status } } }",
    "cursor at previousStatus instance { planTime startTime }",
    "cursor at instance { id durationMs }",
    "cursor at kind instance { instanceType forceSuccess }",
    "cursor at status instance { job { name type } }",
    "cursor at instance { instanceId nodes(first: 2) { totalCount } }",
    "cursor at kind previousStatus status",
]
RECORD = """
mutation($input: [InstanceInput!]!) {
  recordInstances(input: $input) { results { outcome } }
}
"""
W1 = (Path(__file__).parent / "queries" / "W1.graphql").read_text()
PER_CONNECTION = 10


@dataclass
class Phase:
    name: str
    subscribers: int = 0
    delivered: int = 0
    errors: int = 0
    written: int = 0
    latencies: list[float] = field(default_factory=list)
    cpu: float = 0.0
    statements: int | None = None
    top: list[tuple[str, int, float, float, float]] = field(default_factory=list)
    batches: int | None = None
    w1: float | None = None
    expected: int = 0
    closed: int = 0
    w1_failed: int = 0


def _document(number: int) -> tuple[str, dict[str, Any]]:
    selection = SELECTIONS[number % len(SELECTIONS)]
    job = f"live_{(number // len(SELECTIONS)) % JOBS}"
    query = (
        f"subscription S{number}($filter: InstanceFilter) "
        f"{{ instanceEvents(filter: $filter) {{ {selection} }} }}"
    )
    return query, {"filter": {"jobName": job}}


CLIENT = Path(__file__).parent / "live_client.mjs"


class Subscribers:
    """One Node process of graphql-ws clients (bench/live_client.mjs): the subscribers' own CPU
    is spent outside the writer's process, and cheaply."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, url: str, numbers: list[int]) -> Subscribers:
        process = await asyncio.create_subprocess_exec(
            "node",
            str(CLIENT),
            url,
            str(PER_CONNECTION),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 28,  # the last line lists every latency
        )
        assert process.stdin is not None
        assert process.stdout is not None
        documents = [
            {"query": query, "variables": variables} for query, variables in map(_document, numbers)
        ]
        process.stdin.write(json.dumps(documents).encode() + b"\n")
        await process.stdin.drain()
        line = await process.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError(f"subscriber process did not start: {line!r}")
        return cls(process)

    async def stop(self) -> tuple[int, int, list[float]]:
        """(errors, connections the server closed, latencies in seconds)."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(b"stop\n")
        await self.process.stdin.drain()
        received = json.loads(await self.process.stdout.readline())
        await self.process.wait()
        return received["errors"], received["closed"], received["latencies"]


async def _writes(
    base: str, rate: int, seconds: float, first_id: int, batch: int = 1, senders: int = 16
) -> int:
    """`rate` instances a second for `seconds`, `batch` per recordInstances, sent on schedule by
    `senders` concurrent clients (httpx slows down with hundreds of requests in flight); returns
    the instances written."""
    queue: asyncio.Queue[list[dict[str, Any]] | None] = asyncio.Queue()
    written = 0

    async def sender(http: httpx.AsyncClient) -> None:
        nonlocal written
        while (items := await queue.get()) is not None:
            response = await http.post(
                "/graphql", json={"query": RECORD, "variables": {"input": items}}
            )
            assert response.status_code == 200, response.text[:300]
            written += len(items)

    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        tasks = [asyncio.create_task(sender(http)) for _ in range(senders)]
        interval = batch / rate
        start = time.monotonic()
        n = sent = 0
        while time.monotonic() - start < seconds:
            items = []
            for _ in range(batch):
                items.append(
                    {
                        "jobName": f"live_{n % JOBS}",
                        "instanceId": first_id + n,
                        "status": "RUNNING",
                        "planTime": "2026-01-01T00:00:00Z",
                        "nodes": [{"name": "extract", "type": "SQL", "status": "RUNNING"}],
                    }
                )
                n += 1
            queue.put_nowait(items)
            sent += 1
            await asyncio.sleep(max(0.0, start + sent * interval - time.monotonic()))
        for _ in tasks:
            queue.put_nowait(None)
        await asyncio.gather(*tasks)
    return written


async def _w1(base: str, seconds: float, clients: int = 16) -> tuple[float, int]:
    """(answers per second, of the requests those that failed)."""
    done = failed = 0
    deadline = time.monotonic() + seconds
    body = {"query": W1, "variables": {"statuses": ["FAIL", "SUCCESS"]}}
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:

        async def client() -> None:
            nonlocal done, failed
            while time.monotonic() < deadline:
                response = await http.post("/graphql", json=body)
                done += 1
                if response.status_code != 200 or "errors" in response.json():
                    failed += 1

        await asyncio.gather(*(client() for _ in range(clients)))
    return (done - failed) / seconds, failed


async def _until_subscribed(base: str, count: int, within: float = 60.0) -> None:
    """Until the workers run `count` subscriptions (jobql_subscriptions_active, summed over the
    workers): a graphql-ws client hears no answer to its subscribe message, and a subscription
    the server has not taken yet when the writes start misses their first events. A cold
    server takes its first hundred in more than the second the client waited."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        while time.monotonic() < deadline:
            text = (await http.get("/metrics")).text
            active = sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("jobql_subscriptions_active")
            )
            if active >= count:
                return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the server took fewer than {count} subscriptions in {within:g} s")


_PHASES = iter(range(1, 1_000))


def _next_ids() -> int:
    return 1_000_000 * next(_PHASES)


TOP = """
SELECT query, calls, total_plan_time / calls, total_exec_time / calls, rows::float8 / calls
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND calls > 0
ORDER BY total_plan_time + total_exec_time DESC
LIMIT $1
"""


def _top(stats: PgStats, count: int) -> list[tuple[str, int, float, float, float]]:
    """The `count` statements of most planning + execution time since the last reset."""
    if not stats.enabled or count <= 0:
        return []
    rows = stats.loop.run_until_complete(stats.connection.fetch(TOP, count))
    return [(" ".join(row[0].split()), row[1], row[2], row[3], row[4]) for row in rows]


def _top_table(phases: list[Phase]) -> str:
    lines: list[str] = []
    for phase in phases:
        if not phase.top:
            continue
        lines += [
            "",
            f"## {phase.name}: statements of most database time",
            "",
            "| calls | plan ms / call | exec ms / call | rows / call | statement |",
            "| ---: | ---: | ---: | ---: | --- |",
        ]
        for query, calls, plan, execute, rows in phase.top:
            shown = query if len(query) <= 160 else query[:157] + "..."
            shown = shown.replace("|", "\\|")
            lines.append(f"| {calls:,} | {plan:.3f} | {execute:.3f} | {rows:.1f} | `{shown}` |")
    return "\n".join(lines)


def _broker_reads(stats: PgStats) -> int | None:
    if not stats.enabled:
        return None
    return int(
        stats.loop.run_until_complete(
            stats.connection.fetchval(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                "WHERE query LIKE '%FROM instance_event JOIN workspace%'"
            )
        )
    )


async def _phase(
    server: procs.Server,
    stats: PgStats,
    name: str,
    *,
    subscribers: int,
    documents: int,
    rate: int,
    seconds: float,
    clients: int,
    batch: int,
    with_w1: bool = False,
    top: int = 0,
) -> Phase:
    phase = Phase(name, subscribers)
    url = server.url.replace("http://", "ws://") + "/graphql"
    numbers = [i % documents for i in range(subscribers)]
    groups = [
        await Subscribers.start(url, part)
        for part in (numbers[i::clients] for i in range(clients))
        if part
    ]
    await _until_subscribed(server.url, subscribers)
    await asyncio.sleep(1.0)
    # PgStats runs its own event loop: from a thread, beside this one.
    await asyncio.to_thread(stats.reset)
    cpu = procs.cpu_seconds(server.pid())
    # New instances in every phase: a write that changes nothing makes no event.
    writes = asyncio.create_task(_writes(server.url, rate, seconds, _next_ids(), batch))
    load = asyncio.create_task(_w1(server.url, seconds)) if with_w1 else None
    phase.written = await writes
    if load is not None:
        phase.w1, phase.w1_failed = await load
    await asyncio.sleep(2.0)  # the last deliveries
    phase.cpu = procs.cpu_seconds(server.pid()) - cpu
    counted = await asyncio.to_thread(stats.statements)
    phase.statements = None if counted is None else counted[0] - counted[1]
    phase.batches = await asyncio.to_thread(_broker_reads, stats)
    phase.top = await asyncio.to_thread(_top, stats, top)
    for group in groups:
        errors, closed, latencies = await group.stop()
        phase.errors += errors
        phase.closed += closed
        phase.latencies.extend(latencies)
    phase.delivered = len(phase.latencies)
    # Every subscriber of a document whose job the write named gets its event.
    per_job = Counter(
        int(_document(number)[1]["filter"]["jobName"].split("_")[1]) for number in numbers
    )
    phase.expected = sum(per_job[n % JOBS] for n in range(phase.written))
    return phase


def _table(phases: list[Phase], baseline_w1: float, writes_alone: Phase, args: Any) -> str:
    lines = [
        f"# jobql live benchmark ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"{args.workers} workers; {args.rate} instances written a second in recordInstances of "
        f"{args.batch}; {args.documents} distinct documents over {JOBS} jobs (each write matches "
        f"the documents of its job); {args.seconds:g} s phases; subscribers in {args.clients} "
        "Node process(es) of graphql-ws clients.",
        "",
        "| phase | subscribers | writes | delivered / expected (errors, closed) | p50 ms | p99 ms "
        "| server CPU ms / delivered event | group statements / batch | W1 req/s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| W1 alone | 0 | - | - | - | - | - | - | {baseline_w1:.0f} |",
    ]
    # The writes' own statements, per write: those of the writes-alone phase, less the brokers'
    # reads of the log (a broker reads it after each commit it hears of, followers or not).
    base_statements = (
        (writes_alone.statements - (writes_alone.batches or 0)) / writes_alone.written
        if writes_alone.statements is not None and writes_alone.written
        else None
    )
    for phase in phases:
        p50 = p99 = "-"
        if phase.latencies:
            ordered = sorted(phase.latencies)
            p50 = f"{statistics.median(ordered) * 1000:.0f}"
            p99 = f"{ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000:.0f}"
        per_event = f"{phase.cpu * 1000 / phase.delivered:.3f}" if phase.delivered else "-"
        per_batch = "n/a (no pg_stat_statements)"
        if phase.w1 is not None:
            per_batch = "- (W1's own)"
        elif phase.statements is not None and base_statements is not None and phase.batches:
            groups = phase.statements - base_statements * phase.written - phase.batches
            per_batch = f"{groups / phase.batches:.2f} ({phase.batches} batches)"
        w1 = "-"
        if phase.w1 is not None:
            w1 = f"{phase.w1:.0f}" + (f" ({phase.w1_failed} failed)" if phase.w1_failed else "")
        lines.append(
            f"| {phase.name} | {phase.subscribers} | {phase.written} "
            f"| {phase.delivered} / {phase.expected} ({phase.errors}, {phase.closed}) "
            f"| {p50} | {p99} "
            f"| {per_event} | {per_batch} | {w1} |"
        )
    return "\n".join(lines)


async def _prepare(url: str, instances: int) -> None:
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()
    run = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jobql",
        "seed",
        "--instances",
        str(instances),
        env={**os.environ, "JOBQL_DATABASE_URL": url},
        stdout=asyncio.subprocess.DEVNULL,
    )
    assert await run.wait() == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.live", description=__doc__)
    parser.add_argument("--subscribers", default="100,1000")
    parser.add_argument("--documents", type=int, default=100)
    parser.add_argument("--rate", type=int, default=100, help="instances written a second")
    parser.add_argument(
        "--batch", type=int, default=1, help="instances per recordInstances (1: one write each)"
    )
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--clients", type=int, default=1, help="Node processes the subscribers are spread over"
    )
    parser.add_argument("--instances", type=int, default=20_000)
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--quick", action="store_true", help="5 s phases, 2,000 instances")
    parser.add_argument(
        "--top", type=int, default=0, help="print each phase's N statements of most database time"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.instances = 5.0, 2_000
    counts = [int(n) for n in args.subscribers.split(",")]
    procs.install_handlers()
    cluster = None
    admin = args.postgres_url
    postmaster = None
    if admin is None:
        try:
            cluster = PrivateCluster()
        except ClusterError as exc:
            print(exc, file=sys.stderr)
            return 2
        cluster.start()
        admin = cluster.url_base + "/postgres"
        postmaster = cluster.postmaster_pid()
    name, url = asyncio.run(create_scratch(admin, "jobql_live_bench"))
    try:
        asyncio.run(_prepare(url, args.instances))
        if cluster is not None:
            asyncio.run(_enable_statements(url))
        log_dir = Path(os.environ.get("TMPDIR", "/tmp"))
        server = procs.Server(
            "jobql-live",
            [
                sys.executable,
                "-m",
                "jobql",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(procs.free_port()),
                "--workers",
                str(args.workers),
            ],
            {**os.environ, "JOBQL_DATABASE_URL": url, "JOBQL_LOG_LEVEL": "warning"},
            0,
            log_dir,
        )
        server.port = int(server.argv[server.argv.index("--port") + 1])
        server.start()
        stats = PgStats(url.replace("postgresql+asyncpg", "postgresql"), postmaster)
        try:
            baseline, _ = asyncio.run(_w1(server.url, args.seconds))
            alone = asyncio.run(
                _phase(
                    server,
                    stats,
                    "writes alone",
                    subscribers=0,
                    documents=1,
                    rate=args.rate,
                    seconds=args.seconds,
                    clients=args.clients,
                    batch=args.batch,
                    top=args.top,
                )
            )
            phases = [alone]
            for count in counts:
                phases.append(
                    asyncio.run(
                        _phase(
                            server,
                            stats,
                            f"{count} subscribers",
                            subscribers=count,
                            documents=args.documents,
                            rate=args.rate,
                            seconds=args.seconds,
                            clients=args.clients,
                            batch=args.batch,
                            top=args.top,
                        )
                    )
                )
            phases.append(
                asyncio.run(
                    _phase(
                        server,
                        stats,
                        f"{counts[-1]} subscribers + W1",
                        subscribers=counts[-1],
                        documents=args.documents,
                        rate=args.rate,
                        seconds=args.seconds,
                        clients=args.clients,
                        batch=args.batch,
                        with_w1=True,
                        top=args.top,
                    )
                )
            )
        finally:
            stats.close()
            server.stop()
        print(_table(phases, baseline, alone, args) + _top_table(phases))
    finally:
        asyncio.run(drop_database(admin, name))
        if cluster is not None:
            cluster.stop()
    return 0


async def _enable_statements(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
            # --top's planning times; a superuser setting, for the server's new connections
            name = connection.engine.url.database
            await connection.execute(
                text(f'ALTER DATABASE "{name}" SET pg_stat_statements.track_planning = on')
            )
    finally:
        await engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
