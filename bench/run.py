"""`python -m bench`: the read benchmark (see README, "Benchmarks")."""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from math import inf
from pathlib import Path
from typing import Any

from bench import data, measure, procs, report
from bench.contenders.registry import (
    Contender,
    contenders,
    normalise,
    postgraphile_missing,
)
from bench.measure import BenchError
from bench.workloads import DEEP_PAGE, Case, Parameters, cases, document, parameters

RESULTS = Path(__file__).resolve().parent / "results"
# W1's sequential p50 per contender: sizes W6's load runs.
LAST_P50_MS: dict[str, float] = {}
WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7")


@dataclass
class Mode:
    name: str
    pg_instances: int
    sqlite_instances: int
    seq_seconds: float
    wrk_seconds: float
    reuse: bool
    wrk_cap: float = 60.0  # longest load run when a slow contender needs more time
    seq_minimum: int = 3  # sequential requests at least, however slow
    two_worker_rounds: int | None = None  # W6 with 2 workers: rounds (None: as --rounds)
    sqlite_workloads: tuple[str, ...] | None = None  # the SQLite section's (None: all)
    # Sequential p50 (s) above which no load run is made; the sequential rate stands for it.
    sequential_only_above: float | None = None


NO_LOAD: dict[str, Any] = {
    "req_s": 0.0,
    "responses": 0,
    "failures": 0,
    "failed_by": {},
    "socket_errors": 0,
    "p50_us": 0,
    "p99_us": 0,
}


# Quick: a few seconds per workload and contender, so that all of it stays under 10 minutes on
# 2 cores: 1 s runs, no load run for a contender slower than 1 s a request (its sequential rate
# stands), W6 with 2 workers in one round, the SQLite section on W1 and W3 (README, "Benchmarks").
QUICK = Mode(
    "quick",
    20_000,
    20_000,
    1.0,
    1.0,
    reuse=False,
    wrk_cap=4.0,
    seq_minimum=2,
    two_worker_rounds=1,
    sqlite_workloads=("W1", "W3"),
    sequential_only_above=1.0,
)
FULL = Mode("full", 1_000_000, 100_000, 8.0, 12.0, reuse=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Read benchmark: jobql against L0, stock Strawberry and PostGraphile.",
    )
    parser.add_argument("--quick", action="store_true", help="20,000 instances, short runs")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (>= 2)")
    parser.add_argument("--only", default="", help="workloads, e.g. W1,W3 (default: all)")
    parser.add_argument(
        "--contenders",
        default="",
        help="comma list (jobql-reference always runs: it is the gate's reference)",
    )
    parser.add_argument("--gate-only", action="store_true", help="check correctness, no timing")
    parser.add_argument("--instances", type=int, default=None, help="override the data size")
    parser.add_argument(
        "--deep-page",
        type=int,
        default=DEEP_PAGE,
        help=f"W2's deep page (default {DEEP_PAGE:,}; the data's last page where it has fewer)",
    )
    parser.add_argument(
        "--postgres-url",
        default=None,
        help="use this server (a scratch database is created and dropped) instead of a private "
        "cluster; no pg_stat_statements or database CPU unless the server has them",
    )
    parser.add_argument(
        "--db-cpus",
        type=int,
        default=None,
        help="pin the private cluster to this many cores and run jobql with 2 workers: the "
        "database-bound ceiling measured, not only computed",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite section")
    parser.add_argument("--output", type=Path, default=RESULTS, help="results folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.command = " ".join(["python -m bench", *(sys.argv[1:] if argv is None else argv)])
    if args.rounds < 1:
        print("--rounds must be at least 1", file=sys.stderr)
        return 2
    procs.install_handlers()
    try:
        return _main(args)
    except BenchError as exc:
        print(f"\nbench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nbench: interrupted", file=sys.stderr)
        return 130
    finally:
        procs.cleanup_all()


def _main(args: argparse.Namespace) -> int:
    mode = QUICK if args.quick or args.gate_only else FULL
    only = [w.strip().upper() for w in args.only.split(",") if w.strip()] or list(WORKLOADS)
    chosen, notes = contenders([c.strip() for c in args.contenders.split(",") if c.strip()])
    if any(c.kind == "postgraphile" for c in chosen) and (missing := postgraphile_missing()):
        raise BenchError(missing + " (or leave it out with --contenders)")
    if not args.gate_only:
        measure.ensure_wrk()
    pg_instances = args.instances or mode.pg_instances
    sqlite_instances = args.instances or mode.sqlite_instances
    log_dir = Path(tempfile.mkdtemp(prefix="jobql-bench-"))
    print(f"[bench] {mode.name} mode, logs in {log_dir}", flush=True)

    # --- PostgreSQL -------------------------------------------------------------------------
    postmaster: int | None = None
    if args.postgres_url:
        base = args.postgres_url.rsplit("/", 1)[0]
        db_name = f"jobql_bench_{os.getpid()}_{int(time.time())}"
        procs.register_cleanup(lambda: data.drop_postgres_database(base, db_name))
        reuse = False
        pg_version = ""
    else:
        from bench.pgcluster import ClusterError, PrivateCluster

        try:
            cluster = PrivateCluster()
            cluster.start()
        except ClusterError as exc:
            raise BenchError(str(exc)) from exc
        base = cluster.url_base
        postmaster = cluster.postmaster_pid()
        if args.db_cpus:
            cores = cluster.pin(args.db_cpus)
            notes.append(
                f"--db-cpus {args.db_cpus}: the PostgreSQL cluster pinned to core(s) "
                f"{', '.join(map(str, sorted(cores)))}; jobql with 2 workers, PostGraphile one "
                "Node process (it has no workers)"
            )
        db_name = f"jobql_bench_{mode.name}" + (f"_{args.instances}" if args.instances else "")
        reuse = mode.reuse
        pg_version = cluster.version
        if not cluster.has_pg_stat_statements:
            notes.append("pg_stat_statements is not available: statements per request not counted")
    url = data.postgres_database(base, db_name, pg_instances, reuse=reuse)
    params = parameters(url, args.deep_page)
    notes += params.notes
    all_cases = [c for c in cases(params) if c.workload in only]

    run = report.Run(
        mode=mode.name + (" (gate only)" if args.gate_only else ""),
        started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        machine=report.machine(),
        versions={},
        parameters={**asdict(params), "postgres_instances": pg_instances},
        notes=notes,
        contenders=[c.name for c in chosen],
        normalisation={c.name: c.normalisation for c in chosen},
        command=args.command,
        unanswered={
            case.name: reasons for case in all_cases if (reasons := _unanswered(chosen, case))
        },
    )

    workers = 2 if args.db_cpus else 1
    servers = {c.name: c.server(url, workers, log_dir) for c in chosen}
    for contender in chosen:
        print(f"[bench] starting {contender.name}", flush=True)
        servers[contender.name].start()
    stats = measure.PgStats(url.replace("postgresql+asyncpg://", "postgresql://"), postmaster)
    procs.register_cleanup(stats.close)
    run.versions = report.versions(stats, pg_version)

    _postgraphile_cursors(chosen, servers, all_cases)
    gate(chosen, servers, all_cases)
    if args.gate_only:
        print("[bench] versions: " + ", ".join(f"{k} {v}" for k, v in run.versions.items()))
        print("[bench] gate passed", flush=True)
        return 0

    try:
        measured = list(all_cases)
        for round_number in range(1, args.rounds + 1):
            for case in measured:
                for contender in _rotated(chosen, round_number):
                    if contender.unanswered(case.workload):
                        continue
                    server = servers[contender.name]
                    result = measure_one(contender, server, case, mode, stats, connections=16)
                    result.update(round=round_number, workers=workers)
                    run.results.append(result)
            if "W6" in only:
                w1 = next(c for c in cases(params) if c.name == "W1")
                for connections in (16, 64):
                    for contender in _rotated(chosen, round_number):
                        result = measure_one(
                            contender, servers[contender.name], w1, mode, stats,
                            connections=connections, sequential=False, case_name="W6",
                        )  # fmt: skip
                        result.update(round=round_number, workers=1)
                        run.results.append(result)
        if "W6" in only:
            rounds = mode.two_worker_rounds or args.rounds
            _two_workers(chosen, servers, url, log_dir, params, mode, stats, run, rounds)
            if rounds < args.rounds:
                run.notes.append(f"W6 with 2 workers: {rounds} round(s) in {mode.name} mode")

        sqlite_only = [w for w in only if w in (mode.sqlite_workloads or WORKLOADS)]
        if not args.no_sqlite and not sqlite_only:
            run.notes.append(
                f"SQLite section: none of {', '.join(only)} is run on SQLite in {mode.name} mode"
            )
        elif not args.no_sqlite:
            for server in servers.values():
                server.stop()
            run.sqlite = sqlite_section(chosen, sqlite_instances, mode, args, only, log_dir)
            if mode.sqlite_workloads:
                run.notes.append(
                    f"SQLite section: {', '.join(mode.sqlite_workloads)} only in {mode.name} mode"
                )

    except (BenchError, KeyboardInterrupt, SystemExit):
        # What was measured before a failure, Ctrl-C or SIGTERM is still written, marked as partial.
        if run.results:
            run.notes.append(
                "PARTIAL: the run stopped before its end; these are the figures so far"
            )
            print(f"[bench] partial results: {report.write(run, args.output)}", flush=True)
        raise
    stem = None
    if args.db_cpus:
        suffix = "-quick" if run.mode.startswith("quick") else ""
        stem = f"{datetime.now(UTC):%Y-%m-%d}-{run.machine['host']}{suffix}-db{args.db_cpus}"
    out = report.write(run, args.output, stem)
    print(f"[bench] results: {out}", flush=True)
    return 0


def _rotated(items: list[Contender], round_number: int) -> list[Contender]:
    """Interleave: each round starts with another contender."""
    shift = (round_number - 1) % len(items)
    return items[shift:] + items[:shift]


def _two_workers(
    chosen: list[Contender],
    servers: dict[str, procs.Server],
    url: str,
    log_dir: Path,
    params: Parameters,
    mode: Mode,
    stats: measure.PgStats,
    run: report.Run,
    rounds: int,
) -> None:
    """W6 with 2 workers: one contender at a time has its 2-worker server up (2 cores)."""
    w1 = next(c for c in cases(params) if c.name == "W1")
    multi = [c for c in chosen if c.multi_worker]
    run.notes.append(
        "W6 with 2 workers: PostGraphile is one Node process (no workers); it is listed at 1"
    )
    for round_number in range(1, rounds + 1):
        for contender in _rotated(multi, round_number):
            servers[contender.name].stop()
            server = contender.server(url, 2, log_dir)
            print(f"[bench] starting {contender.name} with 2 workers", flush=True)
            server.start()
            for connections in (16, 64):
                result = measure_one(
                    contender, server, w1, mode, stats,
                    connections=connections, sequential=False, case_name="W6",
                )  # fmt: skip
                result.update(round=round_number, workers=2)
                run.results.append(result)
            server.stop()
            servers[contender.name].start()


def _post(server: procs.Server, body: bytes) -> tuple[int, bytes]:
    client = measure.Client(server.port)
    try:
        return client.post("/graphql", body)
    finally:
        client.close()


def _postgraphile_cursors(
    chosen: list[Contender], servers: dict[str, procs.Server], all_cases: list[Case]
) -> None:
    """PostGraphile's own cursor before the deep page, fetched once, outside any timing."""
    if not any(c.kind == "postgraphile" for c in chosen):
        return
    server = next(servers[c.name] for c in chosen if c.kind == "postgraphile")
    for case in all_cases:
        offset = case.postgraphile_variables.get("_offset")
        if offset is None:
            continue
        body = json.dumps(
            {"query": document("W2-cursor", "postgraphile"), "variables": {"offset": offset}}
        ).encode()
        status, payload = _post(server, body)
        answer = json.loads(payload)
        if status != 200 or "errors" in answer:
            raise BenchError(f"PostGraphile deep cursor: HTTP {status} {payload[:500]!r}")
        edges = answer["data"]["workspaceByName"]["instancesByWorkspaceId"]["edges"]
        case.postgraphile_variables["after"] = edges[0]["cursor"]


def _fetch(contender: Contender, server: procs.Server, case: Case) -> Any:
    status, payload = _post(server, contender.body(case))
    try:
        answer = json.loads(payload)
    except ValueError:
        answer = None
    if (
        status != 200
        or not isinstance(answer, dict)
        or answer.get("errors")
        or "data" not in answer
    ):
        raise BenchError(
            f"gate: {contender.name} on {case.name}: HTTP {status}: {payload[:1000]!r}"
        )
    return contender.to_jobql(case, answer["data"])


def _unanswered(chosen: list[Contender], case: Case) -> dict[str, str]:
    """The contenders that cannot answer this case, with why (see UNANSWERED)."""
    return {c.name: reason for c in chosen if (reason := c.unanswered(case.workload)) is not None}


def gate(chosen: list[Contender], servers: dict[str, procs.Server], all_cases: list[Case]) -> None:
    """Every contender's answer equals jobql-reference's as a JSON value, after normalisation;
    a contender that cannot answer a workload (UNANSWERED) is not asked, and the line says so."""
    reference = next(c for c in chosen if c.name == "jobql-reference")
    for case in all_cases:
        expected = _fetch(reference, servers[reference.name], case)
        if _empty(expected):
            raise BenchError(f"gate: jobql returns no rows for {case.name}: the check is void")
        skipped = _unanswered(chosen, case)
        for contender in chosen:
            if contender is reference or contender.name in skipped:
                continue
            got = _fetch(contender, servers[contender.name], case)
            masked = contender.normalisation != "exact"
            want = normalise(expected, times=False, cursors=masked)
            have = normalise(got, times=masked, cursors=masked)
            if want != have:
                raise BenchError(
                    f"gate: {contender.name} differs from jobql-reference on {case.name} "
                    f"({contender.normalisation}):\n" + _diff(want, have, contender.name)
                )
        agreed = len(chosen) - len(skipped)
        print(
            f"[gate] {case.name}: {agreed} contenders agree"
            + (f" (not asked: {', '.join(skipped)})" if skipped else ""),
            flush=True,
        )


def _empty(value: Any) -> bool:
    """No object (no `id`) and nothing counted (no `count` above 0): nothing to compare."""
    if isinstance(value, dict):
        if "id" in value or (isinstance(value.get("count"), int) and value["count"] > 0):
            return False
        return all(_empty(item) for item in value.values())
    if isinstance(value, list):
        return all(_empty(item) for item in value)
    return True


def _diff(want: Any, have: Any, name: str) -> str:
    a = json.dumps(want, indent=1, sort_keys=True).splitlines()
    b = json.dumps(have, indent=1, sort_keys=True).splitlines()
    lines = list(difflib.unified_diff(a, b, "jobql-reference", name, lineterm="", n=2))
    return "\n".join(lines[:80]) + ("\n..." if len(lines) > 80 else "")


def measure_one(
    contender: Contender,
    server: procs.Server,
    case: Case,
    mode: Mode,
    stats: measure.PgStats | None,
    *,
    connections: int,
    sequential: bool = True,
    case_name: str | None = None,
) -> dict[str, Any]:
    name = case_name or case.name
    body = contender.body(case)
    result: dict[str, Any] = {
        "case": name,
        "contender": contender.name,
        "connections": connections,
    }
    pid = server.pid()
    snapshot: dict[str, Any] = {}

    def begin() -> None:
        if stats:
            stats.reset()
        snapshot.update(server=procs.cpu_seconds(pid), db=stats.cpu() if stats else None)

    def end() -> None:
        snapshot.update(
            server_end=procs.cpu_seconds(pid),
            db_end=stats.cpu() if stats else None,
            statements=stats.statements(without_event_log=True) if stats else None,
        )

    if sequential:
        seq = measure.sequential(
            server.port,
            "/graphql",
            body,
            seconds=mode.seq_seconds,
            minimum=mode.seq_minimum,
            on_start=begin,
            on_end=end,
        )
        n = seq["requests"]
        result.update(
            p50_ms=seq["p50_ms"],
            p99_ms=seq["p99_ms"],
            seq_requests=n,
            response_bytes=seq["response_bytes"],
            cpu_basis="sequential",
        )
        if snapshot["statements"] is not None:
            total, tx = snapshot["statements"]
            result["statements_per_req"] = (total - tx) / n
            result["tx_statements_per_req"] = tx / n
    # A load run must see completed requests: with `connections` clients the first answers come
    # after about connections x p50 (one busy process). For the main table a contender that slow
    # gets fewer clients (its saturated throughput is the same); W6 keeps its client counts and
    # runs longer instead. Both are capped, and the clients used are recorded.
    p50_s = (result["p50_ms"] if sequential else LAST_P50_MS.get(contender.name, 0.0)) / 1000
    used = connections
    if sequential and p50_s > 0:
        used = max(1, min(connections, int(mode.wrk_seconds / (2 * p50_s))))
        LAST_P50_MS[contender.name] = (
            result["p50_ms"] if case.name == "W1" else LAST_P50_MS.get(contender.name, 0.0)
        )
    seconds = min(mode.wrk_cap, max(mode.wrk_seconds, 3 * p50_s * used))
    result.update(connections_used=used, wrk_seconds=seconds)
    measure.settle(pid)
    if not sequential:
        begin()
    if sequential and mode.sequential_only_above is not None and p50_s > mode.sequential_only_above:
        # Too slow for a load run this short: the sequential rate stands for it (marked `seq`).
        load = dict(NO_LOAD)
        result["wrk_seconds"] = 0
    else:
        load = measure.wrk(server.url + "/graphql", body, connections=used, seconds=seconds)
    if not sequential:
        end()
        # No completed response: no per-request figure (None below).
        n = load["responses"] - load["failures"] or inf
        result["cpu_basis"] = "wrk"
    measure.settle(pid)
    db_used = (
        None
        if snapshot["db"] is None or snapshot["db_end"] is None or n == inf
        else (snapshot["db_end"] - snapshot["db"]) * 1000 / n
    )
    if load["req_s"] == 0 and sequential:
        # Not one answer within the longest load run: the sequential rate is all there is.
        load["req_s"] = seq["requests"] / seq["elapsed_s"]
        result["req_s_basis"] = "sequential"
    result.update(
        req_s=load["req_s"],
        wrk_requests=load["responses"],
        wrk_failures=load["failures"],
        wrk_failed_by={k: v for k, v in load.get("failed_by", {}).items() if v},
        wrk_socket_errors=load["socket_errors"],
        wrk_p50_ms=load["p50_us"] / 1000,
        wrk_p99_ms=load["p99_us"] / 1000,
        cpu_server_ms=None
        if n == inf
        else (snapshot["server_end"] - snapshot["server"]) * 1000 / n,
        cpu_db_ms=db_used,
        rss_mb=procs.peak_rss_mb(pid),
    )
    if load["failures"] or load["socket_errors"]:
        # Recorded, not fatal: a server that sheds load (503) under 64 clients is a result.
        kinds = ", ".join(f"{v} {k}" for k, v in result["wrk_failed_by"].items())
        print(
            f"[{name} c{connections}] {contender.name}: {load['failures']} failed responses "
            f"({kinds or 'none'}), "
            f"{load['socket_errors']} socket errors (not counted in req/s); "
            f"see {server.log_path}",
            flush=True,
        )
    print(
        f"[{name} c{used}] {contender.name:18} {result['req_s']:9.1f} req/s"
        + (
            f"  p50 {result['p50_ms']:8.2f} ms  p99 {result['p99_ms']:8.2f} ms"
            if sequential
            else ""
        )
        + f"  cpu {result['cpu_server_ms'] or 0:.2f}"
        + (f"+{result['cpu_db_ms']:.2f}" if result["cpu_db_ms"] is not None else "")
        + " ms/req"
        + (
            f"  {result['statements_per_req']:.2f} stmt/req"
            if result.get("statements_per_req") is not None
            else ""
        ),
        flush=True,
    )
    return result


def sqlite_section(
    chosen: list[Contender],
    instances: int,
    mode: Mode,
    args: argparse.Namespace,
    only: list[str],
    log_dir: Path,
) -> dict[str, Any]:
    """jobql's own strategies on SQLite (the embedded default): gate between them, then timing."""
    folder = Path(
        os.environ.get("JOBQL_BENCH_SQLITE_DIR", Path(tempfile.gettempdir()) / "jobql-bench")
    )
    path = folder / f"{mode.name}-{instances}.db"
    url = data.sqlite_database(path, instances, reuse=mode.reuse)
    params = parameters(url)
    jobqls = [c for c in chosen if c.is_jobql]
    servers = {c.name: c.server(url, 1, log_dir) for c in jobqls}
    for contender in jobqls:
        servers[contender.name].start()
    sqlite_cases = [
        c
        for c in cases(params)
        if c.workload in only and c.workload in (mode.sqlite_workloads or WORKLOADS)
    ]
    gate(jobqls, servers, sqlite_cases)
    results = []
    for round_number in range(1, args.rounds + 1):
        for case in sqlite_cases:
            for contender in _rotated(jobqls, round_number):
                result = measure_one(
                    contender, servers[contender.name], case, mode, None, connections=16
                )
                result.update(round=round_number, workers=1)
                results.append(result)
    for server in servers.values():
        server.stop()
    return {"instances": instances, "parameters": asdict(params), "results": results}
