"""OpenLineage in: one RunEvent -> the instance (or node) it reports, through the ingest path of
`recordInstances` (`storage.ingest.write_instances`: merge, stale guard, change log).

Order-free and idempotent by construction: each instance keeps, in `lineage_state`, a summary of
every event seen of its run and of its child runs (earliest START, newest terminal event, newest
facets ...). An event is merged into that summary (min, max, newest-wins: commutative and
idempotent), and the instance's columns and its whole node list are derived from the summary
alone, so any order of the same events gives the same row, and an event seen twice changes
nothing. The README's "OpenLineage" section is the mapping's reference.

What the issue leaves open, decided here:
- The instance of a child run (a `parent` facet naming another run) is the parent facet's `root`
  run where the facet names one (an Airflow task's Spark job lands in the DAG run), else its
  parent run.
- A parent instance first mentioned by a child: status RUNNING, no start or end time, plan time
  the earliest nominal (else event) time of its children, type GENERAL. Its own events, when they
  come, take over status, times and plan time (derived, so in whatever order).
- Only OTHER events so far: WAITING. A run with events of its own but no terminal one: RUNNING.
- Child runs with the same job name are one node: the latest try (by first event time) gives its
  values, `retryTimes` counts the others. Nodes are ordered by first event time, then name.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from jobql import metrics
from jobql.errors import BadUserInput, JobqlError
from jobql.resolvers.context import RequestContext
from jobql.resolvers.objects import global_id
from jobql.storage import engine as storage_engine
from jobql.storage import lineage as lineage_storage
from jobql.storage.enums import InstanceType
from jobql.storage.ingest import Outcome, write_instances
from jobql.storage.records import InstanceRecord, NodeRecord

__all__ = [
    "EVENT_TYPES",
    "InstanceIdTaken",
    "InvalidEvent",
    "LineageEvent",
    "LineageResult",
    "parse_event",
    "record_event",
]

EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
TERMINAL_STATUS = {"COMPLETE": "SUCCESS", "FAIL": "FAIL", "ABORT": "MANUAL_STOP"}
# Two terminal events at the same instant: the worse outcome wins.
TERMINAL_RANK = {"COMPLETE": 1, "ABORT": 2, "FAIL": 3}
# jobql's own run facet (the contract with jobql's emitter, jobql/emit).
JOBQL_FACET = "jobql"
MAX_NAME = 512  # job.name, job.namespace: the length of job.name in the store
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
EARLIEST = "0001-01-01T00:00:00.001Z"
STATE_VERSION = 1
DEFAULT_NODE_TYPE = "OPENLINEAGE"

_DATE_TIME = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})?"
)


class InvalidEvent(BadUserInput):
    """The body is not a RunEvent jobql can take; `field` names where (a dotted path)."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field


class InstanceIdTaken(JobqlError):
    """jobql's facet names an instance id that another run already holds."""

    code = "CONFLICT"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class RunRef:
    run_id: str
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class LineageEvent:
    """A validated RunEvent: what the mapping reads of it. Times are UTC text with milliseconds
    (`2024-01-02T03:04:05.678Z`), which orders as the instants do."""

    event_type: str
    event_time: str
    run_id: str
    namespace: str
    job_name: str
    run_facets: dict[str, Any]
    # The run whose instance this event is a node of (None: the event's run is the instance).
    parent: RunRef | None
    nominal_time: str | None
    error_message: str | None
    node_type: str | None
    instance_id: int | None
    instance_type: str | None


@dataclass(frozen=True, slots=True)
class LineageResult:
    outcome: Outcome
    instance_key: int
    job_name: str
    instance_id: int
    run_id: str
    node: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "instance": {
                "id": global_id("Instance", self.instance_key),
                "jobName": self.job_name,
                "instanceId": self.instance_id,
                "runId": self.run_id,
            },
            "node": self.node,
        }


# --- validation ---------------------------------------------------------------------------------
# openlineage-python ships the spec as generated classes, not as its JSON schema: these checks
# follow the RunEvent of spec 2-0-2 (required properties, formats) and the facets jobql maps.


def _object(value: Any, field: str, *, required: bool = True) -> dict[str, Any]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise InvalidEvent(field, f"{field} must be a JSON object.")
    return value


def _string(container: Mapping[str, Any], key: str, prefix: str, *, limit: int = 0) -> str:
    field = f"{prefix}{key}"
    value = container.get(key)
    if value is None:
        raise InvalidEvent(field, f"{field} is missing.")
    if not isinstance(value, str):
        raise InvalidEvent(field, f"{field} must be a string.")
    if "\x00" in value:  # PostgreSQL's text cannot hold them
        raise InvalidEvent(field, f"{field} must not contain NUL characters.")
    if limit and not value:
        raise InvalidEvent(field, f"{field} must not be empty.")
    if limit and len(value) > limit:
        raise InvalidEvent(field, f"{field} is longer than {limit} characters.")
    return value


def _uuid(container: Mapping[str, Any], key: str, prefix: str) -> str:
    value = _string(container, key, prefix)
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidEvent(
            f"{prefix}{key}", f"{prefix}{key} must be a UUID, got {value!r}."
        ) from None


def _time(container: Mapping[str, Any], key: str, prefix: str) -> str:
    field = f"{prefix}{key}"
    value = _string(container, key, prefix)
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        raise InvalidEvent(field, f"{field} must be an RFC 3339 date-time, got {value!r}.")
    day, clock, fraction, offset = match.groups()
    if offset is None:
        raise InvalidEvent(field, f"{field} {value!r} has no UTC offset; add Z or +hh:mm.")
    micros = (fraction or "").ljust(6, "0")[:6]
    offset = "+00:00" if offset in "Zz" else offset
    try:
        moment = datetime.fromisoformat(f"{day}T{clock}.{micros}{offset}").astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidEvent(field, f"{field} {value!r} is not a valid instant.") from None
    text = _format(moment)
    if text < EARLIEST:
        raise InvalidEvent(field, f"{field} must not be earlier than {EARLIEST}.")
    return text


def _format(moment: datetime) -> str:
    # Not strftime: its %Y does not pad years before 1000, and the text must order as the
    # instants do (and parse back).
    return f"{moment.isoformat(timespec='milliseconds')[:23]}Z"


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _run_ref(facet: dict[str, Any], prefix: str) -> RunRef:
    run = _object(facet.get("run"), f"{prefix}.run")
    job = _object(facet.get("job"), f"{prefix}.job")
    return RunRef(
        run_id=_uuid(run, "runId", f"{prefix}.run."),
        namespace=_string(job, "namespace", f"{prefix}.job.", limit=MAX_NAME),
        name=_string(job, "name", f"{prefix}.job.", limit=MAX_NAME),
    )


def parse_event(body: Any) -> LineageEvent:
    """Check a decoded JSON body against the RunEvent of the OpenLineage spec (2-0-2) and the
    facets jobql maps; the first problem is an `InvalidEvent` naming its field."""
    event = _object(body, "body")
    event_time = _time(event, "eventTime", "")
    _string(event, "producer", "")
    _string(event, "schemaURL", "")
    event_type = event.get("eventType")
    if event_type is None:  # optional in the spec: an event that changes no state
        event_type = "OTHER"
    elif event_type not in EVENT_TYPES:
        raise InvalidEvent(
            "eventType",
            f"eventType must be one of {', '.join(EVENT_TYPES)}, got {event_type!r}.",
        )
    run = _object(event.get("run"), "run")
    run_id = _uuid(run, "runId", "run.")
    job = _object(event.get("job"), "job")
    namespace = _string(job, "namespace", "job.", limit=MAX_NAME)
    job_name = _string(job, "name", "job.", limit=MAX_NAME)
    facets = _object(run.get("facets"), "run.facets", required=False)
    for name, facet in facets.items():
        _object(facet, f"run.facets.{name}")
        try:  # kept as JSON text: what orjson reads nested deeper than it writes is refused
            orjson.dumps({name: facet})
        except orjson.JSONEncodeError:
            raise InvalidEvent(
                f"run.facets.{name}", f"run.facets.{name} is nested too deeply."
            ) from None
    job_facets = _object(job.get("facets"), "job.facets", required=False)
    for key in ("inputs", "outputs"):
        if event.get(key) is not None and not isinstance(event[key], list):
            raise InvalidEvent(key, f"{key} must be a JSON array.")

    parent: RunRef | None = None
    if "parent" in facets:
        parent = _run_ref(facets["parent"], "run.facets.parent")
        if facets["parent"].get("root") is not None:
            root = _object(facets["parent"]["root"], "run.facets.parent.root")
            parent = _run_ref(root, "run.facets.parent.root")
        if parent.run_id == run_id:
            parent = None
    nominal = None
    if "nominalTime" in facets:
        nominal = _time(facets["nominalTime"], "nominalStartTime", "run.facets.nominalTime.")
    error = None
    if "errorMessage" in facets:
        error = _string(facets["errorMessage"], "message", "run.facets.errorMessage.")
    node_type = None
    if "jobType" in job_facets:
        kind = _object(job_facets["jobType"], "job.facets.jobType")
        words = [kind.get("integration"), kind.get("jobType")]
        # At most the store's node type length; NUL characters dropped (PostgreSQL's text).
        text = " ".join(w for w in words if isinstance(w, str) and w).replace("\x00", "")
        node_type = text[:128] or None
    instance_id, instance_type = _jobql_facet(facets)
    return LineageEvent(
        event_type=event_type,
        event_time=event_time,
        run_id=run_id,
        namespace=namespace,
        job_name=job_name,
        run_facets=facets,
        parent=parent,
        nominal_time=nominal,
        error_message=error,
        node_type=node_type,
        instance_id=instance_id,
        instance_type=instance_type,
    )


def _jobql_facet(facets: dict[str, Any]) -> tuple[int | None, str | None]:
    facet = facets.get(JOBQL_FACET)
    if facet is None:
        return None, None
    prefix = f"run.facets.{JOBQL_FACET}."
    instance_id = facet.get("instanceId")
    if instance_id is not None and (
        isinstance(instance_id, bool)
        or not isinstance(instance_id, int)
        or not LONG_MIN <= instance_id <= LONG_MAX
    ):
        raise InvalidEvent(f"{prefix}instanceId", f"{prefix}instanceId must be a 64-bit integer.")
    instance_type = facet.get("instanceType")
    if instance_type is not None and (
        not isinstance(instance_type, str) or instance_type not in InstanceType.__members__
    ):
        raise InvalidEvent(
            f"{prefix}instanceType",
            f"{prefix}instanceType must be one of {', '.join(InstanceType.__members__)}.",
        )
    return instance_id, instance_type


# --- the summary of a run's events (lineage_state) -----------------------------------------------


def _newest(stored: list[Any] | None, incoming: list[Any]) -> list[Any]:
    """Of two [time, value...] entries the newer; equal times: the larger value, so that the
    outcome does not depend on the order they came in."""
    if stored is None:
        return incoming
    return incoming if _key(incoming) > _key(stored) else stored


def _key(entry: list[Any]) -> list[Any]:
    return [orjson.dumps(part, option=orjson.OPT_SORT_KEYS) for part in entry]


def _earliest(stored: str | None, incoming: str) -> str:
    return incoming if stored is None or incoming < stored else stored


def _merge_run(run: dict[str, Any] | None, event: LineageEvent) -> dict[str, Any]:
    run = dict(run or {})
    at = event.event_time
    run["name"] = _newest(run.get("name"), [at, event.job_name])
    run["first"] = _earliest(run.get("first"), at)
    if event.event_type == "START":
        run["start"] = _earliest(run.get("start"), at)
    if event.event_type in ("START", "RUNNING"):
        run["running"] = True
    if event.event_type in TERMINAL_STATUS:
        run["end"] = _newest(
            run.get("end"), [at, TERMINAL_RANK[event.event_type], event.event_type]
        )
    if event.nominal_time is not None:
        run["nominal"] = _newest(run.get("nominal"), [at, event.nominal_time])
    if event.error_message is not None:
        run["error"] = _newest(run.get("error"), [at, event.error_message])
    if event.node_type is not None:
        run["type"] = _newest(run.get("type"), [at, event.node_type])
    return run


def merge(state: dict[str, Any], facets: dict[str, Any], event: LineageEvent) -> None:
    """Merge `event` into an instance's summary and its run facets (both changed in place)."""
    state["v"] = STATE_VERSION
    at = event.event_time
    if event.parent is None:
        state["own"] = _merge_run(state.get("own"), event)
        state["namespace"] = _newest(state.get("namespace"), [1, at, event.namespace])
        times = state.setdefault("facetTimes", {})
        for name, facet in event.run_facets.items():
            if name not in facets or _key([at, facet]) > _key([times.get(name, ""), facets[name]]):
                facets[name] = facet
                times[name] = at
    else:
        children = state.setdefault("children", {})
        children[event.run_id] = _merge_run(children.get(event.run_id), event)
        # The parent facet's namespace stands in until the run's own events say.
        state["namespace"] = _newest(state.get("namespace"), [0, at, event.parent.namespace])


def _status(run: dict[str, Any] | None, *, has_children: bool = False) -> str:
    if run is not None and run.get("end") is not None:
        return TERMINAL_STATUS[run["end"][2]]
    if (run is not None and run.get("running")) or has_children:
        return "RUNNING"
    return "WAITING"


def _maybe_time(text: str | None) -> datetime | None:
    return None if text is None else _parse_time(text)


def _planned(run: dict[str, Any]) -> str:
    nominal = run.get("nominal")
    return str(nominal[1] if nominal is not None else run["first"])


def derive(
    state: dict[str, Any], facets: dict[str, Any], run_id: str
) -> tuple[dict[str, Any], list[NodeRecord], dict[str, Any]]:
    """The instance's columns, its nodes and its job's columns, from its summary alone."""
    own: dict[str, Any] | None = state.get("own")
    children: dict[str, dict[str, Any]] = state.get("children", {})
    # A parent first mentioned by its children: their earliest plan time stands in.
    plans = [_planned(own)] if own is not None else [_planned(c) for c in children.values()]
    plan = min(plans)
    jobql = facets.get(JOBQL_FACET) or {}
    instance_type = jobql.get("instanceType") if isinstance(jobql, dict) else None
    end = own.get("end") if own is not None else None
    error = own.get("error") if own is not None else None
    values: dict[str, Any] = {
        "status": _status(own, has_children=bool(children)),
        "plan_time": _parse_time(plan),
        "start_time": _maybe_time(own.get("start") if own is not None else None),
        "end_time": _maybe_time(end[0] if end is not None else None),
        "instance_type": instance_type if instance_type in InstanceType.__members__ else "GENERAL",
        "error_message": error[1] if error is not None else None,
        "run_id": run_id,
        "lineage_facets": _dumps(facets) if facets else None,
        "lineage_state": _dumps(state),
    }
    return values, _nodes(children), {"namespace": state["namespace"][2]}


def _nodes(children: dict[str, dict[str, Any]]) -> list[NodeRecord]:
    tries: dict[str, list[tuple[str, str]]] = {}
    for child_id, child in children.items():
        tries.setdefault(child["name"][1], []).append((child["first"], child_id))
    order = sorted(tries, key=lambda name: (min(tries[name]), name))
    nodes: list[NodeRecord] = []
    for name in order:
        _, latest_id = max(tries[name])
        run = children[latest_id]
        kind, end, error = run.get("type"), run.get("end"), run.get("error")
        values = {
            "type": kind[1] if kind is not None else DEFAULT_NODE_TYPE,
            "status": _status(run),
            "plan_time": _parse_time(_planned(run)),
            "start_time": _maybe_time(run.get("start")),
            "end_time": _maybe_time(end[0] if end is not None else None),
            "retry_times": len(tries[name]) - 1,
            "error_message": error[1] if error is not None else None,
        }
        nodes.append(NodeRecord(name, values))
    return nodes


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _loads(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    value = orjson.loads(text)
    return value if isinstance(value, dict) else {}


# --- the use case ---------------------------------------------------------------------------------


async def record_event(ctx: RequestContext, body: Any) -> LineageResult:
    """Store one RunEvent (a decoded JSON body) in the context's workspace, in one transaction:
    either all of it lands (instance, nodes, job, change log) or nothing does."""
    ctx.require("write")
    event = parse_event(body)
    target = event.parent or RunRef(event.run_id, event.namespace, event.job_name)
    workspace = ctx.workspace

    async def work(connection: AsyncConnection) -> LineageResult:
        await lineage_storage.lock_run(connection, workspace, target.run_id, target.name)
        row = await lineage_storage.instance_by_run(connection, workspace, target.run_id)
        if row is None:
            job_name = target.name
            row, instance_id = await _new_instance(connection, workspace, job_name, event)
        else:
            job_name, instance_id = row["job_name"], row["vendor_instance_id"]
        state = _loads(row["lineage_state"]) if row is not None else {}
        facets = _loads(row["lineage_facets"]) if row is not None else {}
        merge(state, facets, event)
        values, nodes, job_values = derive(state, facets, target.run_id)
        record = InstanceRecord(
            workspace=workspace,
            job_name=job_name,
            instance_id=instance_id,
            values=values,
            # No child runs: stored nodes (of an adopted instance) stay.
            nodes=nodes or None,
            job_values=job_values,
            source=f"run {event.run_id}",
        )
        (result,) = await write_instances(connection, [record])
        if result.errors:  # checked before: a value the store cannot hold
            error = result.errors[0]
            raise InvalidEvent(None, error.message)
        assert result.outcome is not None
        assert result.key is not None
        return LineageResult(
            outcome=result.outcome,
            instance_key=result.key,
            job_name=job_name,
            instance_id=instance_id,
            run_id=target.run_id,
            node=event.job_name if event.parent is not None else None,
        )

    result = await storage_engine.write(ctx.engine, work)
    metrics.INGEST_ITEMS.labels("instance", result.outcome.value.lower()).inc()
    return result


async def _new_instance(
    connection: AsyncConnection, workspace: str, job_name: str, event: LineageEvent
) -> tuple[dict[str, Any] | None, int]:
    """The instance id of a run seen for the first time: the one in jobql's facet of its own
    event (adopting a stored instance of that id that has no run yet), else the job's next."""
    if event.parent is None and event.instance_id is not None:
        taken = await lineage_storage.instance_at(
            connection, workspace, job_name, event.instance_id
        )
        if taken is not None and taken["run_id"] not in (None, event.run_id):
            field = f"run.facets.{JOBQL_FACET}.instanceId"
            raise InstanceIdTaken(
                field,
                f"Instance {event.instance_id} of job {job_name!r} belongs to run "
                f"{taken['run_id']}, not to {event.run_id}.",
            )
        return taken, event.instance_id
    return None, await lineage_storage.next_instance_id(connection, workspace, job_name)
