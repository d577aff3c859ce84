"""The private clusters of tests/clusters.py: a replica shows what the primary wrote and refuses
writes; paused replay holds it behind the primary until resumed; a stopped replica catches up when
started again; every server stops and every directory goes, even when the test fails."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.storage.engine import create_engine
from tests.clusters import (
    Cluster,
    Database,
    Lsn,
    Replicated,
    cluster_fixture,  # noqa: F401 (the `cluster` fixture)
    private_cluster,
    replicated_cluster,
    replicated_fixture,  # noqa: F401 (the `replicated` fixture)
)

pytestmark = pytest.mark.postgres


@contextlib.asynccontextmanager
async def opened(url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(url, pool_size=2)
    try:
        yield engine
    finally:
        await engine.dispose()


async def count(engine: AsyncEngine, table: str = "readings") -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def insert(engine: AsyncEngine, values: range) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO readings (value)"
                " SELECT generate_series(CAST(:low AS int), CAST(:high AS int))"
            ),
            {"low": values.start, "high": values.stop - 1},
        )


@pytest.fixture
async def database(replicated: Replicated) -> Database:
    """A database of the test's own on the shared pair, with a table `readings` of 3 rows, already
    on the replica; the pair found streaming (whatever an earlier test left)."""
    await asyncio.to_thread(replicated.reset)
    made = replicated.create_database(f"clusters_{uuid.uuid4().hex[:8]}")
    async with opened(made.primary_url) as primary, primary.begin() as connection:
        await connection.execute(text("CREATE TABLE readings (id serial PRIMARY KEY, value int)"))
        await connection.execute(text("INSERT INTO readings (value) VALUES (1), (2), (3)"))
    replicated.wait_caught_up()
    return made


def refuses_connections(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_lsn_compares_as_a_number_and_prints_as_postgresql_does() -> None:
    assert Lsn.parse("0/3000148") < Lsn.parse("0/30001A0") < Lsn.parse("1/0")
    assert str(Lsn.parse("1A/FF0")) == "1A/FF0"
    assert Lsn.parse("1/0") == 1 << 32


async def test_rows_written_on_the_primary_are_read_on_the_replica(
    replicated: Replicated, database: Database
) -> None:
    async with opened(database.primary_url) as primary, opened(database.replica_url) as replica:
        await insert(primary, range(4, 11))
        replicated.wait_caught_up()
        assert await count(replica) == 10
        async with replica.connect() as connection:
            values = (
                await connection.execute(text("SELECT value FROM readings ORDER BY id"))
            ).all()
            in_recovery = (await connection.execute(text("SELECT pg_is_in_recovery()"))).scalar()
        assert [value for (value,) in values] == list(range(1, 11))
        assert in_recovery is True
        async with primary.connect() as connection:
            assert (await connection.execute(text("SELECT pg_is_in_recovery()"))).scalar() is False


async def test_the_replica_refuses_writes(database: Database) -> None:
    async with opened(database.replica_url) as replica:
        with pytest.raises(DBAPIError, match="read-only transaction") as refused:
            async with replica.begin() as connection:
                await connection.execute(text("INSERT INTO readings (value) VALUES (4)"))
        assert getattr(refused.value.orig, "sqlstate", None) == "25006"  # read_only_sql_transaction
        with pytest.raises(DBAPIError, match="read-only transaction"):
            async with replica.begin() as connection:
                await connection.execute(text("CREATE TABLE elsewhere (id int)"))
        assert await count(replica) == 3


async def test_with_replay_paused_the_replica_stays_behind_until_resumed(
    replicated: Replicated, database: Database
) -> None:
    async with opened(database.primary_url) as primary, opened(database.replica_url) as replica:
        with replicated.paused():
            assert replicated.replay_paused()
            await insert(primary, range(4, 6))
            written = replicated.current_lsn()
            await asyncio.sleep(0.5)  # time enough to replay, were replay not paused
            assert replicated.replay_lsn() < written
            assert await count(replica) == 3
            assert await count(primary) == 5
        assert not replicated.replay_paused()
        replicated.wait_caught_up()
        assert replicated.replay_lsn() >= written
        assert await count(replica) == 5


async def test_a_stopped_replica_catches_up_when_started_again(
    replicated: Replicated, database: Database
) -> None:
    port = replicated.replica.port
    async with opened(database.primary_url) as primary:
        with replicated.replica_stopped():
            assert not replicated.replica.running
            assert refuses_connections(port)
            await insert(primary, range(4, 1004))  # the primary carries on without it
            written = replicated.current_lsn()
        assert replicated.replica.running
        assert replicated.replica.port == port
        assert replicated.wait_caught_up() >= written
        assert replicated.replay_lsn() >= written
    async with opened(database.replica_url) as replica:
        assert await count(replica) == 1003


async def test_a_killed_replica_starts_again_and_catches_up(
    replicated: Replicated, database: Database
) -> None:
    async with opened(database.primary_url) as primary:
        replicated.stop_replica(immediate=True)
        try:
            await insert(primary, range(4, 8))
        finally:
            replicated.start_replica()
        replicated.wait_caught_up()
    async with opened(database.replica_url) as replica:
        assert await count(replica) == 7


async def test_two_replicas_each_stream_on_their_own() -> None:
    with replicated_cluster(replicas=2) as pair:
        made = pair.create_database("two")
        assert len({pair.primary.port, *(replica.port for replica in pair.replicas)}) == 3
        pair.primary.psql(
            "CREATE TABLE readings (value int); INSERT INTO readings VALUES (1)", "two"
        )
        pair.wait_caught_up()
        with pair.paused(index=1):
            pair.primary.psql("INSERT INTO readings VALUES (2)", "two")
            pair.wait_caught_up(index=0)
            assert pair.replicas[0].psql("SELECT count(*) FROM readings", "two") == "2"
            assert pair.replicas[1].psql("SELECT count(*) FROM readings", "two") == "1"
        pair.wait_caught_up()
        for url in made.replica_urls:
            async with opened(url) as replica:
                assert await count(replica) == 2


async def test_a_private_cluster_takes_connections_and_stops(cluster: Cluster) -> None:
    assert cluster.psql("SELECT current_setting('shared_buffers')") == "16MB"
    assert cluster.psql("SELECT current_setting('server_encoding')") == "UTF8"
    cluster.psql("CREATE DATABASE other")
    async with opened(cluster.url_for("other")) as engine, engine.connect() as connection:
        assert (await connection.execute(text("SELECT current_database()"))).scalar() == "other"
    cluster.kill()
    assert not cluster.running
    assert refuses_connections(cluster.port)
    cluster.start()
    assert cluster.psql("SELECT 1", "other") == "1"


def test_settings_reach_the_server_and_cleanup_survives_a_failing_test() -> None:
    seen: list[Cluster] = []

    def failing() -> None:
        with private_cluster(settings={"work_mem": "1MB", "log_connections": True}) as private:
            seen.append(private)
            assert private.psql("SHOW work_mem") == "1MB"
            assert private.psql("SHOW log_connections") == "on"
            raise RuntimeError("the test failed")

    with pytest.raises(RuntimeError, match="the test failed"):
        failing()
    [private] = seen
    assert not private.root.exists()
    assert refuses_connections(private.port)
