"""Bad input to the statistics: BAD_USER_INPUT with a message naming the problem, before any SQL;
and the cost rules, which know how many groups, buckets and counts a stats field gives."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import parse
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.resolvers import stats as stats_use_cases
from jobql.schema import schema
from jobql.schema.limits import estimate_cost
from tests.conftest import StatementCounter
from tests.factories import error_codes, execute
from tests.stats.conftest import World

INSTANCE_STATS = """
query($filter: InstanceFilter, $groupBy: [StatsGroup!], $bucket: TimeBucket) {
  instanceStats(filter: $filter, groupBy: $groupBy, bucket: $bucket) { count timeline { count } }
}
"""
JOB_STATS = """
query($window: StatsWindow, $bucket: TimeBucket) {
  job(name: "alpha") { stats(window: $window, bucket: $bucket) { count timeline { count } } }
}
"""
NODE_STATS = """
query($window: StatsWindow, $first: Int) {
  instance(jobName: "alpha", instanceId: 1) { nodeStats(window: $window, first: $first) { name } }
}
"""
INSTANCES = """
query($filter: InstanceFilter) { instances(filter: $filter) { countsByStatus { count } } }
"""

MONDAY = "2019-03-04T00:00:00Z"
INVERTED = {"planTimeAfter": "2019-03-05T00:00:00Z", "planTimeBefore": "2019-03-04T00:00:00Z"}
INVERTED_MESSAGE = (
    "`planTimeAfter` must be earlier than `planTimeBefore` (both bounds are exclusive)."
)


async def refusal(
    engine: AsyncEngine, world: World, document: str, variables: dict[str, Any]
) -> str:
    result = await execute(engine, document, variables, workspace=world.workspace)
    assert error_codes(result) == ["BAD_USER_INPUT"], result.errors
    return str(result.errors[0].message)


@pytest.mark.parametrize(
    ("document", "variables"),
    [
        (INSTANCES, {"filter": INVERTED}),
        (INSTANCE_STATS, {"filter": INVERTED}),
        (INSTANCE_STATS, {"filter": {**INVERTED, "planTimeAfter": INVERTED["planTimeBefore"]}}),
        (JOB_STATS, {"window": INVERTED}),
        (NODE_STATS, {"window": INVERTED}),
    ],
)
async def test_an_inverted_range_is_refused_as_for_instances(
    engine: AsyncEngine, world: World, document: str, variables: dict[str, Any]
) -> None:
    assert await refusal(engine, world, document, variables) == INVERTED_MESSAGE


@pytest.mark.parametrize(
    ("document", "variables", "where"),
    [
        (INSTANCE_STATS, {"bucket": "DAY"}, "filter"),
        (INSTANCE_STATS, {"bucket": "DAY", "filter": {"planTimeAfter": MONDAY}}, "filter"),
        (JOB_STATS, {"bucket": "WEEK", "window": {"planTimeBefore": MONDAY}}, "window"),
    ],
)
async def test_a_timeline_needs_both_bounds(
    engine: AsyncEngine, world: World, document: str, variables: dict[str, Any], where: str
) -> None:
    message = await refusal(engine, world, document, variables)
    assert message.startswith(
        f"`bucket` needs a time range: give both `{where}.planTimeAfter` and "
        f"`{where}.planTimeBefore`"
    )


async def test_a_timeline_of_more_than_1000_buckets_is_refused(
    engine: AsyncEngine, world: World, statements: StatementCounter
) -> None:
    # 1001 hours: 2019-03-01T00:00 .. 2019-04-11T17:00 (exclusive bounds).
    window = {"planTimeAfter": "2019-02-28T23:59:59.999Z", "planTimeBefore": "2019-04-11T17:00:00Z"}
    statements.reset()
    message = await refusal(engine, world, INSTANCE_STATS, {"filter": window, "bucket": "HOUR"})
    assert message == (
        "`bucket: HOUR` over this plan time range makes 1001 buckets; a timeline has at most "
        "1000. Narrow `filter.planTimeAfter`/`filter.planTimeBefore` or use a wider bucket."
    )
    assert statements.count == 0  # refused before any SQL (compiled and reference runs)
    message = await refusal(engine, world, JOB_STATS, {"window": window, "bucket": "HOUR"})
    assert "makes 1001 buckets" in message
    assert "`window.planTimeAfter`/`window.planTimeBefore`" in message
    # One hour less is exactly 1000 buckets (the last one 15:00, holding 15:59:59.999); by day,
    # 42 (March 1 to April 11).
    fits = {**window, "planTimeBefore": "2019-04-11T16:00:00Z"}
    result = await execute(
        engine, INSTANCE_STATS, {"filter": fits, "bucket": "HOUR"}, workspace=world.workspace
    )
    assert result.errors is None
    assert len(result.data["instanceStats"][0]["timeline"]) == 1000
    result = await execute(
        engine, INSTANCE_STATS, {"filter": window, "bucket": "DAY"}, workspace=world.workspace
    )
    assert len(result.data["instanceStats"][0]["timeline"]) == 42


async def test_more_groups_than_the_limit_are_refused(
    engine: AsyncEngine, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stats_use_cases, "MAX_GROUPS", 3)
    message = await refusal(engine, world, INSTANCE_STATS, {"groupBy": ["STATUS"]})
    assert message == (
        "`instanceStats` would return more than 3 groups: narrow the filter (e.g. `jobName`) "
        "or group by fewer keys."
    )
    result = await execute(engine, INSTANCE_STATS, {"groupBy": ["JOB"]}, workspace=world.workspace)
    assert result.errors is None


@pytest.mark.parametrize("first", [0, -1, 1001])
async def test_node_stats_first_out_of_range(engine: AsyncEngine, world: World, first: int) -> None:
    message = await refusal(engine, world, NODE_STATS, {"first": first})
    assert message == f"`first` must be between 1 and 1000, got {first}."


async def test_a_bad_enum_or_time_is_a_variable_error(engine: AsyncEngine, world: World) -> None:
    for variables in ({"bucket": "MONTH"}, {"groupBy": ["WORKSPACE"]}):
        result = await execute(engine, INSTANCE_STATS, variables, workspace=world.workspace)
        assert error_codes(result) == ["BAD_USER_INPUT"]
    result = await execute(
        engine, JOB_STATS, {"window": {"planTimeAfter": "yesterday"}}, workspace=world.workspace
    )
    assert error_codes(result) == ["BAD_USER_INPUT"]


def cost(document: str, variables: dict[str, Any] | None = None) -> int:
    return estimate_cost(schema._schema, parse(document), None, variables or {})


def test_cost_counts_statuses_groups_and_buckets() -> None:
    # The connection, and one count per status (10 instance statuses, 7 node statuses).
    assert cost("{ instances(first: 1000) { countsByStatus { count } } }") == 1 + 10
    nested = "{ instances(first: 2) { nodes { nodes(first: 5) { countsByStatus { count } } } } }"
    assert cost(nested) == 1 + 2 + 2 * (1 + 7)
    # One group; its two objects.
    assert cost("{ instanceStats { count durationMs { p50 } latenessMs { p50 } } }") == 3
    # A group per status, per type; a job counts 10,000 unless the filter names one.
    assert cost("{ instanceStats(groupBy: [STATUS, INSTANCE_TYPE]) { count } }") == 50
    assert cost("{ instanceStats(groupBy: [JOB]) { count job { name } } }") == 20_000
    assert cost('{ instanceStats(filter: {jobName: "a"}, groupBy: [JOB]) { count } }') == 1
    # Buckets from the range: 3 days, each with its bucket, 10 counts and durations.
    timeline = """
    query($f: InstanceFilter, $b: TimeBucket) {
      instanceStats(filter: $f, bucket: $b, groupBy: STATUS) {
        timeline { countsByStatus { count } durationMs { p50 } }
      }
    }"""
    three_days = {"planTimeAfter": "2019-03-04T00:00:00Z", "planTimeBefore": "2019-03-07T00:00:00Z"}
    assert cost(timeline, {"f": three_days, "b": "DAY"}) == 10 + 10 * 3 * (1 + 10 + 1)
    assert cost(timeline, {"f": three_days, "b": "HOUR"}) == 10 + 10 * 72 * 12
    # A timeline the resolver refuses counts one bucket (so that the refusal says why).
    assert cost(timeline, {"f": {}, "b": "DAY"}) == 10 + 10 * 12
    years = {**three_days, "planTimeBefore": "2030-01-01T00:00:00Z"}
    assert cost(timeline, {"f": years, "b": "HOUR"}) == 10 + 10 * 12
    assert cost(timeline, {"f": three_days}) == 10 + 10 * 12  # no bucket: no timeline
    # Job.stats: one group per job; nodeStats: `first` (100 by default) per instance.
    job = "{ jobs(first: 5) { nodes { stats(window: $w, bucket: DAY) { timeline { count } } } } }"
    assert cost(f"query($w: StatsWindow) {job}", {"w": three_days}) == 1 + 5 + 5 + 5 * 3
    assert cost("{ instances(first: 2) { nodes { nodeStats { durationMs { p50 } } } } }") == (
        1 + 2 + 2 * 100 * 2
    )
    assert cost("{ instances(first: 2) { nodes { nodeStats(first: 3) { name } } } }") == 1 + 2 + 6


async def test_a_query_that_could_return_too_much_is_refused_before_sql(
    engine: AsyncEngine, world: World
) -> None:
    window = {"planTimeAfter": "2019-03-01T00:00:00Z", "planTimeBefore": "2019-03-31T00:00:00Z"}
    result = await execute(
        engine,
        """query($f: InstanceFilter) {
          instanceStats(filter: $f, groupBy: [JOB, STATUS], bucket: DAY) {
            timeline { countsByStatus { count } }
          }
        }""",
        {"f": window},
        workspace=world.workspace,
    )
    assert error_codes(result) == ["QUERY_TOO_COMPLEX"]
