"""Each endpoint costs a fixed number of SQL statements, whatever the page or node count."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import StatementCounter
from tests.factories import BASE_TIME, make_instance, make_job, make_nodes, new_workspace
from tests.rest.conftest import RestClient


async def test_statement_counts(
    engine: AsyncEngine, rest_client: RestClient, statements: StatementCounter
) -> None:
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace, "55", vendor_job_id=55)
    for n in range(1, 31):
        # Inside the v2 window below, whatever the session's instance counter has reached.
        planned = BASE_TIME + timedelta(minutes=n)
        instance = await make_instance(engine, job, vendor_instance_id=n, plan_time=planned)
        await make_nodes(engine, instance, n)
    header = {"workspace": workspace.name}
    window = "min_plan_time=1551600000000&max_plan_time=1551700000000"
    cases = [
        # count + page + the page's jobs (their jobId), whatever the limit
        ("/v1/p/jobs/instances/detail?limit=1", header, 3),
        ("/v1/p/jobs/instances/detail?limit=1000", header, 3),
        # the count only, when the offset is past the end
        ("/v1/p/jobs/instances/detail?offset=30", header, 1),
        # the job, then count + page
        (f"/v2/p/factory/jobs/55/instances/detail?limit=3&{window}", header, 3),
        (f"/v2/p/factory/jobs/55/instances/detail?limit=30&{window}", header, 3),
        # the instance, then its nodes
        ("/v1/p/jobs/55/instances/1", header, 2),
        ("/v1/p/jobs/55/instances/30", header, 2),
        # the job, then the latest ten
        (f"/?Action=GetJobInstanceList&JobId=55&Namespace={workspace.name}", {}, 2),
        # the instance, then its job
        (f"/api/v2/projects/{workspace.name}/jobs/55/instances/30", {}, 2),
    ]
    async with rest_client() as http:
        for path, headers, expected in cases:
            statements.reset()
            response = await http.get(path, headers=headers)
            assert response.status_code == 200, (path, response.text)
            assert statements.count == expected, (path, statements.statements)
