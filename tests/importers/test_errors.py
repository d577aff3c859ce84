"""Bodies that cannot be imported: each error names the file, the record and the problem."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobql.importers import ImportFormatError, parse_body
from tests.importers.support import example


def v1_list(*instances: dict[str, Any]) -> str:
    return json.dumps({"total": len(instances), "instances": list(instances)})


def v1_instance(**changes: Any) -> dict[str, Any]:
    instance: dict[str, Any] = {
        "jobName": "job_batch",
        "instanceId": 34765,
        "status": "success",
        "planTime": 1551671580000,
    }
    instance.update(changes)
    return {key: value for key, value in instance.items() if value is not ...}


def v2_instance(**changes: Any) -> dict[str, Any]:
    instance: dict[str, Any] = {
        "job_name": "job_batch",
        "instance_id": 34765,
        "status": "success",
        "plan_time": 1551671580000,
    }
    instance.update(changes)
    return {key: value for key, value in instance.items() if value is not ...}


def raw_instance(**raw: str) -> str:
    """A v1 list whose instance fields are JSON text (numbers json.dumps would not write)."""
    fields = {"jobName": '"j"', "instanceId": "1", "status": '"running"', "planTime": "1", **raw}
    inner = ", ".join(f'"{key}": {value}' for key, value in fields.items())
    return f'{{"instances": [{{{inner}}}]}}'


def schedulerx(**changes: Any) -> str:
    detail: dict[str, Any] = {
        "Status": 4,
        "InstanceId": 11111111,
        "ScheduleTime": "2020-07-27 11:52:10",
        "JobId": 92583,
    }
    detail.update(changes)
    detail = {key: value for key, value in detail.items() if value is not ...}
    return json.dumps({"Data": {"JobInstanceDetails": [detail]}, "Code": 200, "Success": True})


def flink(**changes: Any) -> str:
    instance: dict[str, Any] = {
        "JobName": "job1",
        "Id": 412536,
        "ActualState": "RUNNING",
        "StartTime": 1599794335000,
        "ProjectName": "project1",
    }
    instance.update(changes)
    instance = {key: value for key, value in instance.items() if value is not ...}
    return json.dumps({"RequestId": "r", "Instance": instance})


def error_of(body: str, source: str = "runs.json", **options: Any) -> str:
    with pytest.raises(ImportFormatError) as caught:
        parse_body(body, source=source, **options)
    error = caught.value
    assert str(error).startswith(f"{source}: ")
    assert error.source == source
    return str(error)


def test_the_error_carries_its_parts() -> None:
    with pytest.raises(ImportFormatError) as caught:
        parse_body(
            v1_list(v1_instance(), v1_instance(instanceId=2, status="done")), source="r.json"
        )
    error = caught.value
    assert isinstance(error, ValueError)
    assert (error.source, error.record, error.problem) == (
        "r.json",
        "instances[1]",
        "unknown status 'done'",
    )
    assert str(error) == "r.json: instances[1]: unknown status 'done'"


def test_truncated_json_names_line_and_column() -> None:
    body = example("000_example1.json")[:200]
    message = error_of(body)
    assert message.startswith("runs.json: truncated or invalid JSON at line ")
    lines = body.count("\n") + 1
    assert f"at line {lines} column " in message


def test_truncated_json_exact_position() -> None:
    body = '{\n  "total": 1,\n  "instances": [\n    {"jobName": "a",\n'
    assert error_of(body) == (
        "runs.json: truncated or invalid JSON at line 5 column 1: "
        "Expecting property name enclosed in double quotes"
    )


def test_truncated_xml_names_line_and_column() -> None:
    body = example("002_example.xml")[:300]
    assert error_of(body, "x.xml") == (
        "x.xml: truncated or invalid XML at line 8 column 15: "
        "the body ends before its elements are closed"
    )


def test_invalid_xml_on_the_first_line_reports_the_body_s_own_column() -> None:
    assert error_of("<Instance><Id>1</Id></Instanc>", "x.xml") == (
        "x.xml: truncated or invalid XML at line 1 column 23: mismatched tag"
    )


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (v1_list(v1_instance(status="done")), "instances[0]: unknown status 'done'"),
        (v1_list(v1_instance(status="SUCCESS")), "instances[0]: unknown status 'SUCCESS'"),
        (v1_list(v1_instance(status=4)), "instances[0]: unknown status 4"),
        (v1_list(v1_instance(status=True)), "instances[0]: status true is not a code"),
        (v1_list(v1_instance(status="rejected")), "instances[0]: unknown status 'rejected'"),
        (
            json.dumps({"instances": [v2_instance(instance_type=3)]}),
            "instances[0]: unknown instance_type 3",
        ),
        (schedulerx(Status=7), "Data.JobInstanceDetails[0]: unknown Status 7"),
        (schedulerx(Status="4"), "Data.JobInstanceDetails[0]: unknown Status '4'"),
        (schedulerx(TriggerType=6), "Data.JobInstanceDetails[0]: unknown TriggerType 6"),
        (schedulerx(TimeType=2), "Data.JobInstanceDetails[0]: unknown TimeType 2"),
        (schedulerx(TimeType=True), "Data.JobInstanceDetails[0]: TimeType true is not a code"),
        (flink(ActualState="STOPPED"), "Instance: unknown ActualState 'STOPPED'"),
        (flink(ExpectState="paused"), "Instance: unknown ExpectState 'paused'"),
        (flink(ApiType="JAR"), "Instance: unknown ApiType 'JAR'"),
        (flink(JobType="FLINK_SQL"), "Instance: unknown JobType 'FLINK_SQL'"),
    ],
)
def test_unknown_codes_are_errors_never_defaults(body: str, problem: str) -> None:
    assert error_of(body) == f"runs.json: {problem}"


def test_unknown_node_status() -> None:
    body = json.dumps(
        {**v1_instance(), "nodes": [{"nodeName": "n", "type": "Dummy", "status": "ok"}]}
    )
    assert error_of(body) == "runs.json: nodes[0]: unknown status 'ok'"


def test_unknown_code_in_xml() -> None:
    body = example("002_example.xml").replace("<Status>4</Status>", "<Status>7</Status>")
    assert error_of(body, "x.xml") == "x.xml: Data.JobInstanceDetails: unknown Status '7'"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            v1_list(v1_instance(), v1_instance(instanceId=2, planTime=...)),
            "instances[1]: missing required field planTime",
        ),
        (v1_list(v1_instance(jobName=...)), "instances[0]: missing required field jobName"),
        (v1_list(v1_instance(instanceId=None)), "instances[0]: missing required field instanceId"),
        (v1_list(v1_instance(status=...)), "instances[0]: missing required field status"),
        (
            json.dumps({"instances": [v2_instance(plan_time=...)]}),
            "instances[0]: missing required field plan_time",
        ),
        (
            json.dumps({"instances": [v2_instance(job_name=...)]}),
            "instances[0]: missing required field job_name",
        ),
        (json.dumps(v1_instance(planTime=...)), "instance: missing required field planTime"),
        (
            schedulerx(ScheduleTime=...),
            "Data.JobInstanceDetails[0]: missing required field ScheduleTime",
        ),
        (schedulerx(JobId=...), "Data.JobInstanceDetails[0]: missing required field JobId"),
        (
            schedulerx(InstanceId=...),
            "Data.JobInstanceDetails[0]: missing required field InstanceId",
        ),
        (schedulerx(Status=...), "Data.JobInstanceDetails[0]: missing required field Status"),
        (flink(StartTime=...), "Instance: missing required field StartTime"),
        (flink(JobName=...), "Instance: missing required field JobName"),
        (flink(Id=...), "Instance: missing required field Id"),
        (flink(ActualState=...), "Instance: missing required field ActualState"),
        ('{"RequestId": "r", "Instance": null}', "missing required field Instance"),
        ('{"Success": true, "Code": 200}', "missing required field Data"),
    ],
)
def test_missing_required_fields_are_named_as_the_source_spells_them(body: str, field: str) -> None:
    assert error_of(body) == f"runs.json: {field}"


def test_missing_required_node_fields() -> None:
    body = json.dumps({**v1_instance(), "nodes": [{"nodeName": "n", "status": "success"}]})
    assert error_of(body) == "runs.json: nodes[0]: missing required field type"
    body = json.dumps({**v1_instance(), "nodes": [{"type": "Dummy", "status": "success"}]})
    assert error_of(body) == "runs.json: nodes[0]: missing required field nodeName"


def test_missing_required_field_in_xml() -> None:
    body = example("004_example.xml").replace("<JobName>job1</JobName>", "")
    assert error_of(body, "x.xml") == "x.xml: Instance: missing required field JobName"
    body = example("004_example.xml").replace(
        "<StartTime>1599794335000</StartTime>", "<StartTime/>"
    )
    assert error_of(body, "x.xml") == "x.xml: Instance: missing required field StartTime"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            v1_list(v1_instance(instanceId=2**70)),
            "instances[0]: instanceId 1180591620717411303424 is not a 64-bit integer",
        ),
        (
            v1_list(v1_instance(instanceId=2**63)),
            "instances[0]: instanceId 9223372036854775808 is not a 64-bit integer",
        ),
        (
            raw_instance(instanceId="1e30"),
            "instances[0]: instanceId 1e30 is not a 64-bit integer",
        ),
        (
            raw_instance(instanceId="34765.0"),
            "instances[0]: instanceId 34765.0 is not a 64-bit integer",
        ),
        (
            v1_list(v1_instance(planTime=2**70)),
            "instances[0]: planTime 1180591620717411303424 is not a 64-bit integer",
        ),
        (
            v1_list(v1_instance(planTime=2**62)),
            "instances[0]: planTime 4611686018427387904 is out of range for a time in epoch "
            "milliseconds",
        ),
        (
            json.dumps({"instances": [v2_instance(job_id=2**70)]}),
            "instances[0]: job_id 1180591620717411303424 is not a 64-bit integer",
        ),
        (
            json.dumps({"instances": [v2_instance(version=2**31)]}),
            "instances[0]: version 2147483648 is not a 32-bit integer",
        ),
        (
            schedulerx(InstanceId=2**70),
            "Data.JobInstanceDetails[0]: InstanceId 1180591620717411303424 is not a 64-bit integer",
        ),
        (
            flink(InputDelay=-(2**64)),
            "Instance: InputDelay -18446744073709551616 is not a 64-bit integer",
        ),
        (
            raw_instance(executeTime="1e999"),
            "instances[0]: executeTime 1e999 is not a number",
        ),
        (
            v1_list(v1_instance(executeTime=2**70)),
            "instances[0]: executeTime 1180591620717411303424 is not a number",
        ),
    ],
)
def test_huge_numbers_are_errors(body: str, problem: str) -> None:
    assert error_of(body) == f"runs.json: {problem}"


def test_huge_number_in_xml() -> None:
    body = example("004_example.xml").replace("<Id>412536</Id>", f"<Id>{2**70}</Id>")
    assert error_of(body, "x.xml") == (
        "x.xml: Instance: Id '1180591620717411303424' is not a 64-bit integer"
    )


def test_a_number_with_thousands_of_digits_is_invalid_json() -> None:
    body = '{"instances": [{"instanceId": ' + "9" * 5000 + "}]}"
    assert error_of(body).startswith("runs.json: invalid JSON: ")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            v1_list(v1_instance(instanceId=True)),
            "instances[0]: instanceId true is not a 64-bit integer",
        ),
        (
            v1_list(v1_instance(planTime=False)),
            "instances[0]: planTime false is not a 64-bit integer",
        ),
        (v1_list(v1_instance(executeTime=True)), "instances[0]: executeTime true is not a number"),
        (
            json.dumps({"instances": [v2_instance(version=True)]}),
            "instances[0]: version true is not a 32-bit integer",
        ),
        (
            json.dumps({"instances": [v2_instance(force_success=1)]}),
            "instances[0]: force_success 1 is not a boolean (true or false)",
        ),
        (
            json.dumps({"instances": [v2_instance(ignore_success="false")]}),
            "instances[0]: ignore_success 'false' is not a boolean (true or false)",
        ),
        (schedulerx(JobId=True), "Data.JobInstanceDetails[0]: JobId true is not a 64-bit integer"),
        (schedulerx(Status=True), "Data.JobInstanceDetails[0]: Status true is not a code"),
        (flink(Id=True), "Instance: Id true is not a 64-bit integer"),
    ],
)
def test_booleans_are_not_numbers(body: str, problem: str) -> None:
    assert error_of(body) == f"runs.json: {problem}"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            v1_list(v1_instance(instanceId="34765")),
            "instances[0]: instanceId '34765' is not a 64-bit integer",
        ),
        (v1_list(v1_instance(jobName=5)), "instances[0]: jobName 5 is not a string"),
        (v1_list(v1_instance(jobName="  ")), "instances[0]: jobName is empty"),
        (
            v1_list(v1_instance(jobInstanceName=["a"])),
            "instances[0]: jobInstanceName (a list) is not a string",
        ),
        (v1_list(v1_instance(), 5), "instances[1]: expected an object, got 5"),
        ('{"total": 1, "instances": {"jobName": "j"}}', "instances (an object) is not a list"),
        (
            schedulerx(ScheduleTime="2020-07-27T11:52:10Z"),
            "Data.JobInstanceDetails[0]: ScheduleTime '2020-07-27T11:52:10Z' is not a time "
            "'YYYY-MM-DD HH:MM:SS'",
        ),
        (
            schedulerx(ScheduleTime="2020-13-27 11:52:10"),
            "Data.JobInstanceDetails[0]: ScheduleTime '2020-13-27 11:52:10' is not a valid time",
        ),
        (
            schedulerx(StartTime=1595850730000),
            "Data.JobInstanceDetails[0]: StartTime 1595850730000 is not a time "
            "'YYYY-MM-DD HH:MM:SS'",
        ),
        (
            flink(AutoScaleParams={"isOnOff": False}),
            "Instance: AutoScaleParams (an object) is not a string",
        ),
        (
            flink(StartTime="1599794335000"),
            "Instance: StartTime '1599794335000' is not a 64-bit integer",
        ),
    ],
)
def test_wrong_types_are_errors(body: str, problem: str) -> None:
    assert error_of(body) == f"runs.json: {problem}"


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_json_numbers_are_refused(constant: str) -> None:
    body = raw_instance(executeTime=constant)
    assert error_of(body) == f"runs.json: invalid JSON: {constant} is not a JSON number"


@pytest.mark.parametrize("name", ["002_example.json", "002_example.xml"])
def test_success_false_is_refused_with_its_code_and_message(name: str) -> None:
    body = (
        example(name)
        .replace('"Success": true', '"Success": false')
        .replace("<Success>true</Success>", "<Success>false</Success>")
        .replace('"Code": 200', '"Code": 500')
        .replace("<Code>200</Code>", "<Code>500</Code>")
    )
    assert error_of(body, name) == (
        f"{name}: the body is an error response, not data (Success: false): Code 500, "
        "Message 'jobid: 92583 not match groupId: testSchedulerx.defaultGroup'"
    )


def test_success_false_is_refused_whatever_format_says() -> None:
    body = '{"Success": false, "Code": "Throttling", "Message": "slow down", "RequestId": "r"}'
    for format in (None, "schedulerx", "dlf-v1-list"):
        assert error_of(body, format=format) == (
            "runs.json: the body is an error response, not data (Success: false): "
            "Code Throttling, Message 'slow down'"
        )


def test_an_alibaba_error_reply_without_success_is_refused() -> None:
    body = '{"RequestId": "r", "HostId": "h", "Code": "InvalidJob.NotFound", "Message": "no job"}'
    assert error_of(body) == (
        "runs.json: the body is an error response, not data (Success: null): "
        "Code InvalidJob.NotFound, Message 'no job'"
    )


def test_success_must_be_a_boolean() -> None:
    body = '{"Success": "yes", "Data": {}}'
    assert error_of(body) == "runs.json: body: Success 'yes' is not a boolean (true or false)"


@pytest.mark.parametrize(
    "body",
    [
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">]>\n<Instance>&lol;</Instance>',
        '<!DOCTYPE Instance SYSTEM "file:///etc/passwd"><Instance/>',
        '<Instance><!ENTITY x "y"></Instance>',
        "<!doctype Instance><Instance/>",
    ],
)
def test_xml_with_a_dtd_or_entities_is_refused(body: str) -> None:
    assert error_of(body, "x.xml") == (
        "x.xml: XML with a DOCTYPE or ENTITY declaration is refused (entities are never expanded)"
    )


def test_an_instance_listed_twice_is_refused() -> None:
    body = v1_list(v1_instance(), v1_instance(status="fail"))
    assert error_of(body) == (
        "runs.json: instances[1]: instance 34765 of job 'job_batch' is listed twice "
        "(first at instances[0])"
    )


def test_the_same_instance_id_in_two_jobs_is_fine() -> None:
    body = v1_list(v1_instance(), v1_instance(jobName="other"))
    assert len(parse_body(body, source="r").instances) == 2


def test_a_job_described_two_ways_is_refused() -> None:
    body = json.dumps({"instances": [v2_instance(job_id=1), v2_instance(instance_id=2, job_id=2)]})
    assert error_of(body) == (
        "runs.json: instances[1]: job 'job_batch': vendor_job_id 2 disagrees with 1 at instances[0]"
    )


def test_exe_time_and_execute_time_must_agree() -> None:
    body = v1_list(v1_instance(executeTime=0.3, exeTime=0.5))
    assert error_of(body) == "runs.json: instances[0]: executeTime 0.3 and exeTime 0.5 disagree"
    same = v1_list(v1_instance(executeTime=0.3, exeTime=0.3))
    assert parse_body(same, source="r").instances[0].values["execute_time"] == 0.3


def test_a_node_of_another_instance_is_refused() -> None:
    node = {"nodeName": "n", "type": "Dummy", "status": "success", "instanceId": 1}
    body = json.dumps({**v1_instance(), "nodes": [node]})
    assert error_of(body) == (
        "runs.json: nodes[0]: instanceId 1 is not the instance's instanceId 34765"
    )


def test_a_node_listed_twice_is_refused() -> None:
    node = {"nodeName": "n", "type": "Dummy", "status": "success"}
    body = json.dumps({**v1_instance(), "nodes": [node, node]})
    assert error_of(body) == "runs.json: nodes[1]: node 'n' is listed twice (first at nodes[0])"


def test_dlf_formats_are_json() -> None:
    body = "<instances><jobName>j</jobName></instances>"
    assert error_of(body, format="dlf-v1-list") == (
        "runs.json: this format is JSON; the body is XML"
    )


def test_stray_text_outside_xml_elements() -> None:
    assert error_of("<Instance/> trailing words", "x.xml") == (
        "x.xml: invalid XML: text outside any element"
    )


def test_xml_numbers_are_ascii_digits() -> None:
    body = example("004_example.xml").replace("<Id>412536</Id>", "<Id>４１２５３６</Id>")
    assert error_of(body, "x.xml") == "x.xml: Instance: Id '４１２５３６' is not a 64-bit integer"
