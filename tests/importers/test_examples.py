"""Every example response of the five seed pages parses to exactly these records."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pytest

from jobql.importers import ImportFormatError, parse_body
from jobql.storage.records import InstanceRecord, JobRecord, NodeRecord
from tests.importers.support import assert_plain_values, example, utc

CODE_004 = (
    "--完整主类名，必填，例如com.alibaba.realtimecompute.DatastreamExample\n"
    "blink.main.class=Hbase_Demo.HbaseDemo\n"
    "\n"
    "--包含完整主类名的JAR包资源名称，多个JAR包时必填，例如blink_datastream.jar\n"
    "--blink.main.jar=hbase_demo-1.0-snapshot.jar \n"
    "\n"
    "--默认state backend配置，当作业代码没有显式声明时生效\n"
    "state.backend.type=niagara\n"
    "state.backend.niagara.ttl.ms=129600000\n"
    "\n"
    "--默认Checkpoint配置，当作业代码没有显式声明时生效\n"
    "blink.checkpoint.interval.ms=180000\n"
    "\n"
    "--默认启用项目参数\n"
    "--enable.project.config=true"
)
PROPERTIES_004 = (
    "#checkpoint模式：EXACTLY_ONCE 或者 AT_LEAST_ONCE\n"
    "#blink.checkpoint.mode=EXACTLY_ONCE\n"
    "\n"
    "#checkpoint间隔时间，单位毫秒\n"
    "#blink.checkpoint.interval.ms=180000\n"
    "\n"
    "#rocksdb的数据生命周期，单位毫秒\n"
    "#state.backend.rocksdb.ttl.ms=129600000\n"
    "\n"
    "#启用项目参数\n"
    "#enable.project.config=true\n"
    "blink.job.timeZone=Asia/Shanghai"
)


def parse(name: str, **options: Any) -> tuple[str, list[InstanceRecord], list[JobRecord]]:
    parsed = parse_body(example(name), source=name, **options)
    assert parsed.source == name
    assert parsed.warnings == []
    for record in parsed.instances:
        assert_plain_values(record)
    return parsed.format, parsed.instances, parsed.jobs


def test_000_example1_dlf_v1_list() -> None:
    assert parse("000_example1.json") == (
        "dlf-v1-list",
        [
            InstanceRecord(
                workspace="default",
                job_name="job_batch",
                instance_id=34765,
                values={
                    "job_instance_name": "job_batch",
                    "status": "SUCCESS",
                    "plan_time": utc(2019, 3, 4, 3, 53, 0),
                    "start_time": utc(2019, 3, 4, 3, 53, 0),
                    "end_time": utc(2019, 3, 4, 3, 53, 18),
                    "submit_time": utc(2019, 2, 23, 8, 24, 38, 706),
                    "execute_time": 0.3,
                },
                source="000_example1.json: instances[0]",
            ),
            InstanceRecord(
                workspace="default",
                job_name="job_batch",
                instance_id=34764,
                values={
                    "job_instance_name": "job_batch",
                    "status": "SUCCESS",
                    "plan_time": utc(2019, 3, 4, 3, 52, 0),
                    "start_time": utc(2019, 3, 4, 3, 52, 1),
                    "end_time": utc(2019, 3, 4, 3, 52, 18),
                    "submit_time": utc(2019, 2, 23, 8, 24, 38, 706),
                    "execute_time": 0.3,
                },
                source="000_example1.json: instances[1]",
            ),
        ],
        [
            JobRecord(
                workspace="default", name="job_batch", source="000_example1.json: instances[0]"
            )
        ],
    )


def test_000_example3_reads_exe_time_as_execute_time() -> None:
    assert parse("000_example3.json", workspace="ws1") == (
        "dlf-v1-list",
        [
            InstanceRecord(
                workspace="ws1",
                job_name="job_sms_DLI_SMS_PROCESS",
                instance_id=30654,
                values={
                    "job_instance_name": "job_sms_DLI_SMS_PROCESS",
                    "status": "FAIL",
                    "plan_time": utc(2019, 3, 1, 7, 28, 46, 540),
                    "start_time": utc(2019, 3, 1, 7, 28, 47),
                    "end_time": utc(2019, 3, 1, 7, 29, 47),
                    "submit_time": utc(2019, 3, 1, 3, 4, 24, 657),
                    "execute_time": 1.0,
                },
                source="000_example3.json: instances[0]",
            ),
            InstanceRecord(
                workspace="ws1",
                job_name="job_sms_DLI_SMS_PROCESS",
                instance_id=28960,
                values={
                    "job_instance_name": "job_sms_DLI_SMS_PROCESS",
                    "status": "FAIL",
                    "plan_time": utc(2019, 2, 28, 3, 17, 31, 910),
                    "start_time": utc(2019, 3, 1, 3, 5, 40),
                    "end_time": utc(2019, 3, 1, 3, 6, 10),
                    "submit_time": utc(2019, 2, 28, 3, 16, 33, 766),
                    "execute_time": 0.5,
                },
                source="000_example3.json: instances[1]",
            ),
        ],
        [
            JobRecord(
                workspace="ws1",
                name="job_sms_DLI_SMS_PROCESS",
                source="000_example3.json: instances[0]",
            )
        ],
    )


def test_001_example_dlf_v2_list() -> None:
    common = {
        "job_instance_name": "job_batch",
        "status": "SUCCESS",
        "submit_time": utc(2019, 2, 23, 8, 24, 38, 706),
        "execute_time": 0.3,
        "force_success": False,
        "ignore_success": False,
        "version": 1,
    }
    assert parse("001_example.json") == (
        "dlf-v2-list",
        [
            InstanceRecord(
                workspace="default",
                job_name="job_batch",
                instance_id=34765,
                values={
                    **common,
                    "instance_type": "MANUAL",
                    "plan_time": utc(2019, 3, 4, 3, 53, 0),
                    "start_time": utc(2019, 3, 4, 3, 53, 0),
                    "end_time": utc(2019, 3, 4, 3, 53, 18),
                },
                job_values={"vendor_job_id": 608627},
                source="001_example.json: instances[0]",
            ),
            InstanceRecord(
                workspace="default",
                job_name="job_batch",
                instance_id=34764,
                values={
                    **common,
                    "instance_type": "PATCH_DATA",
                    "plan_time": utc(2019, 3, 4, 3, 52, 0),
                    "start_time": utc(2019, 3, 4, 3, 52, 1),
                    "end_time": utc(2019, 3, 4, 3, 52, 18),
                },
                job_values={"vendor_job_id": 608627},
                source="001_example.json: instances[1]",
            ),
        ],
        [
            JobRecord(
                workspace="default",
                name="job_batch",
                values={"vendor_job_id": 608627},
                source="001_example.json: instances[0]",
            )
        ],
    )


def expected_002(name: str, hours: int = 0, workspace: str = "default") -> InstanceRecord:
    at = utc(2020, 7, 27, 11 - hours, 52, 10)
    return InstanceRecord(
        workspace=workspace,
        job_name="92583",
        instance_id=11111111,
        values={
            "status": "SUCCESS",
            "plan_time": at,
            "start_time": at,
            "end_time": at,
            "dispatch_trigger_type": "API",
            "dispatch_time_type": "CRON",
            "dispatch_worker_address": "192.168.0.0:16",
            "dispatch_executor": "A",
            "dispatch_progress": "complete",
            "dispatch_result": "success",
            "dispatch_data_time": at,
            "dispatch_schedule_time": at,
        },
        job_values={"vendor_job_id": 92583},
        source=f"{name}: Data.JobInstanceDetails",
    )


@pytest.mark.parametrize("name", ["002_example.json", "002_example.xml"])
def test_002_examples_schedulerx(name: str) -> None:
    assert parse(name) == (
        "schedulerx",
        [expected_002(name)],
        [
            JobRecord(
                workspace="default",
                name="92583",
                values={"vendor_job_id": 92583},
                source=f"{name}: Data.JobInstanceDetails",
            )
        ],
    )


@pytest.mark.parametrize("name", ["002_example.json", "002_example.xml"])
def test_002_times_are_read_in_the_given_timezone(name: str) -> None:
    _, instances, _ = parse(name, timezone=ZoneInfo("Asia/Shanghai"), workspace="ns1")
    # 11:52:10 in Shanghai (UTC+8) is 03:52:10 UTC.
    assert instances == [expected_002(name, hours=8, workspace="ns1")]


def test_003_example_dlf_v1_detail_with_nodes_in_order() -> None:
    assert parse("003_example.json") == (
        "dlf-v1-detail",
        [
            InstanceRecord(
                workspace="default",
                job_name="job_batch",
                instance_id=34765,
                values={
                    "status": "FAIL",
                    "plan_time": utc(2019, 3, 1, 7, 28, 46, 540),
                    "start_time": utc(2019, 3, 1, 7, 28, 47),
                    "end_time": utc(2019, 3, 1, 7, 29, 47),
                    "execute_time": 1.0,
                },
                nodes=[
                    NodeRecord(
                        name="Dummy_8556",
                        values={
                            "type": "Dummy",
                            "status": "SUCCESS",
                            "plan_time": utc(2019, 3, 4, 3, 53, 0),
                            "start_time": utc(2019, 3, 4, 3, 53, 4),
                            "end_time": utc(2019, 3, 4, 3, 53, 10),
                            "submit_time": utc(2019, 2, 23, 8, 24, 38, 706),
                            "retry_times": 0,
                            "input_row_count": 0,
                        },
                    ),
                    NodeRecord(
                        name="error",
                        values={
                            "type": "DWS SQL",
                            "status": "SUCCESS",
                            "plan_time": utc(2019, 3, 4, 3, 53, 0),
                            "start_time": utc(2019, 3, 4, 3, 53, 14),
                            "end_time": utc(2019, 3, 4, 3, 53, 18),
                            "submit_time": utc(2019, 2, 23, 8, 24, 38, 706),
                            "retry_times": 0,
                            "input_row_count": 0,
                            "log_path": "obs://dlf-log-b384b9e9ab9b4ee8994c8633aabc9505/job_batch/"
                            "2019-03-04 11_53_00.000/error/error.job",
                        },
                    ),
                ],
                source="003_example.json: instance",
            )
        ],
        [JobRecord(workspace="default", name="job_batch", source="003_example.json: instance")],
    )


def test_003_execute_time_is_a_float_even_when_written_as_an_integer() -> None:
    _, [record], _ = parse("003_example.json")
    assert type(record.values["execute_time"]) is float


@pytest.mark.parametrize("name", ["004_example.json", "004_example.xml"])
def test_004_examples_flink_instance(name: str) -> None:
    assert parse(name, workspace="ignored: the body has ProjectName") == (
        "flink-instance",
        [
            InstanceRecord(
                workspace="project1",
                job_name="job1",
                instance_id=412536,
                values={
                    "status": "RUNNING",
                    "plan_time": utc(2020, 9, 11, 3, 18, 55),
                    "start_time": utc(2020, 9, 11, 3, 18, 55),
                    "runtime_actual_state": "RUNNING",
                    "runtime_expect_state": "RUNNING",
                    "runtime_api_type": "DATASTREAM",
                    "runtime_engine_version": "blink-3.4.4",
                    "runtime_cluster_id": "rcmp9x37ztfb63g1x7lt****",
                    "runtime_queue_name": "root.project1",
                    "runtime_engine_job_handler": (
                        "application_1597654819348_0011|405a6d40d7f4f2618ed532359887d344"
                    ),
                    "runtime_code": CODE_004,
                    "runtime_properties": PROPERTIES_004,
                    "runtime_plan_json": "",
                    "runtime_packages": "hbase_demo-1.0-snapshot-shaded.jar",
                    "runtime_input_delay": -99999999,
                    "runtime_auto_scale_params": (
                        '{"isOnOff":false,"strategyConfigure":null,"maxCU":null}'
                    ),
                    "runtime_last_operator": "239960377092765296",
                    "runtime_last_operate_time": utc(2020, 9, 11, 3, 18, 54),
                    "runtime_starter": "239960377092765296",
                },
                job_values={"type": "REALTIME"},
                source=f"{name}: Instance",
            )
        ],
        [
            JobRecord(
                workspace="project1",
                name="job1",
                values={"type": "REALTIME"},
                source=f"{name}: Instance",
            )
        ],
    )


@pytest.mark.parametrize(
    ("name", "answer"),
    [
        ("000_example3_failure.json", "error_code DLF.3051, error_msg 'The request parameter is"),
        ("001_failure.json", "error_code DLF.0100, error_msg 'The job does not exists.'"),
        ("003_failure.json", "error_code DLF.0137, error_msg 'Job instance does not exist.'"),
    ],
)
def test_failure_examples_are_refused_with_what_the_service_said(name: str, answer: str) -> None:
    with pytest.raises(ImportFormatError, match="error response") as caught:
        parse_body(example(name), source=name)
    assert str(caught.value).startswith(f"{name}: the body is an error response, not data: ")
    assert answer in str(caught.value)
