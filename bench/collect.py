"""Collecting from DLF: instances per second with their nodes, and CPU per instance.

    python -m bench.collect [--instances 2000] [--nodes 10] [--page-size 100] [--only sqlite]

The upstream is `jobql serve` on a fresh SQLite database, seeded with `--instances` DLF runs of
`--nodes` nodes each (through recordInstances). The collector (`jobql.collect`, in this process)
makes one pass of a DLF source through Huawei's SDK (`DgcClient`: list pages, then every
instance's detail) into a fresh database of each backend (PostgreSQL on
JOBQL_BENCH_POSTGRES_URL, a scratch database created and dropped here), then a second pass under
another source name over the same windows, where everything is stored already (lists only, no
details, nothing written). Measured per pass: wall time, instances per second, requests, the
collector's CPU per instance (this process: the SDK's threads included) and the upstream's (its
process tree, from /proc). Prints one table and writes bench/results/<date>-<host>-collect.md and
the raw figures in the .json beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.ingest import fresh_database
from bench.procs import Server, cpu_seconds, free_port, install_handlers
from bench.report import machine
from jobql.collect.config import Credentials, DlfScope, Pace, SourceConfig
from jobql.collect.runner import Collector, PassReport

RESULTS = Path(__file__).with_name("results")
ROOT = Path(__file__).resolve().parents[1]
WORKSPACE = "bench_dlf"
RECORD = """
mutation($input: [InstanceInput!]!) {
  recordInstances(input: $input) { results { userErrors { message } } }
}
"""


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def instances(count: int, nodes: int, now: datetime) -> list[dict[str, Any]]:
    """DLF runs over the last 20 hours, `count // 50` jobs, every field DLF reports."""
    rng = random.Random(7)
    jobs = max(1, count // 50)
    items = []
    for n in range(count):
        plan = now - timedelta(seconds=rng.randint(60, 20 * 3600))
        start = plan + timedelta(seconds=1)
        end = start + timedelta(seconds=rng.randint(10, 900))
        items.append(
            {
                "jobName": f"etl_{n % jobs}",
                "instanceId": 1_000_000 + n,
                "jobInstanceName": f"etl_{n % jobs}_{n}",
                "status": "SUCCESS" if n % 10 else "FAIL",
                "instanceType": "GENERAL",
                "planTime": iso(plan),
                "startTime": iso(start),
                "endTime": iso(end),
                "submitTime": iso(plan),
                "executeTime": 0.3,
                "forceSuccess": False,
                "ignoreSuccess": False,
                "version": 1,
                "nodes": [
                    {
                        "name": f"step_{s}",
                        "type": "DWS SQL",
                        "status": "SUCCESS",
                        "planTime": iso(plan),
                        "startTime": iso(start),
                        "endTime": iso(end),
                        "retryTimes": 0,
                        "inputRowCount": rng.randint(0, 10**6),
                        "speed": 1234.5,
                        "logPath": f"obs://dlf-log/etl/{n}/{s}.job",
                    }
                    for s in range(nodes)
                ],
            }
        )
    return items


def seed(url: str, items: list[dict[str, Any]]) -> None:
    # 100 runs a call: with their nodes, 500 would pass jobql's 1 MiB body limit.
    for start in range(0, len(items), 100):
        body = json.dumps({"query": RECORD, "variables": {"input": items[start : start + 100]}})
        request = urllib.request.Request(
            f"{url}/graphql",
            data=body.encode(),
            headers={"content-type": "application/json", "workspace": WORKSPACE},
        )
        with urllib.request.urlopen(request, timeout=300) as response:
            answer = json.loads(response.read())
        errors = [r for r in answer["data"]["recordInstances"]["results"] if r["userErrors"]]
        if answer.get("errors") or errors:
            raise SystemExit(f"seeding failed: {answer.get('errors') or errors[:3]}")


def source(name: str, url: str, page_size: int) -> SourceConfig:
    return SourceConfig(
        name=name,
        kind="dlf",
        endpoint=url,
        region="cn-north-4",
        workspace="collected",
        credentials=Credentials("bench-ak", "bench-sk"),
        scope=DlfScope(
            project_id="bench",
            dlf_workspace=WORKSPACE,
            page_size=page_size,
            window=86_400.0,
            overlap=600.0,
            lookback=86_400.0,
        ),
        pace=Pace(poll_interval=60.0, rate_limit=100_000.0, timeout=60.0, retries=0),
    )


async def one_pass(collector: Collector, config: SourceConfig, upstream: Server) -> dict[str, Any]:
    upstream_cpu, cpu, started = (
        cpu_seconds(upstream.pid()),
        time.process_time(),
        time.perf_counter(),
    )
    report: PassReport = await collector.one_pass(config)
    wall = time.perf_counter() - started
    cpu, upstream_cpu = time.process_time() - cpu, cpu_seconds(upstream.pid()) - upstream_cpu
    if not report.ok:
        raise SystemExit(f"the pass failed: {report.error}")
    read = report.stats.read
    return {
        "instances": read,
        "written": report.stats.counts["created"] + report.stats.counts["updated"],
        "requests": report.requests,
        "seconds": round(wall, 3),
        "instances_per_s": round(read / wall, 1),
        "collector_cpu_ms_per_instance": round(cpu * 1000 / read, 3),
        "upstream_cpu_ms_per_instance": round(upstream_cpu * 1000 / read, 3),
    }


async def run(args: argparse.Namespace, folder: Path) -> list[dict[str, Any]]:
    upstream_db = f"sqlite+aiosqlite:///{folder / 'upstream.db'}"
    env = {**os.environ, "JOBQL_DATABASE_URL": upstream_db, "JOBQL_LOG_LEVEL": "warning"}
    migrate = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "jobql", "migrate", env=env, cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await migrate.wait()
    port = free_port()
    upstream = Server(
        "upstream",
        [sys.executable, "-m", "jobql", "serve", "--port", str(port)],
        env,
        port,
        folder,
        cwd=ROOT,
    )
    upstream.start()
    try:
        print(f"seeding {args.instances:,} DLF instances with {args.nodes} nodes each", flush=True)
        seed(upstream.url, instances(args.instances, args.nodes, datetime.now(UTC)))
        rows = []
        for kind in ("sqlite", "postgresql"):
            if args.only and kind != args.only:
                continue
            async with fresh_database(kind, folder) as engine:
                first = source("bench-first", upstream.url, args.page_size)
                again = source("bench-again", upstream.url, args.page_size)
                collector = Collector([first, again], engine)
                await collector.check()
                for label, config in (("first pass", first), ("everything stored", again)):
                    print(f"{kind}: {label}", flush=True)
                    figures = await one_pass(collector, config, upstream)
                    rows.append({"database": kind, "pass": label, **figures})
        return rows
    finally:
        upstream.stop()


def table(rows: list[dict[str, Any]], args: argparse.Namespace) -> list[str]:
    lines = [
        f"DLF, {args.instances:,} instances with {args.nodes} nodes each, pages of "
        f"{args.page_size}; upstream: jobql serve on SQLite",
        "",
        "| collector database | pass | instances | written | requests | s | instances/s "
        "| collector CPU ms/instance | upstream CPU ms/instance |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['database']} | {row['pass']} | {row['instances']:,} | {row['written']:,} "
            f"| {row['requests']:,} | {row['seconds']:.1f} | {row['instances_per_s']:,.0f} "
            f"| {row['collector_cpu_ms_per_instance']:.2f} "
            f"| {row['upstream_cpu_ms_per_instance']:.2f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=2_000)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    args = parser.parse_args()
    install_handlers()
    with tempfile.TemporaryDirectory() as folder:
        rows = asyncio.run(run(args, Path(folder)))
    lines = table(rows, args)
    print()
    print("\n".join(lines))
    about = machine()
    stem = f"{datetime.now(UTC):%Y-%m-%d}-{about['host']}-collect"
    RESULTS.mkdir(exist_ok=True)
    header = [f"# Collecting from DLF ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)", ""]
    header += [f"- {key}: {value}" for key, value in about.items()] + [""]
    (RESULTS / f"{stem}.md").write_text("\n".join(header + lines) + "\n", encoding="utf-8")
    raw = {"machine": about, "arguments": vars(args), "results": rows}
    (RESULTS / f"{stem}.json").write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {RESULTS / stem}.md and .json")


if __name__ == "__main__":
    main()
