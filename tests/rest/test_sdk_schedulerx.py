"""SchedulerX's own Python SDK against a live jobql: the client people use, unchanged.

`alibabacloud-schedulerx220190430`'s `Client` on `alibabacloud-tea-openapi`, with the default
`Config` (only the endpoint, plain http and dummy keys): it signs ACS3-HMAC-SHA256 and names the
operation in the `x-acs-action` header, with no `?Action=`. jobql runs in a uvicorn server on a
free port in a thread (`tests.rest.live`: the SDK's client is synchronous and speaks real
HTTP), on each backend.
"""

from __future__ import annotations

import asyncio
import typing
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from alibabacloud_schedulerx220190430 import models as sx
from alibabacloud_schedulerx220190430.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.utils_models import Config
from sqlalchemy.ext.asyncio import AsyncEngine
from Tea.exceptions import TeaException

from jobql.rest.formats import epoch_ms
from tests.factories import BASE_TIME, Ref, make_instance, make_job, new_workspace
from tests.rest.live import live_app
from tests.rest.support import import_example

DETAILS = sx.GetJobInstanceListResponseBodyDataJobInstanceDetails


@pytest.fixture(scope="session")
def schedulerx_endpoint(engine: AsyncEngine) -> Iterator[str]:
    """`host:port` of the whole app (as `jobql serve` builds it) on the test database."""
    with live_app(engine) as url:
        yield url.removeprefix("http://")


def sdk_client(endpoint: str, **config: Any) -> Client:
    """The SDK's client with its default configuration: endpoint, http, dummy keys."""
    return Client(
        Config(
            access_key_id="dummy-access-key-id",
            access_key_secret="dummy-access-key-secret",
            endpoint=endpoint,
            protocol="http",
            **config,
        )
    )


async def call(endpoint: str, **fields: Any) -> sx.GetJobInstanceListResponse:
    """GetJobInstanceList through the SDK's default client (in a thread: it blocks)."""
    client = sdk_client(endpoint)
    assert client._signature_algorithm is None  # the default: ACS3-HMAC-SHA256, x-acs-action
    request = sx.GetJobInstanceListRequest(
        group_id="testSchedulerx.defaultGroup", region_id="cn-hangzhou", **fields
    )
    return await asyncio.to_thread(client.get_job_instance_list, request)


def details_of(response: sx.GetJobInstanceListResponse) -> list[Any]:
    assert response.status_code == 200
    body = response.body
    assert body.success is True
    assert body.code == 200
    assert body.message is None
    assert response.headers["x-request-id"] == body.request_id
    found: list[Any] = body.data.job_instance_details
    return found


def instance_ids(response: sx.GetJobInstanceListResponse) -> list[int]:
    return [item.instance_id for item in details_of(response)]


def field_types(model: type) -> dict[str, type]:
    """The fields of an SDK model and the types it declares for them."""
    hints = typing.get_type_hints(vars(model)["__init__"])
    hints.pop("return", None)
    return hints


def ms(minutes: int) -> int:
    """The epoch milliseconds of BASE_TIME + `minutes`."""
    value = epoch_ms(BASE_TIME + timedelta(minutes=minutes))
    assert value is not None
    return value


async def job_with_runs(engine: AsyncEngine, statuses: list[str], job_id: int = 92583) -> Ref:
    """A job whose instance n (1..) is planned at BASE_TIME + n minutes, with statuses[n-1]."""
    workspace = await new_workspace(engine)
    job = await make_job(engine, workspace, str(job_id), vendor_job_id=job_id)
    for n, status in enumerate(statuses, 1):
        await make_instance(
            engine,
            job,
            vendor_instance_id=n,
            status=status,
            plan_time=BASE_TIME + timedelta(minutes=n),
        )
    return workspace


async def test_the_default_client_reads_every_field_typed_as_the_model_declares(
    engine: AsyncEngine, schedulerx_endpoint: str
) -> None:
    workspace = (await new_workspace(engine)).name
    await import_example(engine, "002_example.json", workspace)
    response = await call(schedulerx_endpoint, job_id=92583, namespace=workspace)
    body = response.body
    for name, declared in field_types(sx.GetJobInstanceListResponseBody).items():
        if name == "message":
            continue  # only on errors
        value = getattr(body, name)
        assert value is not None, name
        assert type(value) is declared, (name, value)
    (item,) = details_of(response)
    for name, declared in field_types(DETAILS).items():
        value = getattr(item, name)
        assert value is not None, name
        assert type(value) is declared, (name, value)
    assert item.to_map() == {
        "DataTime": "2020-07-27 11:52:10",
        "EndTime": "2020-07-27 11:52:10",
        "Executor": "A",
        "InstanceId": 11111111,
        "JobId": 92583,
        "Progress": "complete",
        "Result": "success",
        "ScheduleTime": "2020-07-27 11:52:10",
        "StartTime": "2020-07-27 11:52:10",
        "Status": 4,
        "TimeType": 1,
        "TriggerType": 3,
        "WorkAddr": "192.168.0.0:16",
    }


async def test_signature_v2_reaches_the_same_answer(
    engine: AsyncEngine, schedulerx_endpoint: str
) -> None:
    workspace = await job_with_runs(engine, ["SUCCESS"] * 3)
    client = sdk_client(schedulerx_endpoint, signature_algorithm="v2")  # `?Action=` style
    request = sx.GetJobInstanceListRequest(job_id=92583, namespace=workspace.name, page_size=2)
    response = await asyncio.to_thread(client.get_job_instance_list, request)
    assert instance_ids(response) == [3, 2]


async def test_the_default_is_the_latest_ten_newest_first(
    engine: AsyncEngine, schedulerx_endpoint: str
) -> None:
    workspace = await job_with_runs(engine, ["SUCCESS"] * 12)
    response = await call(schedulerx_endpoint, job_id=92583, namespace=workspace.name)
    assert instance_ids(response) == list(range(12, 2, -1))


async def test_pages_count_from_one(engine: AsyncEngine, schedulerx_endpoint: str) -> None:
    workspace = (await job_with_runs(engine, ["SUCCESS"] * 12)).name
    pages = [
        instance_ids(
            await call(
                schedulerx_endpoint, job_id=92583, namespace=workspace, page_num=n, page_size=5
            )
        )
        for n in (1, 2, 3, 4)
    ]
    assert pages == [[12, 11, 10, 9, 8], [7, 6, 5, 4, 3], [2, 1], []]
    second = await call(schedulerx_endpoint, job_id=92583, namespace=workspace, page_num=2)
    assert instance_ids(second) == [2, 1]  # PageSize defaults to 10


async def test_status_keeps_the_instances_shown_with_that_code(
    engine: AsyncEngine, schedulerx_endpoint: str
) -> None:
    # 1 waiting, 2 failed, 3 succeeded, 4 stopped by hand (shown as failed), 5 succeeded
    statuses = ["WAITING", "FAIL", "SUCCESS", "MANUAL_STOP", "SUCCESS"]
    workspace = (await job_with_runs(engine, statuses)).name
    # The request: one instance, a successful one.
    one = await call(schedulerx_endpoint, job_id=92583, namespace=workspace, page_size=1, status=4)
    ((item,),) = [details_of(one)]
    assert (item.instance_id, item.status) == (5, 4)
    failed = await call(schedulerx_endpoint, job_id=92583, namespace=workspace, status=5)
    assert [(i.instance_id, i.status) for i in details_of(failed)] == [(4, 5), (2, 5)]
    rejected = await call(schedulerx_endpoint, job_id=92583, namespace=workspace, status=9)
    assert instance_ids(rejected) == []


async def test_timestamps_bound_the_schedule_time_both_included(
    engine: AsyncEngine, schedulerx_endpoint: str
) -> None:
    workspace = (await job_with_runs(engine, ["SUCCESS", "FAIL"] * 6)).name
    window = {"start_timestamp": ms(3), "end_timestamp": ms(7)}
    inside = await call(schedulerx_endpoint, job_id=92583, namespace=workspace, **window)
    assert instance_ids(inside) == [7, 6, 5, 4, 3]
    assert details_of(inside)[0].schedule_time == "2019-03-04 04:00:00"
    since = await call(
        schedulerx_endpoint, job_id=92583, namespace=workspace, start_timestamp=ms(10)
    )
    assert instance_ids(since) == [12, 11, 10]
    until = await call(schedulerx_endpoint, job_id=92583, namespace=workspace, end_timestamp=ms(2))
    assert instance_ids(until) == [2, 1]
    one_ms = await call(
        schedulerx_endpoint,
        job_id=92583,
        namespace=workspace,
        start_timestamp=ms(5),
        end_timestamp=ms(5),
    )
    assert instance_ids(one_ms) == [5]
    everything = await call(
        schedulerx_endpoint,
        job_id=92583,
        namespace=workspace,
        status=5,
        page_num=2,
        page_size=1,
        **window,
    )
    assert instance_ids(everything) == [4]  # failed in 3..7: 6 and 4; the second page of one


async def raised_by(endpoint: str, **fields: Any) -> ClientException:
    with pytest.raises(TeaException) as caught:
        await call(endpoint, **fields)
    error = caught.value
    assert isinstance(error, ClientException)  # the SDK's own type for a 4xx
    assert error.request_id
    assert error.data is not None
    assert error.data["RequestId"] == error.request_id
    assert error.data["Success"] is False
    return error


async def test_an_unknown_job_is_the_sdks_404(
    engine: AsyncEngine, schedulerx_endpoint: str
) -> None:
    workspace = (await new_workspace(engine)).name
    error = await raised_by(schedulerx_endpoint, job_id=404404, namespace=workspace)
    assert (error.status_code, error.code) == (404, "404")
    assert "404404" in error.message


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"page_num": 0}, "PageNum"),
        ({"page_size": 0}, "PageSize"),
        ({"page_size": 1001}, "PageSize"),
        ({"status": 2}, "Status"),
        ({"start_timestamp": -1}, "StartTimestamp"),
        ({"end_timestamp": 253402300800000}, "EndTimestamp"),  # after year 9999
        ({"start_timestamp": 2, "end_timestamp": 1}, "StartTimestamp"),
        ({}, "JobId"),
    ],
)
async def test_a_bad_parameter_is_the_sdks_400(
    schedulerx_endpoint: str, fields: dict[str, Any], named: str
) -> None:
    fields = {"job_id": 92583, **fields} if named != "JobId" else fields
    error = await raised_by(schedulerx_endpoint, namespace="default", **fields)
    assert (error.status_code, error.code) == (400, "400")
    assert named in error.message


async def test_the_async_client_too(engine: AsyncEngine, schedulerx_endpoint: str) -> None:
    workspace = await job_with_runs(engine, ["SUCCESS", "FAIL", "SUCCESS"])
    request = sx.GetJobInstanceListRequest(job_id=92583, namespace=workspace.name, status=4)
    response = await sdk_client(schedulerx_endpoint).get_job_instance_list_async(request)
    assert instance_ids(response) == [3, 1]
    with pytest.raises(ClientException) as caught:
        await sdk_client(schedulerx_endpoint).get_job_instance_list_async(
            sx.GetJobInstanceListRequest(job_id=92583, namespace=workspace.name, page_size=0)
        )
    assert (caught.value.code, caught.value.status_code) == ("400", 400)
