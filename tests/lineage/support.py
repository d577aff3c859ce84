"""Events as `openlineage-python` builds them, and what the tests ask jobql about them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    RunFacet,
    error_message_run,
    job_type_job,
    nominal_time_run,
    parent_run,
)
from openlineage.client.serde import Serde

from tests.factories import BASE_TIME

NAMESPACE = "airflow://prod"
PRODUCER = "https://github.com/apache/airflow/tree/providers-openlineage/2.3.0"


def at(seconds: int) -> str:
    """BASE_TIME + seconds, as OpenLineage integrations write times."""
    return (BASE_TIME + timedelta(seconds=seconds)).isoformat()


def iso(seconds: int) -> str:
    """The same instant as jobql answers it."""
    moment = BASE_TIME + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class DagRun:
    """An Airflow-like DAG run: its own run id and its tasks' run ids, by task name."""

    dag: str
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    tasks: dict[str, str] = field(default_factory=dict)

    def task_run(self, task: str) -> str:
        return self.tasks.setdefault(task, str(uuid.uuid4()))

    def event(
        self,
        state: RunState,
        seconds: int,
        *,
        nominal: int | None = None,
        error: str | None = None,
        extra: dict[str, RunFacet] | None = None,
    ) -> RunEvent:
        facets: dict[str, RunFacet] = dict(extra or {})
        if nominal is not None:
            facets["nominalTime"] = nominal_time_run.NominalTimeRunFacet(
                nominalStartTime=at(nominal)
            )
        if error is not None:
            facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=error, programmingLanguage="python"
            )
        return RunEvent(
            eventType=state,
            eventTime=at(seconds),
            run=Run(runId=self.run_id, facets=facets),
            job=Job(namespace=NAMESPACE, name=self.dag, facets={"jobType": _job_type("DAG")}),
            producer=PRODUCER,
        )

    def task_event(
        self, task: str, state: RunState, seconds: int, *, error: str | None = None
    ) -> RunEvent:
        facets: dict[str, RunFacet] = {
            "parent": parent_run.ParentRunFacet(
                run=parent_run.Run(runId=self.run_id),
                job=parent_run.Job(namespace=NAMESPACE, name=self.dag),
                root=parent_run.Root(
                    run=parent_run.RootRun(runId=self.run_id),
                    job=parent_run.RootJob(namespace=NAMESPACE, name=self.dag),
                ),
            )
        }
        if error is not None:
            facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=error, programmingLanguage="python"
            )
        return RunEvent(
            eventType=state,
            eventTime=at(seconds),
            run=Run(runId=self.task_run(task), facets=facets),
            job=Job(
                namespace=NAMESPACE,
                name=f"{self.dag}.{task}",
                facets={"jobType": _job_type("TASK")},
            ),
            producer=PRODUCER,
        )


def _job_type(kind: str) -> job_type_job.JobTypeJobFacet:
    return job_type_job.JobTypeJobFacet(processingType="BATCH", integration="AIRFLOW", jobType=kind)


def body(event: RunEvent) -> dict[str, Any]:
    """The event as the client's HttpTransport sends it, decoded."""
    value: dict[str, Any] = Serde.to_dict(event)
    return value


INSTANCE_QUERY = """
query ($runIds: [String!]) {
  instances(filter: { runIds: $runIds }) {
    nodes {
      instanceId jobName runId status instanceType planTime startTime endTime errorMessage
      job { name namespace }
      nodes { nodes { name type status planTime startTime endTime retryTimes errorMessage } }
    }
  }
}
"""
