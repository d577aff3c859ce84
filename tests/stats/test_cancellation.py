"""A stats load that other items of a list share outlives one of its cancelled callers (the stats
loaders are ShieldedDataLoaders; tests/storage/test_cancellation.py has the others)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import error_codes, execute, make_instance, make_job, new_workspace

# Two runs: one of `stream_sink`, whose parent is `stream`, and one of `stream`. `last: 0` fails
# each parent's nested connection; the nullable `parent` absorbs the error and graphql-core
# cancels that parent's other fields, among them the first run's `parent { stats }`: the stats of
# `stream`, whose load the second run's `job { stats }` awaits too (asked for in the same turn
# of the event loop). Unshielded, that caller gets the CancelledError as its value.
CANCELLED_SHARED_STATS = """
{
  instances {
    nodes {
      job { stats { count } parent { instances(last: 0) { totalCount } stats { count } } }
    }
  }
}
"""


async def test_a_cancelled_field_does_not_cancel_a_stats_load_other_items_share(
    engine: AsyncEngine,
) -> None:
    workspace = await new_workspace(engine)
    root = await make_job(engine, workspace, "root")
    stream = await make_job(engine, workspace, "stream", parent_id=root.id)
    sub = await make_job(engine, workspace, "stream_sink", parent_id=stream.id)
    await make_instance(engine, sub)
    await make_instance(engine, stream)
    # A CancelledError is no Exception: it would leave `execute` here (and the endpoint would
    # end the request without an answer).
    result = await execute(engine, CANCELLED_SHARED_STATS, workspace=workspace.name)
    item = {"job": {"stats": {"count": 1}, "parent": None}}
    assert result.data == {"instances": {"nodes": [item, item]}}
    assert set(error_codes(result)) == {"BAD_USER_INPUT"}
