"""Ingest records: what importers and mutations hand to storage.

A record carries only what its source reported: `values` maps storage column names to values,
and a column that is absent was not reported (it never overwrites a stored value; on first insert
it gets its documented default). Enumerations are member names (`"SKIP_BY_DEPEND"`), times are
timezone-aware datetimes, vendor ids are ints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

JOB_COLUMNS = frozenset({"vendor_job_id", "type", "parent_node_name", "namespace"})

INSTANCE_COLUMNS = frozenset(
    {
        "job_instance_name",
        "status",
        "instance_type",
        "plan_time",
        "start_time",
        "end_time",
        "submit_time",
        "execute_time",
        "force_success",
        "ignore_success",
        "version",
        "dispatch_trigger_type",
        "dispatch_time_type",
        "dispatch_worker_address",
        "dispatch_executor",
        "dispatch_progress",
        "dispatch_result",
        "dispatch_data_time",
        "dispatch_schedule_time",
        "runtime_actual_state",
        "runtime_expect_state",
        "runtime_api_type",
        "runtime_engine_version",
        "runtime_cluster_id",
        "runtime_queue_name",
        "runtime_engine_job_handler",
        "runtime_code",
        "runtime_properties",
        "runtime_plan_json",
        "runtime_packages",
        "runtime_input_delay",
        "runtime_auto_scale_params",
        "runtime_last_error_message",
        "runtime_last_error_time",
        "runtime_last_operator",
        "runtime_last_operate_time",
        "runtime_starter",
        "run_id",
        "error_message",
        "lineage_facets",
        "lineage_state",
    }
)
# Without these an instance cannot be stored the first time.
INSTANCE_REQUIRED = frozenset({"status", "plan_time"})

NODE_COLUMNS = frozenset(
    {
        "type",
        "status",
        "plan_time",
        "start_time",
        "end_time",
        "submit_time",
        "retry_times",
        "input_row_count",
        "speed",
        "log_path",
        "error_message",
    }
)
NODE_REQUIRED = frozenset({"type", "status"})


@dataclass
class JobRecord:
    workspace: str
    name: str
    values: dict[str, Any] = field(default_factory=dict)
    # An explicit parent (real-time job) for a sub-job; otherwise linked by the `<P>_<node>` rule.
    parent_name: str | None = None
    source: str = ""


@dataclass
class NodeRecord:
    name: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class InstanceRecord:
    workspace: str
    job_name: str
    instance_id: int
    values: dict[str, Any] = field(default_factory=dict)
    # None: the source did not report nodes (stored nodes stay); a list replaces them, in order.
    nodes: list[NodeRecord] | None = None
    # When the reporting system observed this state; orders reports of one instance.
    reported_at: datetime | None = None
    # Facts about the job that came with the instance (e.g. DLF v2 job_id, Flink JobType).
    job_values: dict[str, Any] = field(default_factory=dict)
    # Where it came from, for messages: "file.json: instances[3]".
    source: str = ""


@dataclass
class CheckpointRecord:
    """Where `jobql collect` stands in one source and scope (a row of `collect_checkpoint`).

    `position` is the source's own bookmark as JSON text; `high_water` the time up to which this
    scope's data is known to be stored (lag = now - high_water).
    """

    source: str
    scope: str
    kind: str
    position: str | None = None
    high_water: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
