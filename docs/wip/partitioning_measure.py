"""Database CPU per execution of each workload's compiled statement, main vs a branch.

Not part of jobql: the measurement behind docs/wip/partitioning.md, kept so that a later session
can run it again. Two steps:

1. With each tree's code (PYTHONPATH), record the statements its compiled strategy sends to
   asyncpg for the benchmark's cases (W1-W5, the bench's variables, the warm second request):

       PYTHONPATH=<tree> python docs/wip/partitioning_measure.py capture URL OUT.pkl

   URL: a database seeded like the quick benchmark (bench.data.postgres_database(base, name,
   20000, reuse=True) with that tree's code, on a private cluster: bench/pgcluster.py).

2. Run them, alternating main's and the branch's connections round by round, and print the
   medians (min-max) of the backend's CPU per execution from /proc/<pid>/schedstat (the
   cluster must run on this machine):

       python docs/wip/partitioning_measure.py compare MAIN_URL MAIN.pkl BRANCH_URL BRANCH.pkl

   `explain` prints EXPLAIN (ANALYZE, BUFFERS) of one case's statement under a plan cache mode
   (force_generic_plan: what asyncpg's cached statements run after five executions).
"""

from __future__ import annotations

import asyncio
import pickle
import statistics
import sys
from typing import Any

import asyncpg


async def capture(url: str) -> dict[str, Any]:
    import httpx

    from bench import workloads
    from jobql.app import create_app
    from jobql.settings import Settings

    log: list[tuple[str, str, tuple[Any, ...]]] = []
    fetch, execute = asyncpg.connection.Connection.fetch, asyncpg.connection.Connection.execute

    async def fetch_logged(self: Any, sql: str, *args: Any, **kw: Any) -> Any:
        log.append(("fetch", sql, args))
        return await fetch(self, sql, *args, **kw)

    async def execute_logged(self: Any, sql: str, *args: Any, **kw: Any) -> Any:
        log.append(("execute", sql, args))
        return await execute(self, sql, *args, **kw)

    asyncpg.connection.Connection.fetch = fetch_logged  # type: ignore[method-assign]
    asyncpg.connection.Connection.execute = execute_logged  # type: ignore[method-assign]
    parameters = await workloads._parameters(url)
    app = create_app(Settings(database_url=url, read_strategy="compiled", metrics=False))
    recorded = {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://jobql") as http:
        for case in workloads.cases(parameters):
            if case.name == "W7":
                continue
            body = {"query": workloads.document(case.workload), "variables": case.variables}
            for _ in range(2):  # the second: job names known, statement prepared
                log.clear()
                answer = await http.post(
                    "/graphql", json=body, headers={"workspace": workloads.WORKSPACE}
                )
                assert answer.status_code == 200, answer.text
                assert "errors" not in answer.json(), answer.text
            recorded[case.name] = list(log)
    await app.state.engine.dispose()
    return recorded


def _libpq(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def _cpu_ns(pid: int) -> int:
    with open(f"/proc/{pid}/schedstat") as file:
        return int(file.read().split()[0])


async def _steps(connection: Any, steps: list[tuple[str, str, tuple[Any, ...]]]) -> None:
    for kind, sql, args in steps:
        if kind == "execute":
            await connection.execute(sql, *args)
        else:
            await connection.fetch(sql, *args)


async def measure(
    variants: dict[str, tuple[str, list[Any]]], rounds: int, per_round: int, warm: int = 30
) -> dict[str, tuple[float, float, float]]:
    """{label: (url, steps)} -> {label: (median, min, max) ms of backend CPU per execution}"""
    connections = {}
    for label, (url, steps) in variants.items():
        connection = await asyncpg.connect(_libpq(url), server_settings={"plan_cache_mode": "auto"})
        connections[label] = (connection, await connection.fetchval("SELECT pg_backend_pid()"))
        for _ in range(warm):
            await _steps(connection, steps)
    samples: dict[str, list[float]] = {label: [] for label in variants}
    for number in range(rounds):
        order = list(variants) if number % 2 == 0 else list(reversed(variants))
        for label in order:
            connection, pid = connections[label]
            before = _cpu_ns(pid)
            for _ in range(per_round):
                await _steps(connection, variants[label][1])
            samples[label].append((_cpu_ns(pid) - before) / per_round / 1e6)
    for connection, _ in connections.values():
        await connection.close()
    return {k: (statistics.median(v), min(v), max(v)) for k, v in samples.items()}


async def compare(main_url: str, main: Any, branch_url: str, branch: Any) -> None:
    for case in main:
        per_round = 4 if case == "W5" else 40
        found = await measure(
            {"main": (main_url, main[case]), "branch": (branch_url, branch[case])},
            rounds=21,
            per_round=per_round,
        )
        (m, m_low, m_high), (b, b_low, b_high) = found["main"], found["branch"]
        print(
            f"{case:9s} main {m:.3f} ({m_low:.3f}-{m_high:.3f})  "
            f"branch {b:.3f} ({b_low:.3f}-{b_high:.3f})  ratio {b / m:.2f}",
            flush=True,
        )


async def explain(url: str, recorded: Any, case: str, mode: str) -> None:
    [(_, sql, args)] = [s for s in recorded[case] if s[0] == "fetch"]
    connection = await asyncpg.connect(_libpq(url))
    statement = await connection.prepare(sql)
    types = [
        t.name if t.schema == "pg_catalog" else f"{t.schema}.{t.name}"
        for t in statement.get_parameters()
    ]
    literals = []
    for kind, value in zip(types, args, strict=True):
        if value is None:
            literals.append(f"NULL::{kind}")
        else:
            text = await connection.fetchval(f"SELECT $1::{kind}::text", value)
            literals.append("'" + text.replace("'", "''") + f"'::{kind}")
    await connection.execute(f"PREPARE s({', '.join(types)}) AS {sql}")
    await connection.execute(f"SET plan_cache_mode = {mode}")
    for _ in range(3):
        rows = await connection.fetch(
            f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE s({', '.join(literals)})"
        )
    print("\n".join(row[0] for row in rows))
    await connection.close()


def _load(name: str) -> Any:
    with open(name, "rb") as file:
        return pickle.load(file)


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    if command == "capture":  # URL OUT
        with open(rest[1], "wb") as out:
            pickle.dump(asyncio.run(capture(rest[0])), out)
    elif command == "compare":  # MAIN_URL MAIN.pkl BRANCH_URL BRANCH.pkl
        asyncio.run(compare(rest[0], _load(rest[1]), rest[2], _load(rest[3])))
    elif command == "explain":  # URL FILE CASE [MODE]
        mode = rest[3] if len(rest) > 3 else "force_generic_plan"
        asyncio.run(explain(rest[0], _load(rest[1]), rest[2], mode))
    else:
        raise SystemExit(__doc__)
