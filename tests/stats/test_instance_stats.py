"""instanceStats and Job.stats on hand-made data (tests/stats/conftest.py): every field, every
grouping, every bucket width, worked out by hand. Interpolated percentiles are written as the
interpolation itself (`lerp`), which is exactly what PostgreSQL's percentile_cont computes."""

from __future__ import annotations

import math
import re
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.schema import schema
from jobql.storage.enums import InstanceStatus
from tests.conftest import StatementCounter
from tests.factories import data_of
from tests.stats.conftest import World

GROUP = """
  status jobName instanceType count successRate
  durationMs { count min avg p50 p90 p95 p99 max }
  latenessMs { count p50 p95 }
"""
BUCKETS = "timeline { start count countsByStatus { status count } durationMs { count p50 p95 } }"

STATS = f"""
query($filter: InstanceFilter, $groupBy: [StatsGroup!], $bucket: TimeBucket) {{
  instanceStats(filter: $filter, groupBy: $groupBy, bucket: $bucket) {{ {GROUP} }}
}}
"""
STATS_WITH_TIMELINE = f"""
query($filter: InstanceFilter, $groupBy: [StatsGroup!], $bucket: TimeBucket) {{
  instanceStats(filter: $filter, groupBy: $groupBy, bucket: $bucket) {{
    status jobName count {BUCKETS}
  }}
}}
"""


def lerp(low: float, high: float, position: float) -> float:
    """The value at `position` between ranks floor(position) (= low) and ceil (= high)."""
    return low + (position - math.floor(position)) * (high - low)


def durations(
    count: int,
    low: int | None = None,
    avg: float | None = None,
    p50: float | None = None,
    p90: float | None = None,
    p95: float | None = None,
    p99: float | None = None,
    high: int | None = None,
) -> dict[str, Any]:
    return {
        "count": count,
        "min": low,
        "avg": avg,
        "p50": p50,
        "p90": p90,
        "p95": p95,
        "p99": p99,
        "max": high,
    }


def group(
    count: int,
    rate: float | None,
    duration: dict[str, Any],
    lateness: tuple[int, float | None, float | None],
    *,
    status: str | None = None,
    job: str | None = None,
    instance_type: str | None = None,
) -> dict[str, Any]:
    return {
        "status": status,
        "jobName": job,
        "instanceType": instance_type,
        "count": count,
        "successRate": rate,
        "durationMs": duration,
        "latenessMs": dict(zip(("count", "p50", "p95"), lateness, strict=True)),
    }


NO_DURATIONS = durations(0)

# Every run: durations 5000 5000 10000 20000 40000; lateness -500 0 1000 1000 2000 3000.
EVERY_RUN = group(
    7,
    3 / 7,
    durations(
        5,
        5000,
        16000.0,
        10000.0,
        lerp(20000, 40000, 0.9 * 4),
        lerp(20000, 40000, 0.95 * 4),
        lerp(20000, 40000, 0.99 * 4),
        40000,
    ),
    (6, 1000.0, lerp(2000, 3000, 0.95 * 5)),
)

SUCCESS_RUNS = durations(
    3,
    5000,
    35000 / 3,
    10000.0,
    lerp(10000, 20000, 0.9 * 2),
    lerp(10000, 20000, 0.95 * 2),
    lerp(10000, 20000, 0.99 * 2),
    20000,
)
FAILED_RUNS = durations(
    2,
    5000,
    22500.0,
    22500.0,
    lerp(5000, 40000, 0.9),
    lerp(5000, 40000, 0.95),
    lerp(5000, 40000, 0.99),
    40000,
)
BY_STATUS = [
    group(1, 0.0, NO_DURATIONS, (0, None, None), status="WAITING"),
    group(1, 0.0, NO_DURATIONS, (1, 2000.0, 2000.0), status="RUNNING"),
    group(3, 1.0, SUCCESS_RUNS, (3, 1000.0, lerp(1000, 3000, 0.95 * 2)), status="SUCCESS"),
    group(2, 0.0, FAILED_RUNS, (2, 500.0, lerp(0, 1000, 0.95)), status="FAIL"),
]

ALPHA_RUNS = durations(
    3,
    10000,
    70000 / 3,
    20000.0,
    lerp(20000, 40000, 0.9 * 2),
    lerp(20000, 40000, 0.95 * 2),
    lerp(20000, 40000, 0.99 * 2),
    40000,
)
BETA_RUNS = durations(2, 5000, 5000.0, 5000.0, 5000.0, 5000.0, 5000.0, 5000)
# alpha's lateness: 0 1000 2000 3000; beta's: -500 1000.
ALPHA = group(5, 0.4, ALPHA_RUNS, (4, 1500.0, lerp(2000, 3000, 0.95 * 3)), job="alpha")
BETA = group(2, 0.5, BETA_RUNS, (2, 250.0, lerp(-500, 1000, 0.95)), job="beta")


async def stats_of(engine: AsyncEngine, world: World, **variables: Any) -> Any:
    data = await data_of(engine, STATS, variables, workspace=world.workspace)
    return data["instanceStats"]


async def test_one_group_without_group_by(engine: AsyncEngine, world: World) -> None:
    assert await stats_of(engine, world) == [EVERY_RUN]
    assert await stats_of(engine, world, groupBy=[]) == [EVERY_RUN]


async def test_one_empty_group_when_nothing_matches(engine: AsyncEngine, world: World) -> None:
    empty = group(0, None, NO_DURATIONS, (0, None, None))
    assert await stats_of(engine, world, filter={"jobName": "idle"}) == [empty]
    assert await stats_of(engine, world, filter={"statuses": []}) == [empty]
    # Grouped, an empty result has no groups at all.
    assert await stats_of(engine, world, filter={"jobName": "idle"}, groupBy=["STATUS"]) == []


async def test_grouped_by_status_in_the_enums_order(engine: AsyncEngine, world: World) -> None:
    assert await stats_of(engine, world, groupBy=["STATUS"]) == BY_STATUS


async def test_grouped_by_job_by_name(engine: AsyncEngine, world: World) -> None:
    assert await stats_of(engine, world, groupBy=["JOB"]) == [ALPHA, BETA]
    # The same numbers as Job.stats and as a filter on the job.
    alone = await stats_of(engine, world, filter={"jobName": "beta"}, groupBy=["JOB"])
    assert alone == [BETA]
    data = await data_of(
        engine,
        f'{{ job(name: "alpha") {{ stats {{ {GROUP} job {{ name }} }} }} }}',
        workspace=world.workspace,
    )
    assert data["job"]["stats"] == {**ALPHA, "job": {"name": "alpha"}}


async def test_grouped_by_instance_type(engine: AsyncEngine, world: World) -> None:
    found = await stats_of(engine, world, groupBy=["INSTANCE_TYPE"])
    assert [(g["instanceType"], g["count"], g["successRate"]) for g in found] == [
        ("GENERAL", 5, 0.4),  # a1 a2 a4 a5 b2
        ("MANUAL", 1, 0.0),  # a3
        ("PATCH_DATA", 1, 1.0),  # b1
    ]
    assert found[0]["durationMs"] == durations(
        3,
        5000,
        35000 / 3,
        10000.0,
        lerp(10000, 20000, 1.8),
        lerp(10000, 20000, 0.95 * 2),
        lerp(10000, 20000, 0.99 * 2),
        20000,
    )
    assert found[1]["latenessMs"] == {"count": 1, "p50": 0.0, "p95": 0.0}


async def test_grouped_by_several_keys_in_their_order(engine: AsyncEngine, world: World) -> None:
    found = await stats_of(engine, world, groupBy=["JOB", "STATUS"])
    assert [(g["jobName"], g["status"], g["count"]) for g in found] == [
        ("alpha", "WAITING", 1),
        ("alpha", "RUNNING", 1),
        ("alpha", "SUCCESS", 2),
        ("alpha", "FAIL", 1),
        ("beta", "SUCCESS", 1),
        ("beta", "FAIL", 1),
    ]
    assert all(g["instanceType"] is None for g in found)
    found = await stats_of(engine, world, groupBy=["STATUS", "JOB", "STATUS"])
    assert [(g["status"], g["jobName"]) for g in found] == [
        ("WAITING", "alpha"),
        ("RUNNING", "alpha"),
        ("SUCCESS", "alpha"),
        ("SUCCESS", "beta"),
        ("FAIL", "alpha"),
        ("FAIL", "beta"),
    ]
    assert found[3]["durationMs"] == durations(1, 5000, 5000.0, *[5000.0] * 4, 5000)


def bucket(start: str, duration: tuple[int, float | None, float | None], **nonzero: int) -> Any:
    return {
        "start": start,
        "count": sum(nonzero.values()),
        "countsByStatus": [
            {"status": s.name, "count": nonzero.get(s.name, 0)} for s in InstanceStatus
        ],
        "durationMs": dict(zip(("count", "p50", "p95"), duration, strict=True)),
    }


EMPTY = (0, None, None)
MON, TUE, WED = "2019-03-04T00:00:00.000Z", "2019-03-05T00:00:00.000Z", "2019-03-06T00:00:00.000Z"


async def timeline(engine: AsyncEngine, world: World, **variables: Any) -> Any:
    data = await data_of(engine, STATS_WITH_TIMELINE, variables, workspace=world.workspace)
    return data["instanceStats"]


async def test_timeline_by_day(engine: AsyncEngine, world: World) -> None:
    window = {"planTimeAfter": "2019-03-04T00:00:00Z", "planTimeBefore": "2019-03-07T00:00:00Z"}
    found = await timeline(engine, world, filter=window, bucket="DAY")
    assert found == [
        {
            "status": None,
            "jobName": None,
            "count": 5,
            "timeline": [
                bucket(MON, (3, 10000.0, lerp(10000, 20000, 1.9)), SUCCESS=3),
                bucket(TUE, (1, 40000.0, 40000.0), FAIL=1),
                bucket(WED, (1, 5000.0, 5000.0), FAIL=1),
            ],
        }
    ]
    found = await timeline(engine, world, filter=window, groupBy=["STATUS"], bucket="DAY")
    assert found == [
        {
            "status": "SUCCESS",
            "jobName": None,
            "count": 3,
            "timeline": [
                bucket(MON, (3, 10000.0, lerp(10000, 20000, 1.9)), SUCCESS=3),
                bucket(TUE, EMPTY),
                bucket(WED, EMPTY),
            ],
        },
        {
            "status": "FAIL",
            "jobName": None,
            "count": 2,
            "timeline": [
                bucket(MON, EMPTY),
                bucket(TUE, (1, 40000.0, 40000.0), FAIL=1),
                bucket(WED, (1, 5000.0, 5000.0), FAIL=1),
            ],
        },
    ]
    # By job, naming the job (else the cost estimate counts every job a workspace may have).
    alpha = {**window, "jobName": "alpha"}
    found = await timeline(engine, world, filter=alpha, groupBy=["JOB"], bucket="DAY")
    assert found == [
        {
            "status": None,
            "jobName": "alpha",
            "count": 3,
            "timeline": [
                bucket(MON, (2, 15000.0, lerp(10000, 20000, 0.95)), SUCCESS=2),
                bucket(TUE, (1, 40000.0, 40000.0), FAIL=1),
                bucket(WED, EMPTY),
            ],
        },
    ]


async def test_timeline_by_week_starts_on_monday(engine: AsyncEngine, world: World) -> None:
    # From Sunday 2019-03-03 (in the week of Monday 02-25) to Tuesday 03-12 (the week of 03-11).
    window = {"planTimeAfter": "2019-03-03T00:00:00Z", "planTimeBefore": "2019-03-12T00:00:00Z"}
    found = await timeline(engine, world, filter=window, bucket="WEEK")
    assert found[0]["timeline"] == [
        bucket("2019-02-25T00:00:00.000Z", EMPTY),
        # a5 is planned on Sunday 23:59:59.999, the last millisecond of the week.
        bucket(
            "2019-03-04T00:00:00.000Z",
            (5, 10000.0, lerp(20000, 40000, 0.95 * 4)),
            WAITING=1,
            SUCCESS=3,
            FAIL=2,
        ),
        bucket("2019-03-11T00:00:00.000Z", EMPTY, RUNNING=1),
    ]


async def test_timeline_by_hour(engine: AsyncEngine, world: World) -> None:
    window = {"planTimeAfter": "2019-03-04T00:30:00Z", "planTimeBefore": "2019-03-04T03:00:00Z"}
    found = await timeline(engine, world, filter=window, bucket="HOUR")
    assert found[0]["timeline"] == [
        bucket(MON, EMPTY),
        bucket("2019-03-04T01:00:00.000Z", (2, 7500.0, lerp(5000, 10000, 0.95)), SUCCESS=2),
        bucket("2019-03-04T02:00:00.000Z", (1, 20000.0, 20000.0), SUCCESS=1),
    ]


async def test_no_timeline_without_bucket(engine: AsyncEngine, world: World) -> None:
    found = await timeline(engine, world, groupBy=["STATUS"])
    assert [g["timeline"] for g in found] == [None] * 4


JOB_STATS = f"""
query($name: String!, $window: StatsWindow, $bucket: TimeBucket) {{
  job(name: $name) {{
    stats(window: $window, bucket: $bucket) {{ {GROUP} job {{ name }} {BUCKETS} }}
  }}
}}
"""


async def test_job_stats_over_a_window_with_a_timeline(engine: AsyncEngine, world: World) -> None:
    window = {"planTimeAfter": "2019-03-04T00:00:00Z", "planTimeBefore": "2019-03-07T00:00:00Z"}
    data = await data_of(
        engine,
        JOB_STATS,
        {"name": "alpha", "window": window, "bucket": "DAY"},
        workspace=world.workspace,
    )
    stats = data["job"]["stats"]
    assert stats["jobName"] == "alpha"
    assert stats["job"] == {"name": "alpha"}
    assert stats["count"] == 3
    assert stats["successRate"] == 2 / 3
    assert stats["durationMs"] == durations(
        3,
        10000,
        70000 / 3,
        20000.0,
        lerp(20000, 40000, 0.9 * 2),
        lerp(20000, 40000, 0.95 * 2),
        lerp(20000, 40000, 0.99 * 2),
        40000,
    )
    assert stats["latenessMs"] == {"count": 3, "p50": 1000.0, "p95": lerp(1000, 3000, 0.95 * 2)}
    assert stats["timeline"] == [
        bucket(MON, (2, 15000.0, lerp(10000, 20000, 0.95)), SUCCESS=2),
        bucket(TUE, (1, 40000.0, 40000.0), FAIL=1),
        bucket(WED, EMPTY),
    ]
    # The same numbers as instanceStats over that job.
    same = await data_of(
        engine,
        STATS,
        {"filter": {**window, "jobName": "alpha"}},
        workspace=world.workspace,
    )
    mine = {k: v for k, v in stats.items() if k not in ("job", "timeline", "jobName")}
    theirs = {k: v for k, v in same["instanceStats"][0].items() if k != "jobName"}
    assert mine == theirs


async def test_job_stats_of_a_job_without_runs(engine: AsyncEngine, world: World) -> None:
    window = {"planTimeAfter": "2019-03-04T00:00:00Z", "planTimeBefore": "2019-03-05T00:00:00Z"}
    data = await data_of(
        engine,
        JOB_STATS,
        {"name": "idle", "window": window, "bucket": "DAY"},
        workspace=world.workspace,
    )
    assert data["job"]["stats"] == {
        **group(0, None, NO_DURATIONS, (0, None, None), job="idle"),
        "job": {"name": "idle"},
        "timeline": [bucket(MON, EMPTY)],
    }


ALL_JOBS = """
query($window: StatsWindow, $bucket: TimeBucket) {
  jobs {
    nodes {
      name
      stats(window: $window, bucket: $bucket) { count successRate timeline { count } }
    }
  }
}
"""


async def test_job_stats_of_many_jobs_in_one_statement_each(
    engine: AsyncEngine, world: World, statements: StatementCounter
) -> None:
    window = {"planTimeAfter": "2019-03-04T00:00:00Z", "planTimeBefore": "2019-03-07T00:00:00Z"}
    statements.reset()
    data = await data_of(
        engine,
        ALL_JOBS,
        {"window": window, "bucket": "DAY"},
        workspace=world.workspace,
        using=schema,
    )
    # jobs, then one statement for every job's stats and one for every job's timeline.
    assert statements.count == 3, statements.statements
    jobs = data["jobs"]["nodes"]
    assert [(j["name"], j["stats"]["count"], j["stats"]["successRate"]) for j in jobs] == [
        ("alpha", 3, 2 / 3),
        ("beta", 2, 0.5),
        ("idle", 0, None),
    ]
    assert [[b["count"] for b in j["stats"]["timeline"]] for j in data["jobs"]["nodes"]] == [
        [2, 1, 0],
        [1, 0, 1],
        [0, 0, 0],
    ]


async def test_instance_stats_statements(
    engine: AsyncEngine, world: World, statements: StatementCounter
) -> None:
    window = {"planTimeAfter": "2019-03-04T00:00:00Z", "planTimeBefore": "2019-03-07T00:00:00Z"}
    variables = {"filter": window, "groupBy": ["INSTANCE_TYPE", "STATUS"], "bucket": "DAY"}
    statements.reset()
    await data_of(engine, STATS, variables, workspace=world.workspace, using=schema)
    assert statements.count == 1  # the timeline is not selected: not read
    statements.reset()
    await data_of(engine, STATS_WITH_TIMELINE, variables, workspace=world.workspace, using=schema)
    assert statements.count == 2  # the groups, and the timelines of all groups


async def test_stats_never_cross_workspaces(engine: AsyncEngine, world: World) -> None:
    from tests.stats.conftest import make_world

    twin = await make_world(engine)  # the same jobs and runs in another workspace
    assert await stats_of(engine, world) == [EVERY_RUN]
    assert await stats_of(engine, world, groupBy=["JOB"]) == [ALPHA, BETA]
    empty = group(0, None, NO_DURATIONS, (0, None, None))
    data = await data_of(engine, STATS, {}, workspace="no-such-workspace")
    assert data["instanceStats"] == [empty]
    data = await data_of(engine, STATS, {"groupBy": ["JOB"]}, workspace="no-such-workspace")
    assert data["instanceStats"] == []
    assert twin.workspace != world.workspace


def _sorts(statements: StatementCounter) -> list[int]:
    """Percentile aggregates per statement that has any (each is a sort of the rows)."""
    found = [len(PERCENTILE.findall(statement)) for statement in statements.statements]
    return [n for n in found if n]


PERCENTILE = re.compile(r"percentile_cont\(|jobql_percentiles\(")
LATENESS_WAYS = {
    "plain": "latenessMs { count p50 p95 }",
    "alias": "late: latenessMs { count p50 p95 }",
    "inline fragment": "... on InstanceStatsGroup { latenessMs { count p50 p95 } }",
    "named fragment": "...Late",
    "included": "latenessMs @include(if: $yes) { count p50 p95 }",
    "not skipped": "latenessMs @skip(if: $no) { count p50 p95 }",
}


async def test_lateness_is_read_where_asked_for_and_only_there(
    engine: AsyncEngine, world: World, statements: StatementCounter
) -> None:
    """Lateness percentiles are a second sort of the rows: the statements compute them only
    when the selection holds `latenessMs`, whichever way it is asked for."""
    window = {"planTimeAfter": "2019-03-04T00:00:00Z", "planTimeBefore": "2019-03-07T00:00:00Z"}

    async def ask(selection: str) -> dict[str, Any]:
        fragment = "fragment Late on InstanceStatsGroup { latenessMs { count p50 p95 } }"
        flags = "".join(
            f", ${name}: Boolean = {value}"
            for name, value in (("yes", "true"), ("no", "false"))
            if f"${name}" in selection
        )
        document = f"""
        query($window: StatsWindow{flags}) {{
          instanceStats {{ count {selection} }}
          jobs {{ nodes {{ name stats(window: $window) {{ count {selection} }} }} }}
        }}
        {fragment if "...Late" in selection else ""}
        """
        statements.reset()
        return await data_of(
            engine, document, {"window": window}, workspace=world.workspace, using=schema
        )

    def late(data: dict[str, Any]) -> list[Any]:
        groups = [*data["instanceStats"], *(j["stats"] for j in data["jobs"]["nodes"])]
        return [group.get("latenessMs", group.get("late")) for group in groups]

    expected = late(await ask(LATENESS_WAYS["plain"]))
    assert len(expected) == 4
    assert expected[0]["count"] > 0
    for way, selection in LATENESS_WAYS.items():
        answer = await ask(selection)
        assert late(answer) == expected, way
        assert _sorts(statements) == [2, 2], way  # the root's groups, the jobs' groups
    for selection in (
        "",
        "latenessMs @include(if: $no) { p50 }",
        "latenessMs @skip(if: $yes) { p50 }",
    ):
        answer = await ask(selection)
        assert late(answer) == [None] * len(expected), selection
        # one percentile aggregate (the durations') per statement: lateness is not computed
        assert _sorts(statements) == [1, 1], selection
