"""The proof of issue 28, both halves: jobql A emits to jobql B's `POST /api/v1/lineage`; after A
imports seed files, B's GraphQL answers hold the same jobs, instances, statuses and times, nodes
included; A killed (SIGKILL) mid-way and started again still delivers every change.

A and B are `jobql serve` processes on databases of their own, over real HTTP: A's emitter on
(JOBQL_OPENLINEAGE=on, OPENLINEAGE_URL=B), with a short lease so that the restarted A takes its
cursor over from the killed one within the test. The seed files are the source pages' examples
(DLF v1 list, DLF v1 detail with nodes).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from tests.collect.upstream import ROOT, Server, graphql, run_jobql

SEEDS = ROOT / "tests" / "importers" / "examples"
WORKSPACE = "default"
INSTANCES = """
query Instances {
  instances(first: 100) {
    nodes {
      jobName instanceId status planTime startTime endTime
      nodes(first: 100) { nodes { name status startTime endTime } }
    }
  }
}
"""
DRAIN_TIMEOUT_S = 60.0
T0 = 1_764_554_400_000  # 2025-12-01T02:00:00Z, in DLF's epoch milliseconds


def detail(path: Path, instance_id: int, status: str, *, ended: bool) -> Path:
    """A DLF v1 instance detail body: two nodes, the second still running unless `ended`."""
    start = T0 + instance_id * 3_600_000
    nodes = [
        {
            "nodeName": "extract",
            "type": "Shell",
            "status": "success",
            "planTime": start,
            "startTime": start + 1_000,
            "endTime": start + 60_000,
        },
        {
            "nodeName": "load",
            "type": "DWS SQL",
            "planTime": start,
            "startTime": start + 61_000,
            **(
                {"status": "success" if status == "success" else "fail", "endTime": start + 120_000}
                if ended
                else {"status": "running"}
            ),
        },
    ]
    body = {
        "jobName": "dag",
        "instanceId": instance_id,
        "status": status,
        "planTime": start,
        "startTime": start + 1_000,
        "nodes": nodes,
    }
    if ended:
        body["endTime"] = start + 121_000
    path.write_text(json.dumps(body))
    return path


async def answers(server: Server) -> list[dict[str, Any]]:
    data = await graphql(server.http, INSTANCES, {}, WORKSPACE)
    found = data["instances"]["nodes"]
    for instance in found:
        instance["nodes"] = sorted(instance["nodes"]["nodes"], key=lambda n: n["name"])
    return sorted(found, key=lambda i: (i["jobName"], i["instanceId"]))


async def import_into(a: Server, *files: Path) -> None:
    status, output = await run_jobql(
        "import", "--workspace", WORKSPACE, *map(str, files), env=a.env
    )
    assert status == 0, output


async def until_equal(a: Server, b: Server) -> list[dict[str, Any]]:
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while True:
        expected, received = await answers(a), await answers(b)
        if expected == received:
            return expected
        if time.monotonic() > deadline:
            assert received == expected  # shows the difference
        await asyncio.sleep(0.5)


async def test_a_emits_b_receives_across_a_restart(tmp_path: Path) -> None:
    b = Server(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}", JOBQL_DEMO_INSTANCES="0")
    await b.start()
    a_env = {
        "JOBQL_DEMO_INSTANCES": "0",
        "JOBQL_OPENLINEAGE": "on",
        "JOBQL_OPENLINEAGE_POLL_INTERVAL": "0.2",
        "JOBQL_OPENLINEAGE_LEASE": "2",
        "OPENLINEAGE_URL": b.url,
    }
    a_url = f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"
    a = Server(a_url, **a_env)
    restarted: Server | None = None
    try:
        await a.start()
        running = [detail(tmp_path / f"r{n}.json", n, "running", ended=False) for n in (1, 2, 3)]
        await import_into(a, SEEDS / "001_example.json", *running)
        first = await until_equal(a, b)
        assert {(i["jobName"], i["instanceId"], i["status"]) for i in first} == {
            ("job_batch", 34765, "SUCCESS"),
            ("job_batch", 34764, "SUCCESS"),
            ("dag", 1, "RUNNING"),
            ("dag", 2, "RUNNING"),
            ("dag", 3, "RUNNING"),
        }

        # Killed mid-way: what is written while A is down, and whatever its last batch had not
        # confirmed, goes out after the restart.
        assert a.process is not None
        a.process.kill()
        await a.process.wait()
        ended = [
            detail(tmp_path / f"e{n}.json", n, status, ended=True)
            for n, status in ((1, "success"), (2, "fail"), (3, "manual-stop"), (4, "success"))
        ]
        await import_into(a, *ended)
        restarted = Server(a_url, **a_env)
        await restarted.start()
        final = await until_equal(restarted, b)
        assert {(i["jobName"], i["instanceId"], i["status"]) for i in final} >= {
            ("dag", 1, "SUCCESS"),
            ("dag", 2, "FAIL"),
            ("dag", 3, "MANUAL_STOP"),
            ("dag", 4, "SUCCESS"),
        }
        assert all(len(i["nodes"]) == 2 for i in final if i["jobName"] == "dag")
        assert all(i["startTime"] and i["endTime"] for i in final)
    finally:
        await a.stop()
        if restarted is not None:
            await restarted.stop()
        await b.stop()
