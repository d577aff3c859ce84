"""Upstream data shaped like each source's: what DLF, SchedulerX and Realtime Compute can report,
written into an upstream jobql with its own mutations, and changed the way runs change (new runs
appear, running ones progress and end).

Each kind holds only the fields its source's API carries, with the precision it carries them
(SchedulerX: whole seconds), so that what the collector reads back through the source endpoints
can equal the upstream exactly. Times are near the real clock: the collector walks windows up to
now.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.collect.upstream import graphql

JOBS = """
mutation Jobs($input: [JobInput!]!) {
  upsertJobs(input: $input) { results { outcome userErrors { field message } } }
}
"""
INSTANCES = """
mutation Instances($input: [InstanceInput!]!) {
  recordInstances(input: $input) { results { outcome userErrors { field message } } }
}
"""

DLF_ENDED = ["SUCCESS", "SUCCESS", "SUCCESS", "FAIL", "SKIP_BY_DEPEND", "MANUAL_STOP"]
DLF_OPEN = ["RUNNING", "WAITING", "RUNNING_EXCEPTION", "PAUSE", "FREEZE"]
NODE_TYPES = ["DWS SQL", "DLI Spark", "Shell", "CDM Job", "Dummy"]
SX_ENDED = ["SUCCESS", "SUCCESS", "FAIL", "REJECTED"]
SX_OPEN = ["RUNNING", "WAITING"]
# Realtime Compute: the model's status and the ActualState the source reports for it.
FLINK_STATE = {
    "WAITING": "WAITING",
    "RUNNING": "RUNNING",
    "PAUSE": "PAUSED",
    "MANUAL_STOP": "TERMINATED",
    "SUCCESS": "SUCCESS",
    "FAIL": "FAILED",
}
TERMINAL = {"SUCCESS", "FAIL", "SKIP_BY_DEPEND", "MANUAL_STOP", "REJECTED"}


def iso(value: datetime) -> str:
    return (
        value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    )


def now_ms() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@dataclass
class Upstream:
    """One workspace of an upstream jobql and what it holds, by kind."""

    http: httpx.AsyncClient
    workspace: str
    rng: random.Random
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    instances: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    _next_id: int = 1000

    def new_id(self) -> int:
        self._next_id += self.rng.randint(1, 9)
        return self._next_id

    @property
    def job_names(self) -> list[str]:
        return sorted(self.jobs)

    @property
    def open(self) -> list[dict[str, Any]]:
        return [i for i in self.instances.values() if i["status"] not in TERMINAL]

    async def push(self, instances: list[dict[str, Any]] | None = None) -> None:
        """Write the jobs and the given instances (default: all) into the upstream."""
        if self.jobs:
            data = await graphql(
                self.http, JOBS, {"input": list(self.jobs.values())}, self.workspace
            )
            assert all(not r["userErrors"] for r in data["upsertJobs"]["results"]), data
        items = list(self.instances.values()) if instances is None else instances
        for start in range(0, len(items), 500):
            chunk = items[start : start + 500]
            data = await graphql(self.http, INSTANCES, {"input": chunk}, self.workspace)
            errors = [
                r["userErrors"] for r in data["recordInstances"]["results"] if r["userErrors"]
            ]
            assert not errors, errors


class DlfUpstream(Upstream):
    """DataArts Studio / DLF: v1 list and detail fields, nodes, ms precision."""

    def add_jobs(self, count: int) -> None:
        for _ in range(count):
            name = f"etl_{len(self.jobs)}_{self.rng.randint(100, 999)}"
            self.jobs[name] = {"name": name, "jobId": self.rng.randint(10_000, 999_999)}

    def add_instance(self, job: str, plan: datetime, status: str) -> dict[str, Any]:
        rng = self.rng
        start = plan + timedelta(milliseconds=rng.randint(500, 60_000))
        item: dict[str, Any] = {
            "jobName": job,
            "instanceId": self.new_id(),
            "jobInstanceName": f"{job}_{plan:%Y%m%d%H%M}",
            "status": status,
            "instanceType": rng.choice(["GENERAL", "GENERAL", "MANUAL", "PATCH_DATA"]),
            "planTime": iso(plan),
            "submitTime": iso(plan - timedelta(milliseconds=rng.randint(1, 5000))),
            "forceSuccess": False,
            "ignoreSuccess": False,
            "version": rng.randint(1, 4),
        }
        if status != "WAITING":
            item["startTime"] = iso(start)
        self._finish(item, status)
        self.instances[(job, item["instanceId"])] = item
        return item

    def _finish(self, item: dict[str, Any], status: str) -> None:
        rng = self.rng
        item["status"] = status
        started = item.get("startTime")
        count = rng.randint(1, 4)
        nodes = []
        for position in range(count):
            node: dict[str, Any] = {
                "name": f"node_{position}_{rng.randint(10, 99)}",
                "type": rng.choice(NODE_TYPES),
                "status": "SUCCESS" if status in TERMINAL else "RUNNING",
                "planTime": item["planTime"],
                "retryTimes": rng.randint(0, 2),
                "inputRowCount": rng.randint(0, 10**9),
                "speed": round(rng.uniform(0, 5000), 2),
                "logPath": f"obs://dlf-log/{item['jobName']}/{position}.job",
            }
            if started is not None:
                node["startTime"] = started
                node["submitTime"] = item["submitTime"]
            if status in TERMINAL and started is not None:
                node["endTime"] = started
            nodes.append(node)
        if status == "FAIL":
            nodes[-1]["status"] = "FAIL"
            item["runtime"] = {"lastErrorMessage": f"{nodes[-1]['name']} failed: exit 1"}
        if status == "SKIP_BY_DEPEND":
            for node in nodes:
                node["status"] = "SKIP"
        item["nodes"] = nodes
        if status in TERMINAL and started is not None:
            end = datetime.fromisoformat(started.replace("Z", "+00:00")) + timedelta(
                milliseconds=rng.randint(100, 600_000)
            )
            item["endTime"] = iso(end)
            # DLF's executeTime as the pages show it: 0.3 for 18 s, or whole numbers.
            item["executeTime"] = rng.choice([0.3, 4.2, 18000.0, float(rng.randint(1, 9000))])
            item["forceSuccess"] = status == "SUCCESS" and rng.random() < 0.2

    def seed(self, jobs: int, per_job: int, *, span: timedelta, open_share: float = 0.25) -> None:
        now = now_ms()
        self.add_jobs(jobs)
        for job in self.job_names:
            for _ in range(per_job):
                plan = now - timedelta(
                    milliseconds=self.rng.randint(60_000, int(span / timedelta(milliseconds=1)))
                )
                opened = self.rng.random() < open_share
                self.add_instance(job, plan, self.rng.choice(DLF_OPEN if opened else DLF_ENDED))

    def progress(self, *, new: int) -> list[dict[str, Any]]:
        """Open instances end (some), new ones appear: the items to push."""
        changed = []
        now = now_ms()
        for item in self.open:
            if self.rng.random() < 0.7:
                if "startTime" not in item:
                    item["startTime"] = iso(
                        datetime.fromisoformat(item["planTime"].replace("Z", "+00:00"))
                        + timedelta(seconds=1)
                    )
                self._finish(item, self.rng.choice(DLF_ENDED))
                changed.append(item)
        for _ in range(new):
            job = self.rng.choice(self.job_names)
            plan = now - timedelta(milliseconds=self.rng.randint(1_000, 120_000))
            changed.append(self.add_instance(job, plan, self.rng.choice(DLF_ENDED + DLF_OPEN)))
        return changed


class SchedulerxUpstream(Upstream):
    """SchedulerX: jobs named by their id, dispatch facts, whole-second local times."""

    def add_jobs(self, count: int) -> None:
        for _ in range(count):
            job_id = self.rng.randint(10_000, 99_999)
            self.jobs[str(job_id)] = {"name": str(job_id), "jobId": job_id}

    def add_instance(self, job: str, schedule: datetime, status: str) -> dict[str, Any]:
        rng = self.rng
        schedule = schedule.replace(microsecond=0)
        item: dict[str, Any] = {
            "jobName": job,
            "instanceId": self.new_id(),
            "status": status,
            "planTime": iso(schedule),
            "dispatch": {
                "triggerType": rng.choice(["SCHEDULE", "API", "MANUAL_RERUN", "SYSTEM_RETRY"]),
                "timeType": rng.choice(["CRON", "FIX_RATE", "SECOND_DELAY", "API"]),
                "workerAddress": f"10.0.{rng.randint(0, 9)}.{rng.randint(1, 250)}:"
                f"{rng.randint(20000, 40000)}",
                "executor": f"worker-{rng.randint(1, 9)}",
                "progress": None,
                "result": None,
                "dataTime": iso(schedule - timedelta(hours=1)),
                "scheduleTime": iso(schedule),
            },
        }
        if status != "WAITING":
            item["startTime"] = iso(schedule + timedelta(seconds=rng.randint(0, 5)))
        self._finish(item, status)
        self.instances[(job, item["instanceId"])] = item
        return item

    def _finish(self, item: dict[str, Any], status: str) -> None:
        item["status"] = status
        dispatch = item["dispatch"]
        if status in TERMINAL and status != "REJECTED":
            start = datetime.fromisoformat(
                (item.get("startTime") or item["planTime"]).replace("Z", "+00:00")
            )
            item.setdefault("startTime", iso(start))
            item["endTime"] = iso(start + timedelta(seconds=self.rng.randint(1, 900)))
            dispatch["progress"] = "100%"
            dispatch["result"] = "ok" if status == "SUCCESS" else "java.lang.RuntimeException: boom"
        elif status == "RUNNING":
            dispatch["progress"] = f"{self.rng.randint(1, 99)}%"
        item["dispatch"] = {k: v for k, v in dispatch.items() if v is not None}

    def seed(self, jobs: int, per_job: int) -> None:
        now = now_ms()
        self.add_jobs(jobs)
        for job in self.job_names:
            for index in range(per_job):
                schedule = now - timedelta(minutes=10 * (per_job - index))
                latest = index >= per_job - 2
                status = self.rng.choice(SX_OPEN) if latest else self.rng.choice(SX_ENDED)
                self.add_instance(job, schedule, status)

    def progress(self, *, new_per_job: int) -> list[dict[str, Any]]:
        changed = []
        now = now_ms()
        for item in self.open:
            self._finish(item, self.rng.choice(SX_ENDED))
            changed.append(item)
        for job in self.job_names:
            for index in range(new_per_job):
                schedule = now - timedelta(seconds=30 * (new_per_job - index))
                changed.append(
                    self.add_instance(job, schedule, self.rng.choice(SX_ENDED + SX_OPEN))
                )
        return changed

    def instance_count(self, job: str) -> int:
        return sum(1 for j, _ in self.instances if j == job)


class FlinkUpstream(Upstream):
    """Realtime Compute: followed instances with the whole runtime facet."""

    def add_instance(self, job: str, status: str, *, job_type: str = "REALTIME") -> dict[str, Any]:
        rng = self.rng
        self.jobs.setdefault(job, {"name": job, "type": job_type})
        start = now_ms() - timedelta(milliseconds=rng.randint(60_000, 3_600_000))
        item: dict[str, Any] = {
            "jobName": job,
            "instanceId": self.new_id(),
            "status": status,
            "planTime": iso(start),
            "startTime": iso(start),
            "runtime": {
                "actualState": FLINK_STATE[status],
                "expectState": "RUNNING",
                "apiType": rng.choice(["SQL", "DATASTREAM"]),
                "engineVersion": "blink-3.4.4",
                "clusterId": f"rcmp{rng.randint(1000, 9999)}",
                "queueName": "root.default",
                "engineJobHandler": f"application_{rng.randint(10**12, 10**13)}_0011",
                "code": "INSERT INTO sink SELECT * FROM src",
                "properties": "parallelism=4",
                "planJson": "",
                "packages": ["udf.jar", "connector.jar"],
                "inputDelay": rng.randint(0, 5000),
                "autoScaleParams": '{"isAutoScaleOn":true,"maxCU":20}',
                "lastOperator": "admin",
                "lastOperateTime": iso(start),
                "starter": "admin",
            },
        }
        self._finish(item, status)
        self.instances[(job, item["instanceId"])] = item
        return item

    def _finish(self, item: dict[str, Any], status: str) -> None:
        item["status"] = status
        runtime = item["runtime"]
        runtime["actualState"] = FLINK_STATE[status]
        if status in TERMINAL:
            start = datetime.fromisoformat(item["startTime"].replace("Z", "+00:00"))
            item["endTime"] = iso(start + timedelta(milliseconds=self.rng.randint(1_000, 900_000)))
            runtime["expectState"] = FLINK_STATE[status]
        if status == "FAIL":
            runtime["lastErrorMessage"] = "TaskManager lost"
            runtime["lastErrorTime"] = item.get("endTime", item["startTime"])

    def progress(self) -> list[dict[str, Any]]:
        changed = []
        for item in self.open:
            self._finish(item, self.rng.choice(["SUCCESS", "FAIL", "MANUAL_STOP"]))
            changed.append(item)
        return changed
