"""Realtime Compute GetInstance: states, job type, root-less and rooted XML."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobql.importers import parse_body
from jobql.importers.flink_instance import parse
from tests.importers.support import example, utc


def body(**changes: Any) -> str:
    instance = {
        "JobName": "job1",
        "Id": 412536,
        "ActualState": "RUNNING",
        "StartTime": 1599794335000,
        **changes,
    }
    return json.dumps({"RequestId": "r", "Instance": instance})


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("WAITING", "WAITING"),
        ("RUNNING", "RUNNING"),
        ("PAUSED", "PAUSE"),
        ("TERMINATED", "MANUAL_STOP"),
        ("SUCCESS", "SUCCESS"),
        ("FAILED", "FAIL"),
    ],
)
def test_actual_state_maps_to_the_status_and_is_kept(state: str, status: str) -> None:
    values = parse(body(ActualState=state, ExpectState=state), source="f").instances[0].values
    assert values["status"] == status
    assert values["runtime_actual_state"] == values["runtime_expect_state"] == state


@pytest.mark.parametrize(
    ("job_type", "expected"), [("FLINK_STREAM", "REALTIME"), ("FLINK_BATCH", "BATCH")]
)
def test_job_type(job_type: str, expected: str) -> None:
    parsed = parse(body(JobType=job_type), source="f")
    assert parsed.instances[0].job_values == {"type": expected}
    assert parsed.jobs[0].values == {"type": expected}


def test_minimal_instance_reports_only_what_it_has() -> None:
    [record] = parse(body(), source="f").instances
    assert record.workspace == "default"
    assert record.values == {
        "status": "RUNNING",
        "plan_time": utc(2020, 9, 11, 3, 18, 55),
        "start_time": utc(2020, 9, 11, 3, 18, 55),
        "runtime_actual_state": "RUNNING",
    }
    assert record.job_values == {}
    assert parse(body(), source="f", workspace="w").instances[0].workspace == "w"


def test_end_and_error_times_and_message() -> None:
    [record] = parse(
        body(EndTime=1548397575000, LastErrorTime=1548397575000, LastErrorMessage="error"),
        source="f",
    ).instances
    assert record.values["end_time"] == utc(2019, 1, 25, 6, 26, 15)
    assert record.values["runtime_last_error_time"] == utc(2019, 1, 25, 6, 26, 15)
    assert record.values["runtime_last_error_message"] == "error"


def test_packages_and_empty_texts_are_kept_verbatim() -> None:
    values = (
        parse(body(Packages="a.jar,b.jar", PlanJson="", Code=""), source="f").instances[0].values
    )
    assert values["runtime_packages"] == "a.jar,b.jar"
    assert values["runtime_plan_json"] == values["runtime_code"] == ""


def test_root_less_and_rooted_xml_parse_alike() -> None:
    rootless = example("004_example.xml")
    declaration = '<?xml version="1.0" encoding="UTF-8"?>\n'
    rooted = f"{declaration}<GetInstanceResponse>\n{rootless}</GetInstanceResponse>\n"
    first = parse_body(rootless, source="f").instances
    second = parse_body(rooted, source="f").instances
    assert first == second
    assert first[0].values["runtime_plan_json"] == ""


def test_xml_and_json_examples_give_the_same_record() -> None:
    from_xml = parse_body(example("004_example.xml"), source="f")
    from_json = parse_body(example("004_example.json"), source="f")
    assert from_xml == from_json


def test_schedulerx_xml_and_json_examples_give_the_same_record() -> None:
    from_xml = parse_body(example("002_example.xml"), source="s")
    from_json = parse_body(example("002_example.json"), source="s")
    assert from_xml == from_json
