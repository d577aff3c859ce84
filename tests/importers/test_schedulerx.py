"""SchedulerX GetJobInstanceList: list or single details, workspaces, time zones."""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from jobql.importers import parse_body
from jobql.importers.schedulerx import parse
from tests.importers.support import example, utc


def detail(instance_id: int, **changes: Any) -> dict[str, Any]:
    return {
        "Status": 3,
        "InstanceId": instance_id,
        "ScheduleTime": "2020-07-27 11:52:10",
        "JobId": 92583,
        **changes,
    }


def body(details: Any, **top: Any) -> str:
    return json.dumps({"Data": {"JobInstanceDetails": details}, "Success": True, **top})


def test_a_list_of_details() -> None:
    parsed = parse(body([detail(1), detail(2, Status=9)]), source="sx.json")
    assert [(r.instance_id, r.values["status"], r.source) for r in parsed.instances] == [
        (1, "RUNNING", "sx.json: Data.JobInstanceDetails[0]"),
        (2, "REJECTED", "sx.json: Data.JobInstanceDetails[1]"),
    ]
    assert len(parsed.jobs) == 1


def test_a_single_detail_object_is_the_same_as_a_list_of_one() -> None:
    single = parse(body(detail(1)), source="s").instances
    listed = parse(body([detail(1)]), source="s").instances
    assert [r.values for r in single] == [r.values for r in listed]
    assert single[0].source == "s: Data.JobInstanceDetails"
    assert listed[0].source == "s: Data.JobInstanceDetails[0]"


def test_xml_with_repeated_details() -> None:
    one = example("002_example.xml")
    start = one.index("<JobInstanceDetails>")
    end = one.index("</JobInstanceDetails>") + len("</JobInstanceDetails>")
    second = one[start:end].replace("11111111", "22222222").replace("<Status>4", "<Status>5")
    xml = one[:end] + second + one[end:]
    parsed = parse_body(xml, source="x.xml")
    assert [(r.instance_id, r.values["status"], r.source) for r in parsed.instances] == [
        (11111111, "SUCCESS", "x.xml: Data.JobInstanceDetails[0]"),
        (22222222, "FAIL", "x.xml: Data.JobInstanceDetails[1]"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        body([]),
        json.dumps({"Data": {}, "Success": True}),
        "<GetJobInstanceListResponse><Data/><Success>true</Success></GetJobInstanceListResponse>",
        "<R><Data></Data><Code>200</Code><Success>true</Success></R>",
    ],
)
def test_no_instances(text: str) -> None:
    parsed = parse_body(text, source="s")
    assert (parsed.format, parsed.instances, parsed.jobs) == ("schedulerx", [], [])


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("UTC", utc(2020, 7, 27, 11, 52, 10)),
        ("Asia/Shanghai", utc(2020, 7, 27, 3, 52, 10)),
        ("America/New_York", utc(2020, 7, 27, 15, 52, 10)),  # EDT, UTC-4 in July
    ],
)
def test_local_times_are_read_in_the_timezone(zone: str, expected: Any) -> None:
    parsed = parse(
        body(detail(1, StartTime="2020-07-27 11:52:10.250")),
        source="s",
        timezone=ZoneInfo(zone),
    )
    values = parsed.instances[0].values
    assert values["plan_time"] == values["dispatch_schedule_time"] == expected
    assert values["start_time"] == expected.replace(microsecond=250_000)
    assert values["plan_time"].utcoffset().total_seconds() == 0


def test_shanghai_shifts_every_time_by_eight_hours() -> None:
    name = "002_example.json"
    in_utc = parse_body(example(name), source=name).instances[0].values
    shanghai = ZoneInfo("Asia/Shanghai")
    in_shanghai = parse_body(example(name), source=name, timezone=shanghai).instances[0].values
    times = [key for key, value in in_utc.items() if hasattr(value, "tzinfo")]
    assert times == [
        "plan_time",
        "dispatch_schedule_time",
        "start_time",
        "end_time",
        "dispatch_data_time",
    ]
    for key in times:
        assert (in_utc[key] - in_shanghai[key]).total_seconds() == 8 * 3600


def test_workspace_is_the_namespace_else_the_argument_else_default() -> None:
    assert parse(body(detail(1)), source="s").instances[0].workspace == "default"
    assert parse(body(detail(1)), source="s", workspace="ws1").instances[0].workspace == "ws1"
    with_ns = body(detail(1), Namespace="adcfc35d-e2fe")
    assert parse(with_ns, source="s", workspace="ws1").instances[0].workspace == "adcfc35d-e2fe"
    per_record = body([detail(1, Namespace="ns-a"), detail(2)], Namespace="ns-b")
    assert [r.workspace for r in parse(per_record, source="s").instances] == ["ns-a", "ns-b"]


def test_absent_fields_stay_absent() -> None:
    [record] = parse(body(detail(1)), source="s").instances
    assert record.values == {
        "status": "RUNNING",
        "plan_time": utc(2020, 7, 27, 11, 52, 10),
        "dispatch_schedule_time": utc(2020, 7, 27, 11, 52, 10),
    }
    assert record.job_name == "92583"
    assert record.job_values == {"vendor_job_id": 92583}


@pytest.mark.parametrize(
    ("code", "member"),
    [(1, "WAITING"), (3, "RUNNING"), (4, "SUCCESS"), (5, "FAIL"), (9, "REJECTED")],
)
def test_status_codes(code: int, member: str) -> None:
    assert parse(body(detail(1, Status=code)), source="s").instances[0].values["status"] == member


@pytest.mark.parametrize(
    ("code", "member"),
    [(1, "SCHEDULE"), (2, "DATA_REFRESH"), (3, "API"), (4, "MANUAL_RERUN"), (5, "SYSTEM_RETRY")],
)
def test_trigger_types(code: int, member: str) -> None:
    values = parse(body(detail(1, TriggerType=code)), source="s").instances[0].values
    assert values["dispatch_trigger_type"] == member


@pytest.mark.parametrize(
    ("code", "member"), [(1, "CRON"), (3, "FIX_RATE"), (4, "SECOND_DELAY"), (100, "API")]
)
def test_time_types(code: int, member: str) -> None:
    values = parse(body(detail(1, TimeType=code)), source="s").instances[0].values
    assert values["dispatch_time_type"] == member
