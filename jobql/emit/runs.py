"""A batch of the instance event log -> OpenLineage RunEvents, and the state each run is left in.

Pure: no database, no transport. Each run (an instance, or one node of it) gets START when it is
first seen started and one terminal event (COMPLETE, FAIL or ABORT) when it ends, compared with
the last state sent for it (`Batch.states`), so that a run is announced once per transition
however many log events mention it. The tables below are the README's.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    RunFacet,
    error_message_run,
    nominal_time_run,
    parent_run,
)

from jobql.emit.facets import FACET_KEY, PRODUCER, JobqlRunFacet
from jobql.resolvers.emit import Batch, RunInstance, RunKey, RunNode

START = "START"
COMPLETE = "COMPLETE"
FAIL = "FAIL"
ABORT = "ABORT"

# InstanceStatus -> the state it puts the run in; None: not started (nothing is sent).
INSTANCE_STATES: dict[str, str | None] = {
    "WAITING": None,
    "FREEZE": None,
    "PAUSE": None,
    "RUNNING": START,
    "RUNNING_EXCEPTION": START,
    "SUCCESS": COMPLETE,
    "FAIL": FAIL,
    "MANUAL_STOP": ABORT,
    "SKIP_BY_DEPEND": ABORT,
    "REJECTED": ABORT,
}
# NodeStatus -> the same.
NODE_STATES: dict[str, str | None] = {
    "WAITING": None,
    "PAUSE": None,
    "RUNNING": START,
    "SUCCESS": COMPLETE,
    "FAIL": FAIL,
    "SKIP": ABORT,
    "MANUAL_STOP": ABORT,
}
TERMINAL = (COMPLETE, FAIL, ABORT)

# uuid5 namespace of the run ids jobql makes up for runs that came without one.
RUN_ID_NAMESPACE = uuid.UUID("6a6f6271-6c00-5000-8000-6f70656e6c6e")


def transitions(last: str | None, target: str | None) -> list[str]:
    """The events that take a run from the last state sent (`last`) to `target`."""
    if target is None or target == last:
        return []
    if target == START:
        return [START]
    if last is None:  # first seen already finished
        return [START, target]
    return [target]  # started -> ended, or ended one way -> ended another


def instance_run_id(instance: RunInstance) -> str:
    """The run id the instance came with, else one made from (workspace, job, instance id):
    the same for every event of the run and on every emitter."""
    if instance.run_id:
        return instance.run_id
    name = json.dumps([instance.workspace, instance.job_name, instance.instance_id])
    return str(uuid.uuid5(RUN_ID_NAMESPACE, name))


def node_run_id(parent_run_id: str, node: str) -> str:
    return str(uuid.uuid5(RUN_ID_NAMESPACE, json.dumps([parent_run_id, node])))


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class Plan:
    """What a batch sends, in order, and the runs' states once it went out."""

    events: list[RunEvent] = field(default_factory=list)
    states: dict[RunKey, str] = field(default_factory=dict)


def plan_batch(batch: Batch, namespace: Callable[[str], str]) -> Plan:
    """The RunEvents of `batch` in log order: per log event, the instance's START, then its
    nodes' events, then the instance's terminal event."""
    plan = Plan()
    states = dict(batch.states)
    for event in batch.events:
        instance = batch.instances.get(event.instance_id)
        if instance is None:  # deleted since
            continue
        # A job that came over OpenLineage goes out under its own namespace: the same job.
        space = instance.job_namespace or namespace(instance.workspace)
        run_id = instance_run_id(instance)
        key = (instance.key, "")
        steps = transitions(states.get(key), INSTANCE_STATES.get(event.status))
        if steps:
            states[key] = plan.states[key] = steps[-1]
        if START in steps:
            plan.events.append(_instance_event(instance, START, event.at, space, run_id))
        for node in instance.nodes:
            node_key = (instance.key, node.name)
            node_steps = transitions(states.get(node_key), NODE_STATES.get(node.status))
            if node_steps:
                states[node_key] = plan.states[node_key] = node_steps[-1]
            for state in node_steps:
                plan.events.append(_node_event(instance, node, state, event.at, space, run_id))
        for state in steps:
            if state != START:
                plan.events.append(_instance_event(instance, state, event.at, space, run_id))
    return plan


def _times(start: datetime | None, end: datetime | None, state: str, logged: datetime) -> datetime:
    """START: the start time (else the end time, else when the change was logged); an end: the
    end time, else when the change was logged. A START is never after its end."""
    end_at = end or logged
    if state == START:
        return min(start, end_at) if start is not None else (end or logged)
    return end_at


def _instance_event(
    instance: RunInstance, state: str, logged: datetime, namespace: str, run_id: str
) -> RunEvent:
    facets: dict[str, RunFacet] = {
        "nominalTime": nominal_time_run.NominalTimeRunFacet(
            nominalStartTime=iso(instance.plan_time), producer=PRODUCER
        ),
        FACET_KEY: JobqlRunFacet(
            producer=PRODUCER,
            workspace=instance.workspace,
            instanceId=instance.instance_id,
            instanceType=instance.instance_type,
            sourceApi=instance.source_api,
            globalId=instance.global_id,
        ),
    }
    if instance.error_message:
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=instance.error_message, programmingLanguage="unknown", producer=PRODUCER
        )
    return RunEvent(
        eventType=RunState(state),
        eventTime=iso(_times(instance.start_time, instance.end_time, state, logged)),
        run=Run(runId=run_id, facets=facets),
        job=Job(namespace=namespace, name=instance.job_name),
        producer=PRODUCER,
    )


def _node_event(
    instance: RunInstance,
    node: RunNode,
    state: str,
    logged: datetime,
    namespace: str,
    parent_run_id: str,
) -> RunEvent:
    facets: dict[str, RunFacet] = {
        "parent": parent_run.ParentRunFacet(
            run=parent_run.Run(runId=parent_run_id),
            job=parent_run.Job(namespace=namespace, name=instance.job_name),
            root=parent_run.Root(
                run=parent_run.RootRun(runId=parent_run_id),
                job=parent_run.RootJob(namespace=namespace, name=instance.job_name),
            ),
            producer=PRODUCER,
        ),
        "nominalTime": nominal_time_run.NominalTimeRunFacet(
            nominalStartTime=iso(node.plan_time or instance.plan_time), producer=PRODUCER
        ),
    }
    return RunEvent(
        eventType=RunState(state),
        eventTime=iso(_times(node.start_time, node.end_time, state, logged)),
        run=Run(runId=node_run_id(parent_run_id, node.name), facets=facets),
        job=Job(namespace=namespace, name=node.name),
        producer=PRODUCER,
    )
