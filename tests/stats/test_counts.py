"""countsByStatus on every connection: every status in the enum's order, zero included, under
the connection's own filter, one statement per field whatever the number of parents."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.schema import schema
from jobql.storage.enums import InstanceStatus, NodeStatus
from tests.conftest import StatementCounter
from tests.factories import data_of, make_instance, make_job, make_nodes, new_workspace
from tests.stats.conftest import World

ROOT_COUNTS = """
query($filter: InstanceFilter) {
  instances(filter: $filter, first: 1) { totalCount countsByStatus { status count } }
}
"""

JOB_COUNTS = """
query($filter: InstanceFilter) {
  jobs { nodes { name instances(filter: $filter, first: 1) { countsByStatus { status count } } } }
}
"""

NODE_COUNTS = """
query($job: String!, $id: Long!, $statuses: [NodeStatus!]) {
  instance(jobName: $job, instanceId: $id) {
    nodes(statuses: $statuses, first: 1) { totalCount countsByStatus { status count } }
  }
}
"""


def counts(**nonzero: int) -> list[dict[str, Any]]:
    return [{"status": s.name, "count": nonzero.get(s.name, 0)} for s in InstanceStatus]


def node_counts(**nonzero: int) -> list[dict[str, Any]]:
    return [{"status": s.name, "count": nonzero.get(s.name, 0)} for s in NodeStatus]


async def test_root_counts_cover_every_status_under_the_filter(
    engine: AsyncEngine, world: World
) -> None:
    data = await data_of(engine, ROOT_COUNTS, workspace=world.workspace)
    assert data["instances"]["countsByStatus"] == counts(WAITING=1, RUNNING=1, SUCCESS=3, FAIL=2)
    assert data["instances"]["totalCount"] == 7

    alpha = {"filter": {"jobName": "alpha"}}
    data = await data_of(engine, ROOT_COUNTS, alpha, workspace=world.workspace)
    assert data["instances"]["countsByStatus"] == counts(WAITING=1, RUNNING=1, SUCCESS=2, FAIL=1)

    narrowed = {
        "filter": {
            "statuses": ["SUCCESS", "WAITING"],
            "instanceTypes": ["GENERAL"],
            "planTimeAfter": "2019-03-04T00:00:00Z",
            "planTimeBefore": "2019-03-10T23:59:59.999Z",  # exclusive: a5 is left out
        }
    }
    data = await data_of(engine, ROOT_COUNTS, narrowed, workspace=world.workspace)
    assert data["instances"]["countsByStatus"] == counts(SUCCESS=2)
    assert data["instances"]["totalCount"] == 2

    nothing = {"filter": {"statuses": []}}
    data = await data_of(engine, ROOT_COUNTS, nothing, workspace=world.workspace)
    assert data["instances"]["countsByStatus"] == counts()


async def test_job_counts_per_job(engine: AsyncEngine, world: World) -> None:
    data = await data_of(engine, JOB_COUNTS, workspace=world.workspace)
    found = {job["name"]: job["instances"]["countsByStatus"] for job in data["jobs"]["nodes"]}
    assert found == {
        "alpha": counts(WAITING=1, RUNNING=1, SUCCESS=2, FAIL=1),
        "beta": counts(SUCCESS=1, FAIL=1),
        "idle": counts(),
    }
    failed = {"filter": {"statuses": ["FAIL"]}}
    data = await data_of(engine, JOB_COUNTS, failed, workspace=world.workspace)
    found = {job["name"]: job["instances"]["countsByStatus"] for job in data["jobs"]["nodes"]}
    assert found == {"alpha": counts(FAIL=1), "beta": counts(FAIL=1), "idle": counts()}


async def test_node_counts_per_instance(engine: AsyncEngine, world: World) -> None:
    a2 = {"job": "alpha", "id": world.instances["a2"]}
    data = await data_of(engine, NODE_COUNTS, a2, workspace=world.workspace)
    assert data["instance"]["nodes"] == {
        "totalCount": 2,
        "countsByStatus": node_counts(SUCCESS=1, FAIL=1),
    }
    only_failed = {**a2, "statuses": ["FAIL", "SKIP"]}
    data = await data_of(engine, NODE_COUNTS, only_failed, workspace=world.workspace)
    assert data["instance"]["nodes"] == {"totalCount": 1, "countsByStatus": node_counts(FAIL=1)}
    a5 = {"job": "alpha", "id": world.instances["a5"]}  # no nodes at all
    data = await data_of(engine, NODE_COUNTS, a5, workspace=world.workspace)
    assert data["instance"]["nodes"] == {"totalCount": 0, "countsByStatus": node_counts()}


NESTED = """
{
  jobs(first: 50) {
    nodes {
      instances(first: 50) {
        countsByStatus { count }
        nodes { nodes { countsByStatus { count } } }
      }
    }
  }
}
"""


async def test_one_statement_per_stats_field_whatever_the_parents(
    engine: AsyncEngine, statements: StatementCounter
) -> None:
    """jobs, their instances, the instances' nodes, and one statement for each of the two
    countsByStatus fields: the same five for one job as for many."""
    few = await new_workspace(engine)
    many = await new_workspace(engine)
    for space, jobs in ((few, 1), (many, 6)):
        for _ in range(jobs):
            job = await make_job(engine, space)
            for _ in range(3):
                await make_nodes(engine, await make_instance(engine, job), 2)
    found = []
    for space in (few, many):
        statements.reset()
        await data_of(engine, NESTED, workspace=space.name, using=schema)
        found.append(statements.count)
    assert found == [5, 5], statements.statements


async def test_counts_never_cross_workspaces(engine: AsyncEngine, world: World) -> None:
    # The same job names in another workspace, with runs of their own.
    other = await new_workspace(engine)
    for name in ("alpha", "beta"):
        job = await make_job(engine, other, name)
        await make_instance(engine, job, status="REJECTED")
    data = await data_of(engine, ROOT_COUNTS, workspace=world.workspace)
    assert data["instances"]["countsByStatus"] == counts(WAITING=1, RUNNING=1, SUCCESS=3, FAIL=2)
    data = await data_of(engine, ROOT_COUNTS, workspace=other.name)
    assert data["instances"]["countsByStatus"] == counts(REJECTED=2)
    data = await data_of(engine, ROOT_COUNTS, workspace="no-such-workspace")
    assert data["instances"]["countsByStatus"] == counts()
