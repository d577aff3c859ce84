"""Drive the ariadne-codegen client (package `jobql_client`) against a live server.

Run by tests/clients/test_python.py with the codegen venv's python and the generated package on
PYTHONPATH: `python use_client.py BASE_URL WORKSPACE_FOR_WRITES`. Prints one JSON object of what
the typed results held; the test compares it with the server's own answers.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime, timedelta
from typing import Any

from jobql_client import (  # type: ignore[import-not-found]  # generated at test time
    InstanceInput,
    InstanceNodeInput,
    InstanceStatus,
    JobqlClient,
    NodeStatus,
)
from jobql_client.refetch_node import (  # type: ignore[import-not-found]
    RefetchNodeNodeInstance,
    RefetchNodeNodeInstanceNode,
    RefetchNodeNodeJob,
)


async def main(base_url: str, workspace: str) -> dict[str, Any]:
    async with JobqlClient(url=f"{base_url}/graphql") as client:
        newest = await client.dashboard_instances(first=1, nodes_first=1)
        top = newest.instances.edges[0].node
        # typed results: DateTime is a datetime, Long an int, enums are Enums
        assert isinstance(top.plan_time, datetime)
        assert top.plan_time.tzinfo is not None
        window = await client.dashboard_instances(
            statuses=[top.status],
            plan_time_after=top.plan_time - timedelta(days=1),
            first=20,
            nodes_first=2,
        )
        listed = [edge.node for edge in window.instances.edges]

        detail = await client.instance_detail(job_name=top.job_name, instance_id=top.instance_id)
        assert detail.instance is not None
        page = await client.job_page(name=top.job_name, first=2)
        assert page.job is not None

        refetched = {}
        for global_id in (
            page.job.id,
            detail.instance.id,
            *[n.id for n in detail.instance.nodes.nodes][:1],
        ):
            node = (await client.refetch_node(id=global_id)).node
            assert isinstance(
                node, RefetchNodeNodeJob | RefetchNodeNodeInstance | RefetchNodeNodeInstanceNode
            )
            refetched[global_id] = type(node).__name__

    async with JobqlClient(url=f"{base_url}/graphql", headers={"workspace": workspace}) as writer:
        recorded = await writer.record_instances(
            create_jobs=True,
            input=[
                InstanceInput(
                    job_name="python_client_job",
                    instance_id=11,
                    status=InstanceStatus.SUCCESS,
                    plan_time=datetime.fromisoformat("2026-02-03T04:05:06+00:00"),
                    nodes=[
                        InstanceNodeInput(name="extract", type="SQL", status=NodeStatus.SUCCESS)
                    ],
                )
            ],
        )
    result = recorded.record_instances.results[0]
    assert result.instance is not None

    return {
        "top": {
            "id": top.id,
            "jobName": top.job_name,
            "instanceId": top.instance_id,
            "status": top.status.value,
            "planTime": top.plan_time.isoformat(),
        },
        "window": [
            {"id": n.id, "status": n.status.value, "planTime": n.plan_time.isoformat()}
            for n in listed
        ],
        "windowTotal": window.instances.total_count,
        "detailNodes": [n.name for n in detail.instance.nodes.nodes],
        "detailNodeCount": detail.instance.nodes.total_count,
        "jobRuns": [run.id for run in page.job.instances.nodes],
        "refetched": refetched,
        "recorded": {
            "outcome": result.outcome.value if result.outcome else None,
            "status": result.instance.status.value,
            "nodes": [(n.name, n.status.value) for n in result.instance.nodes.nodes],
        },
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
