"""Read replicas without a cluster: WAL positions, lag, the choice of a replica, settings.
(Routing against real streaming replicas: tests/replicas/.)"""

from __future__ import annotations

from typing import Any

import pytest

from jobql.settings import Settings, SettingsError
from jobql.storage.replicas import BadLsn, Replica, Replicas, format_lsn, parse_lsn


@pytest.mark.parametrize("text", ["0/0", "0/16B3748", "16/B374D848", "FFFFFFFF/FFFFFFFF"])
def test_a_wal_position_reads_and_writes_as_postgresql_prints_it(text: str) -> None:
    assert format_lsn(parse_lsn(text)) == text
    assert parse_lsn("1/0") > parse_lsn("0/FFFFFFFF")


@pytest.mark.parametrize("text", ["", "0", "x/1", "1/2/3", "123456789/0", "0/-1"])
def test_anything_else_is_refused_by_name(text: str) -> None:
    with pytest.raises(BadLsn, match="is not a WAL position"):
        parse_lsn(text)


def _replicas(**kwargs: Any) -> Replicas:
    engines = [object(), object()]
    replicas = Replicas(
        primary=object(),  # type: ignore[arg-type]
        replicas=[Replica(f"postgresql+asyncpg://h:{n}/db", e) for n, e in enumerate(engines)],  # type: ignore[arg-type]
        **kwargs,
    )
    for replica in replicas.replicas:
        replica.up, replica.lag, replica.replay_lsn = True, 0.0, 100
    return replicas


def test_reads_go_round_robin_over_the_replicas_in_rotation() -> None:
    replicas = _replicas()
    first, second = (replica.engine for replica in replicas.replicas)
    assert [replicas.choose() for _ in range(4)] == [first, second, first, second]
    replicas.replicas[0].up = False
    assert {replicas.choose() for _ in range(3)} == {second}
    replicas.replicas[1].lag = 11.0  # past max_lag (10 s)
    assert replicas.choose() is None


def test_a_read_after_a_write_goes_where_the_write_has_been_replayed() -> None:
    replicas = _replicas()
    replicas.replicas[1].replay_lsn = 200
    behind, ahead = (replica.engine for replica in replicas.replicas)
    assert {replicas.choose(min_lsn=150) for _ in range(3)} == {ahead}
    assert replicas.choose(min_lsn=100) in {behind, ahead}
    assert replicas.choose(min_lsn=201) is None  # nobody has it yet: the primary


def test_a_replica_a_read_found_unreachable_leaves_rotation() -> None:
    replicas = _replicas()
    gone = replicas.replicas[0]
    replicas.mark_down(gone.engine, ConnectionRefusedError("refused"))
    assert not gone.up
    assert gone.reason == "unreachable: ConnectionRefusedError"
    assert {replicas.choose() for _ in range(3)} == {replicas.replicas[1].engine}


def test_lag_is_how_long_ago_the_primary_was_where_the_replica_is() -> None:
    replicas = _replicas(check_interval=1.0)
    for at, position in [(100.0, 10), (101.0, 20), (102.0, 30), (103.0, 40)]:
        replicas._samples.append((at, position))
    # Caught up with the newest sample: no lag, however old the sample (an idle primary).
    assert replicas._lag(40, 40, now=500.0) == 0.0
    # At 20: the primary was there at 101 (and moved on after): 3 s behind at 104.
    assert replicas._lag(20, 40, now=104.0) == 3.0
    assert replicas._lag(25, 40, now=104.0) == 3.0
    # Behind every sample this worker kept: at least as old as the oldest.
    assert replicas._lag(5, 40, now=104.0) >= 4.0


def test_settings_take_replica_urls_only_for_a_postgresql_primary() -> None:
    primary = "postgresql+asyncpg://postgres@127.0.0.1:5432/jobql"
    settings = Settings.from_env(
        {
            "JOBQL_DATABASE_URL": primary,
            "JOBQL_DATABASE_REPLICA_URLS": " postgresql+asyncpg://r1/jobql ,postgresql+asyncpg://r2/jobql",
            "JOBQL_REPLICA_MAX_LAG": "2.5",
        }
    )
    assert settings.replica_urls == (
        "postgresql+asyncpg://r1/jobql",
        "postgresql+asyncpg://r2/jobql",
    )
    assert settings.replica_max_lag == 2.5
    assert Settings.from_env({"JOBQL_DATABASE_URL": primary}).replica_urls == ()
    with pytest.raises(SettingsError, match="needs a PostgreSQL primary"):
        Settings.from_env({"JOBQL_DATABASE_REPLICA_URLS": "postgresql+asyncpg://r1/jobql"})
    with pytest.raises(SettingsError, match=r"'r1/jobql' is not a postgresql\+asyncpg:// URL"):
        Settings.from_env(
            {
                "JOBQL_DATABASE_URL": primary,
                "JOBQL_DATABASE_REPLICA_URLS": "mysql://u:secret@r1/jobql",
            }
        )
    with pytest.raises(SettingsError, match="JOBQL_REPLICA_MAX_LAG"):
        Settings.from_env({"JOBQL_DATABASE_URL": primary, "JOBQL_REPLICA_MAX_LAG": "soon"})
