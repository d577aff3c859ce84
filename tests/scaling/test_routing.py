"""Read replicas against a real primary and streaming replica (private clusters, tests/clusters.py):
which server answered is read off pg_stat_statements on each, through `jobql serve`'s app over
real HTTP.

- queries and source API GETs read from the replica, mutations write on the primary;
- read-your-writes: a mutation answers `extensions.lsn` and `JobQL-LSN`; a read that sends it
  back sees the write (the primary serves it while the replica has not replayed it);
- a replica lagging more than JOBQL_REPLICA_MAX_LAG (replay paused) leaves rotation, and comes
  back once it has caught up;
- a replica stopped mid-run: reads go on from the primary, no 5xx, no error.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.clusters import Cluster, Database, Replicated, replicated_cluster
from tests.rest.live import live_app

pytestmark = pytest.mark.postgres

DATABASE = "jobql_replicas"
RECORD = """
mutation Record($input: [InstanceInput!]!) {
  recordInstances(input: $input) { results { outcome } }
}
"""
# Compiled (fast path after its first run) and a reference-strategy read.
RUNS = (
    "query Runs($job: String!) "
    "{ instances(filter: {jobName: $job}) { totalCount nodes { instanceId } } }"
)
JOBS = "{ jobs(first: 5) { nodes { name } } }"
DLF_LIST = "/v1/any-project/jobs/instances/detail"


@pytest.fixture(scope="module")
def pair() -> Iterator[Replicated]:
    with replicated_cluster(settings={"shared_preload_libraries": "pg_stat_statements"}) as pair:
        yield pair


@pytest.fixture(scope="module")
def database(pair: Replicated) -> Database:
    created = pair.create_database(DATABASE)
    pair.primary.psql("CREATE EXTENSION pg_stat_statements", DATABASE)
    migrated = subprocess.run(
        [sys.executable, "-m", "jobql", "migrate"],
        env={"JOBQL_DATABASE_URL": created.primary_url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrated.returncode == 0, migrated.stderr
    pair.wait_caught_up()
    return created


@pytest.fixture
def fresh(pair: Replicated) -> Replicated:
    pair.reset()  # whatever an earlier test left paused or stopped
    return pair


def reads(cluster: Cluster) -> int:
    """Executions of jobql's reads of instances and jobs on `cluster`, so far."""
    return int(
        cluster.psql(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s "
            f"JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = '{DATABASE}' "
            "AND s.query ILIKE 'SELECT%' AND (s.query ILIKE '%FROM instance%' "
            "OR s.query ILIKE '%FROM job%') "
            # Not the event log's readers (subscriptions' broker): they read the primary always.
            "AND s.query NOT ILIKE '%instance_event%'",
            DATABASE,
        )
    )


class Counts:
    def __init__(self, pair: Replicated) -> None:
        self.pair = pair
        self.primary = reads(pair.primary)
        self.replica = reads(pair.replica)

    def delta(self) -> tuple[int, int]:
        return reads(self.pair.primary) - self.primary, reads(self.pair.replica) - self.replica


def serve(database: Database, **settings: Any) -> Any:
    settings.setdefault("replica_check_interval", 0.1)
    return live_app(
        database.primary_url,
        replica_urls=(database.replica_url,),
        fast_lane=True,
        **settings,
    )


def record(http: httpx.Client, job: str, ids: range) -> httpx.Response:
    items = [
        {"jobName": job, "instanceId": i, "status": "SUCCESS", "planTime": "2026-12-01T00:00:00Z"}
        for i in ids
    ]
    response = http.post(
        "/graphql", json={"query": RECORD, "variables": {"input": items}}, headers=WS
    )
    assert response.status_code == 200, response.text
    assert "errors" not in response.json(), response.text
    return response


WS = {"workspace": "replicas"}


def runs(http: httpx.Client, job: str, **headers: str) -> int:
    response = http.post(
        "/graphql",
        json={"query": RUNS, "variables": {"job": job}},
        headers={**WS, **headers},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return int(body["data"]["instances"]["totalCount"])


def replica_state(http: httpx.Client) -> dict[str, Any]:
    ready = http.get("/readyz").json()
    (state,) = ready["replicas"]
    return dict(state)


def wait_for(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.05)


def settled(http: httpx.Client, pair: Replicated, job: str, ids: range) -> httpx.Response:
    """`ids` of `job` written, replayed, and the replica in rotation."""
    written = record(http, job, ids)
    pair.wait_caught_up()
    wait_for(lambda: replica_state(http)["inRotation"], "replica in rotation")
    return written


def lsn_value(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def test_queries_read_from_the_replica_and_a_write_is_read_back_where_it_was_replayed(
    fresh: Replicated, database: Database
) -> None:
    with serve(database, replica_max_lag=60.0) as url, httpx.Client(base_url=url) as http:
        written = settled(http, fresh, "rw", range(1, 4))
        lsn = written.json()["extensions"]["lsn"]
        assert written.headers["jobql-lsn"] == lsn
        assert lsn_value(lsn) > 0

        counts = Counts(fresh)
        assert [runs(http, "rw") for _ in range(20)] == [3] * 20
        jobs = http.post("/graphql", json={"query": JOBS}, headers=WS)
        assert {"name": "rw"} in jobs.json()["data"]["jobs"]["nodes"]
        listed = http.get(DLF_LIST, params={"jobName": "rw"}, headers=WS)
        assert listed.status_code == 200, listed.text
        assert listed.json()["total"] == 3
        on_primary, on_replica = counts.delta()
        assert on_primary == 0
        assert on_replica >= 22

        with fresh.paused():
            later = record(http, "rw", range(4, 5)).json()["extensions"]["lsn"]
            assert lsn_value(later) > lsn_value(lsn)
            counts = Counts(fresh)
            # Without the position: the replica answers, without the write it has not replayed.
            assert runs(http, "rw") == 3
            # With it: the primary answers, with the write.
            assert runs(http, "rw", **{"JobQL-LSN": later}) == 4
            on_primary, on_replica = counts.delta()
            assert on_primary >= 1
            assert on_replica >= 1
            bad = http.post(
                "/graphql",
                json={"query": RUNS, "variables": {"job": "rw"}},
                headers={**WS, "JobQL-LSN": "yesterday"},
            )
            assert bad.status_code == 400
            assert bad.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
            assert "JobQL-LSN" in bad.json()["errors"][0]["message"]
            refused = http.get(DLF_LIST, params={"jobName": "rw"}, headers={**WS, "JobQL-LSN": "1"})
            # The source's own "invalid parameter" form (DLF's carries no detail).
            assert refused.status_code == 400
            assert refused.json()["error_code"] == "DLF.3051"

        # Replayed: the replica serves the position again.
        wait_for(
            lambda: lsn_value(replica_state(http)["replayLsn"]) >= lsn_value(later),
            "the replica has replayed the write",
        )
        counts = Counts(fresh)
        assert runs(http, "rw", **{"JobQL-LSN": later}) == 4
        assert counts.delta()[0] == 0

        families = {
            family.name: family
            for family in text_string_to_metric_families(http.get("/metrics").text)
        }
        # This replica's (the registry is the process's: other tests' replicas may be in it).
        name = replica_state(http)["replica"]
        rotation = families["jobql_replica_in_rotation"].samples
        assert [s.value for s in rotation if s.labels["replica"] == name] == [1.0]
        assert name.endswith(f":{fresh.replica.port}/{DATABASE}")
        routes = {
            sample.labels["target"]: sample.value
            for sample in families["jobql_read_routes"].samples
            if sample.name == "jobql_read_routes_total"
        }
        assert routes["replica"] >= 23
        assert routes["primary"] >= 1


def test_a_lagging_replica_leaves_rotation_until_it_catches_up(
    fresh: Replicated, database: Database
) -> None:
    with (
        serve(database, replica_max_lag=0.5) as url,
        httpx.Client(base_url=url) as http,
    ):
        settled(http, fresh, "lag", range(1, 3))
        with fresh.paused():
            record(http, "lag", range(3, 4))
            wait_for(lambda: replica_state(http)["reason"].startswith("lagging"), "replica lagging")
            assert replica_state(http)["inRotation"] is False
            counts = Counts(fresh)
            # Every read from the primary: each sees the write the replica has not replayed.
            assert [runs(http, "lag") for _ in range(10)] == [3] * 10
            on_primary, on_replica = counts.delta()
            assert on_primary >= 10
            assert on_replica == 0
        wait_for(lambda: replica_state(http)["inRotation"], "replica back in rotation")
        counts = Counts(fresh)
        assert [runs(http, "lag") for _ in range(5)] == [3] * 5
        on_primary, on_replica = counts.delta()
        assert on_primary == 0
        assert on_replica >= 5


def test_a_replica_stopped_mid_run_costs_no_request_an_error(
    fresh: Replicated, database: Database
) -> None:
    # Checks far apart: the reads themselves must notice the replica is gone.
    with (
        serve(database, replica_check_interval=5.0) as url,
        httpx.Client(base_url=url) as http,
    ):
        settled(http, fresh, "stop", range(1, 6))
        answers: list[tuple[int, Any]] = []
        stop = threading.Event()

        def reader() -> None:
            with httpx.Client(base_url=url) as own:
                while not stop.is_set():
                    for body in (
                        {"query": RUNS, "variables": {"job": "stop"}},
                        {"query": JOBS},
                    ):
                        response = own.post("/graphql", json=body, headers=WS)
                        answers.append((response.status_code, response.json()))

        threads = [threading.Thread(target=reader) for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            wait_for(lambda: len(answers) >= 30, "reads before the stop")
            counts = Counts(fresh)
            fresh.stop_replica(immediate=True)
            stopped_at = len(answers)
            wait_for(lambda: len(answers) >= stopped_at + 60, "reads after the stop")
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
        on_primary = reads(fresh.primary) - counts.primary
        assert on_primary >= 30
        for status, body in answers:
            assert status == 200, body
            assert "errors" not in body, body
            data = body["data"]
            if "instances" in data:
                assert data["instances"]["totalCount"] == 5
            else:
                assert {"name": "stop"} in data["jobs"]["nodes"]  # the module's jobs
        state = replica_state(http)
        assert state["inRotation"] is False
        assert state["reason"].startswith("unreachable")
        fresh.start_replica()
        wait_for(lambda: replica_state(http)["inRotation"], "replica back after its restart")
        counts = Counts(fresh)
        assert runs(http, "stop") == 5
        assert counts.delta()[0] == 0
