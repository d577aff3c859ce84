"""The GraphQL answers of two jobqls about the same jobs, side by side: every instance with every
field, its dispatch and runtime facets and its nodes (ids and cursors aside: they name each
store's own rows)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.collect.upstream import graphql

JOB = """
query Job($name: String!, $after: String) {
  job(name: $name) {
    name jobId type parentNodeName parent { name }
    instances(first: 100, after: $after, orderBy: {field: INSTANCE_ID, direction: ASC}) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes {
        instanceId jobName jobInstanceName status instanceType planTime startTime endTime
        submitTime executeTime forceSuccess ignoreSuccess version durationMs
        dispatch {
          triggerType timeType workerAddress executor progress result dataTime scheduleTime
        }
        runtime {
          actualState expectState apiType engineVersion clusterId queueName engineJobHandler code
          properties planJson packages inputDelay autoScaleParams lastErrorMessage lastErrorTime
          lastOperator lastOperateTime starter
        }
        nodes(first: 100) {
          totalCount
          nodes {
            name type status planTime startTime endTime submitTime retryTimes inputRowCount speed
            logPath durationMs
          }
        }
      }
    }
  }
}
"""
WORKSPACE = """
query Workspace($after: String) {
  jobs(first: 1000, after: $after) { nodes { name } pageInfo { hasNextPage endCursor } }
  instances { totalCount }
}
"""


async def job_answer(http: httpx.AsyncClient, workspace: str, name: str) -> dict[str, Any] | None:
    """The job with all its instances (every page), as one JSON value; None when unknown."""
    instances: list[Any] = []
    after = None
    job: dict[str, Any] | None = None
    while True:
        response = await http.post(
            "/graphql",
            json={"query": JOB, "variables": {"name": name, "after": after}},
            headers={"workspace": workspace, "accept": "application/json"},
        )
        body = response.json()
        if body["data"]["job"] is None:
            return None
        assert not body.get("errors"), body["errors"]
        job = body["data"]["job"]
        page = job["instances"]
        instances.extend(page["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert job is not None
    job["instances"] = {"totalCount": job["instances"]["totalCount"], "nodes": instances}
    return job


async def workspace_answer(http: httpx.AsyncClient, workspace: str) -> dict[str, Any]:
    names: list[str] = []
    after = None
    while True:
        data = await graphql(http, WORKSPACE, {"after": after}, workspace)
        names.extend(node["name"] for node in data["jobs"]["nodes"])
        if not data["jobs"]["pageInfo"]["hasNextPage"]:
            return {"jobs": names, "instances": data["instances"]["totalCount"]}
        after = data["jobs"]["pageInfo"]["endCursor"]


async def assert_same_jobs(
    upstream: httpx.AsyncClient,
    upstream_workspace: str,
    mirror: httpx.AsyncClient,
    mirror_workspace: str,
    jobs: list[str],
) -> int:
    """Every job's answer is the same on both sides, and no instance is listed twice. Returns
    the number of instances compared."""
    compared = 0
    for name in jobs:
        expected = await job_answer(upstream, upstream_workspace, name)
        found = await job_answer(mirror, mirror_workspace, name)
        assert expected is not None, f"upstream has no job {name}"
        assert found is not None, f"the collector stored no job {name}"
        keys = [item["instanceId"] for item in found["instances"]["nodes"]]
        assert len(keys) == len(set(keys)), f"{name}: an instance is stored twice"
        if found != expected:
            _explain(name, expected, found)
        compared += len(keys)
    return compared


def _explain(name: str, expected: dict[str, Any], found: dict[str, Any]) -> None:
    """Fail with the first differences, readable (not two whole jobs)."""
    lines = []
    for key in expected:
        if key != "instances" and expected[key] != found.get(key):
            lines.append(f"job.{key}: upstream {expected[key]!r}, collected {found.get(key)!r}")
    want = {i["instanceId"]: i for i in expected["instances"]["nodes"]}
    got = {i["instanceId"]: i for i in found["instances"]["nodes"]}
    for key in sorted(want.keys() - got.keys())[:5]:
        lines.append(
            f"instance {key}: missing ({want[key]['status']}, plan {want[key]['planTime']})"
        )
    for key in sorted(got.keys() - want.keys())[:5]:
        lines.append(f"instance {key}: not upstream")
    for key in sorted(want.keys() & got.keys()):
        for field, value in want[key].items():
            if got[key].get(field) != value:
                lines.append(
                    f"instance {key}.{field}: upstream {value!r}, collected {got[key].get(field)!r}"
                )
        if len(lines) > 12:
            break
    raise AssertionError(f"job {name} differs:\n  " + "\n  ".join(lines))
