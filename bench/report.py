"""The results file: bench/results/<date>-<host>.md and the raw JSON beside it."""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.contenders.registry import NODE, POSTGRAPHILE_DIR

if TYPE_CHECKING:
    from bench.measure import PgStats


@dataclass
class Run:
    """One benchmark run: what `write` puts in the results files."""

    mode: str
    started: str
    machine: dict[str, Any]
    versions: dict[str, str]
    parameters: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    contenders: list[str] = field(default_factory=list)
    normalisation: dict[str, str] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)  # one per measurement
    sqlite: dict[str, Any] = field(default_factory=dict)
    # Per case, the contenders that cannot answer it and why (not asked, not timed).
    unanswered: dict[str, dict[str, str]] = field(default_factory=dict)
    command: str = ""  # the arguments it ran with (older results: not recorded)


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "host": socket.gethostname(),
        "cpu": model,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "load_average_at_start": round(os.getloadavg()[0], 2),
    }


def _package(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def versions(stats: PgStats | None, pg_version: str) -> dict[str, str]:
    found = {
        "python": platform.python_version(),
        "strawberry-graphql": _package("strawberry-graphql"),
        "graphql-core": _package("graphql-core"),
        "SQLAlchemy": _package("SQLAlchemy"),
        "asyncpg": _package("asyncpg"),
        "uvicorn": _package("uvicorn"),
        "starlette": _package("starlette"),
        "orjson": _package("orjson"),
    }
    if stats is not None:
        server = stats.loop.run_until_complete(stats.connection.fetchval("SHOW server_version"))
        found["PostgreSQL"] = str(server)
    elif pg_version:
        found["PostgreSQL"] = pg_version
    if NODE.exists():
        found["node"] = subprocess.run(
            [str(NODE), "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
    for package in ("postgraphile", "postgraphile-plugin-connection-filter"):
        manifest = POSTGRAPHILE_DIR / "node_modules" / package / "package.json"
        if manifest.exists():
            found[package] = json.loads(manifest.read_text())["version"]
    found["wrk"] = wrk_version()
    return found


def wrk_version() -> str:
    """`wrk -v`'s version, or `missing` where no wrk is on PATH (the gate needs none)."""
    path = shutil.which("wrk")
    if path is None:
        return "missing"
    try:
        done = subprocess.run([path, "-v"], capture_output=True, text=True, check=False, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "missing"
    return (done.stdout + done.stderr).split("[")[0].replace("wrk", "").strip() or "?"


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def aggregate(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (case, connections, workers, contender): medians over the rounds."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for result in results:
        key = (result["case"], result["connections"], result["workers"], result["contender"])
        groups.setdefault(key, []).append(result)
    rows = []
    for (case, connections, workers, contender), items in groups.items():
        rows.append(
            {
                "case": case,
                "connections": connections,
                "workers": workers,
                "contender": contender,
                "rounds": len(items),
                "req_s": _median([i["req_s"] for i in items]),
                "req_s_rounds": [round(i["req_s"], 1) for i in items],
                "p50_ms": _median([i.get("p50_ms") for i in items]),
                "p99_ms": _median([i.get("p99_ms") for i in items]),
                "wrk_p99_ms": _median([i.get("wrk_p99_ms") for i in items]),
                "cpu_server_ms": _median([i.get("cpu_server_ms") for i in items]),
                "cpu_db_ms": _median([i.get("cpu_db_ms") for i in items]),
                "statements_per_req": _median([i.get("statements_per_req") for i in items]),
                "rss_mb": max(i["rss_mb"] for i in items),
                "clients": sorted(
                    {
                        "seq"
                        if i.get("req_s_basis") == "sequential"
                        else i.get("connections_used", connections)
                        for i in items
                    },
                    key=str,
                ),
                "failed": sum(i["wrk_failures"] + i["wrk_socket_errors"] for i in items),
                "failed_by": _failed_by(items),
            }
        )
    return rows


def _failed_by(items: list[dict[str, Any]]) -> str:
    """What the failures were (`3x 503, 1x socket`), summed over the rounds."""
    kinds: dict[str, int] = {}
    for item in items:
        for kind, count in (item.get("wrk_failed_by") or {}).items():
            kinds[kind] = kinds.get(kind, 0) + count
        if item.get("wrk_socket_errors"):
            kinds["socket"] = kinds.get("socket", 0) + item["wrk_socket_errors"]
    return ", ".join(f"{count}x {kind}" for kind, count in kinds.items())


def _kinds(failed_by: str) -> str:
    return f" ({failed_by})" if failed_by else ""


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def db_ceiling(cpu_db_ms: float | None) -> float | None:
    """Requests per second one database core could serve if the database were the only limit
    (`1000 / db CPU ms per request`): where servers scale out and the database does not."""
    if not cpu_db_ms:
        return None
    return 1000.0 / cpu_db_ms


def _table(
    rows: list[dict[str, Any]], jobql_names: set[str], unanswered: dict[str, str] | None = None
) -> list[str]:
    jobqls = [r for r in rows if r["contender"] in jobql_names and r["req_s"]]
    best = max(jobqls, key=lambda r: r["req_s"]) if jobqls else None
    lines = []
    if best is not None:
        lines.append(f"Ratios are req/s against **{best['contender']}** (the best jobql here).")
        lines.append("")
    lines += [
        "| contender | req/s | ratio | wrk -c | p50 ms | p99 ms | p99 ms under load "
        "| CPU ms/req server | CPU ms/req db | db-bound req/s per db core | stmts/req "
        "| peak RSS MiB | failed | req/s per round |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | --- |",
    ]
    for row in rows:
        ratio = row["req_s"] / best["req_s"] if best and row["req_s"] is not None else None
        lines.append(
            f"| {row['contender']} | {_fmt(row['req_s'])} | {_fmt(ratio, 2)} "
            f"| {'/'.join(str(c) for c in row['clients'])} "
            f"| {_fmt(row['p50_ms'], 2)} | {_fmt(row['p99_ms'], 2)} "
            f"| {_fmt(row.get('wrk_p99_ms'), 2)} "
            f"| {_fmt(row['cpu_server_ms'], 2)} | {_fmt(row['cpu_db_ms'], 2)} "
            f"| {_fmt(db_ceiling(row['cpu_db_ms']), 0)} "
            f"| {_fmt(row['statements_per_req'], 2)} | {_fmt(row['rss_mb'], 0)} "
            f"| {row['failed']}{_kinds(row['failed_by'])} "
            f"| {', '.join(str(v) for v in row['req_s_rounds'])} |"
        )
    for name, reason in (unanswered or {}).items():
        lines.append(f"| {name} | not run | – " + "| – " * 10 + f"| {reason} |")
    return lines


TITLES = {
    "W1": "W1 dashboard: 50 newest FAIL instances, job name, nodes(first: 20)",
    "W2-page1": "W2 page 1 (50 per page, newest first)",
    "W2-deep": "W2 deep page through a cursor (50 per page)",
    "W3": "W3 detail: instance(jobName, instanceId), 12 fields, all nodes",
    "W4": "W4 filters: status + instance type + plan-time range, no totalCount",
    "W4-count": "W4 filters with totalCount",
    "W5": "W5 large: 1,000 instances x 11 fields, nodes(first: 10) x 10 fields",
    "W7": "W7 statistics: countsByStatus, instanceStats and 10 jobs' stats, 30 days by day",
}


def _sections(
    results: list[dict[str, Any]],
    jobql_names: set[str],
    notes: dict[str, str],
    unanswered: dict[str, dict[str, str]] | None = None,
) -> list[str]:
    rows = aggregate(results)
    lines: list[str] = []
    order = list(TITLES)
    keys = sorted(
        {(r["case"], r["connections"], r["workers"]) for r in rows},
        key=lambda k: (order.index(k[0]) if k[0] in order else 99, k[2], k[1]),
    )
    for case, connections, workers in keys:
        title = TITLES.get(case, f"{case} concurrency: W1")
        extra = f" ({notes[case]})" if notes.get(case) else ""
        label = f"{connections} clients" if case == "W6" else "wrk -c16 or fewer"
        lines += [
            "",
            f"### {title}{extra} — {label}, {workers} worker(s)",
            "",
        ]
        group = [
            r
            for r in rows
            if (r["case"], r["connections"], r["workers"]) == (case, connections, workers)
        ]
        lines += _table(group, jobql_names, (unanswered or {}).get(case))
    return lines


def write(run: Run, folder: Path, stem: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    # Quick runs get their own name: a quick and a full run of one day must not collide.
    suffix = "-quick" if run.mode.startswith("quick") else ""
    stem = stem or f"{datetime.now(UTC):%Y-%m-%d}-{run.machine['host']}{suffix}"
    jobql_names = {name for name in run.contenders if name.startswith("jobql")}
    p = run.parameters
    case_notes = {
        "W2-deep": f"page {p['deep_page']:,}, offset {p['deep_offset']:,}",
        "W3": f"{p['w3_job']} / {p['w3_instance']}, {p['w3_nodes']} nodes",
        "W4": f"SUCCESS, GENERAL, plan time in ({p['w4_after']}, {p['w4_before']})",
        "W4-count": f"SUCCESS, GENERAL, plan time in ({p['w4_after']}, {p['w4_before']})",
    }
    if p.get("w7_after"):
        case_notes["W7"] = (
            f"plan time in ({p['w7_after']}, {p['w7_before']}), {p['w7_instances']:,} instances"
        )
    lines = [
        f"# jobql read benchmark — {run.mode} mode, {run.started}",
        "",
        f"Machine: {run.machine['cpu']}, {run.machine['cores']} cores ({run.machine['host']}, "
        f"Linux {run.machine['kernel']}; load average at the start "
        f"{run.machine.get('load_average_at_start', 'not recorded')}: other work on the machine "
        "makes the figures noisy). Command: `"
        + (run.command or "python -m bench" + (" --quick" if run.mode.startswith("quick") else ""))
        + "`.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in run.versions.items()) + ".",
        "",
        f"Data: PostgreSQL {p['postgres_instances']:,} instances (`jobql seed --workspaces 1`, "
        "about 10 nodes each), all contenders on the same database in the same run, "
        "interleaved per round; figures are medians over the rounds.",
        "",
        "Columns: req/s from `wrk -t2` counting only 200 responses without `errors` (the others "
        "are in `failed`: non-200 or `errors` bodies, plus socket errors, by kind); p50/p99 from "
        "one sequential keep-alive client (`wrk -c` says `seq` where no load run was made, or not "
        "one answer came within the longest load run: req/s is then the sequential rate); "
        "p99 under load from wrk over the load run at `wrk -c` clients (W6: the only latency); CPU "
        "per request from /proc over "
        "the sequential requests "
        "(W6: over the wrk run) for the server process and its workers, and for PostgreSQL "
        "(the private cluster's processes); db-bound req/s per db core = 1000 / CPU ms/req db, "
        "what one database core would serve were the database the only limit; "
        "statements per request from pg_stat_statements (BEGIN/COMMIT and the idle jobql servers' "
        "polls of their event log not counted); peak RSS = "
        "VmHWM summed over the server's processes.",
        "",
        "Correctness gate (before timing): every contender's answer equals jobql-reference's as "
        "a JSON value. Normalisation: "
        + "; ".join(f"{k}: {v}" for k, v in run.normalisation.items())
        + ".",
        "",
    ]
    if run.notes:
        lines += ["Notes:", ""] + [f"- {note}" for note in run.notes] + [""]
    lines += ["## PostgreSQL"]
    lines += _sections(run.results, jobql_names, case_notes, run.unanswered)
    if run.sqlite:
        lines += [
            "",
            f"## SQLite ({run.sqlite['instances']:,} instances, jobql strategies only)",
        ]
        sp = run.sqlite["parameters"]
        lines += [""] + [f"- {note}" for note in sp.get("notes", [])]
        lines += _sections(
            run.sqlite["results"],
            jobql_names,
            {
                "W2-deep": f"page {sp['deep_page']:,}, offset {sp['deep_offset']:,}",
                "W3": f"{sp['w3_job']} / {sp['w3_instance']}, {sp['w3_nodes']} nodes",
            },
        )
    md = folder / f"{stem}.md"
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    raw = asdict(run)
    raw["aggregated"] = aggregate(run.results)
    if run.sqlite:
        raw["sqlite"]["aggregated"] = aggregate(run.sqlite["results"])
    (folder / f"{stem}.json").write_text(json.dumps(raw, indent=1) + "\n", encoding="utf-8")
    return md


def rerender(raw_json: Path) -> Path:
    """Write the .md of a results .json again (after a change to this module)."""
    raw = json.loads(raw_json.read_text(encoding="utf-8"))
    raw.pop("aggregated", None)
    if raw.get("sqlite"):
        raw["sqlite"].pop("aggregated", None)
    return write(Run(**raw), raw_json.parent, raw_json.stem)


if __name__ == "__main__":
    import sys

    for name in sys.argv[1:]:
        print(rerender(Path(name)))
