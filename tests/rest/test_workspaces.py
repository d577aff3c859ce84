"""Every source endpoint is confined to the workspace its source names: another workspace's data
is invisible, exactly as if it did not exist."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import BASE_TIME, make_instance, make_job, make_nodes, new_workspace
from tests.rest.support import DLF_INSTANCE_MISSING, DLF_JOB_MISSING

WINDOW = "min_plan_time=1551600000000&max_plan_time=1551700000000"


async def test_another_workspace_is_invisible(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    mine = await new_workspace(engine)
    theirs = await new_workspace(engine)
    job = await make_job(engine, theirs, "42", vendor_job_id=42, type="REALTIME")
    instance = await make_instance(engine, job, vendor_instance_id=7, plan_time=BASE_TIME)
    await make_nodes(engine, instance, 2)
    await make_job(engine, mine, "mine")

    for workspace, visible in [(theirs.name, True), (mine.name, False)]:
        header = {"workspace": workspace}
        listed = await client.get("/v1/p/jobs/instances/detail?jobName=42", headers=header)
        assert listed.json()["total"] == (1 if visible else 0)
        everything = await client.get("/v1/p/jobs/instances/detail", headers=header)
        assert [i["jobName"] for i in everything.json()["instances"]] == (["42"] if visible else [])

        detail = await client.get("/v1/p/jobs/42/instances/7", headers=header)
        if visible:
            assert detail.json()["total"] == 2
        else:
            assert (detail.status_code, detail.json()) == (400, DLF_INSTANCE_MISSING)

        v2 = await client.get(f"/v2/p/factory/jobs/42/instances/detail?{WINDOW}", headers=header)
        if visible:
            assert [i["instance_id"] for i in v2.json()["instances"]] == [7]
        else:
            assert (v2.status_code, v2.json()) == (400, DLF_JOB_MISSING)

        scheduler = await client.get(f"/?Action=GetJobInstanceList&JobId=42&Namespace={workspace}")
        assert scheduler.status_code == (200 if visible else 404)

        flink = await client.get(f"/api/v2/projects/{workspace}/jobs/42/instances/7")
        assert flink.status_code == (200 if visible else 404)


async def test_a_workspace_header_naming_another_workspace_is_refused(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    """Namespace and projectName pick the workspace; a header that disagrees is an error, so a
    gateway or access rule keyed on the header cannot be walked around through the URL."""
    theirs = await new_workspace(engine)
    job = await make_job(engine, theirs, "42", vendor_job_id=42)
    await make_instance(engine, job, vendor_instance_id=7, plan_time=BASE_TIME)
    mine = {"workspace": "someone-else"}
    scheduler = await client.get(
        f"/?Action=GetJobInstanceList&JobId=42&Namespace={theirs.name}", headers=mine
    )
    assert scheduler.status_code == 400
    assert scheduler.json()["Success"] is False
    assert "does not match Namespace" in scheduler.json()["Message"]
    flink = await client.get(f"/api/v2/projects/{theirs.name}/jobs/42/instances/7", headers=mine)
    assert flink.status_code == 400
    assert "does not match projectName" in flink.json()["Message"]
    agreeing = {"workspace": theirs.name}
    same = await client.get(f"/api/v2/projects/{theirs.name}/jobs/42/instances/7", headers=agreeing)
    assert same.status_code == 200
