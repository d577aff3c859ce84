"""Private PostgreSQL clusters for tests: one server (`Cluster`, fixture `cluster`), or a primary
with streaming replicas (`Replicated`, fixture `replicated`).

Each cluster is started here with initdb and pg_ctl on a free port (127.0.0.1 and a unix socket in
its data directory), as the `postgres` user (`runuser`; the tests run as root), with its data in a
directory of its own under the system's temporary directory; it is stopped (immediate) and the
directory removed at the end, whatever happened. The shared server on 5432 is never touched.

Where the machine cannot start one (no PostgreSQL server binaries, no runuser, not root), a test
asking for one is skipped, and fails where CI=true.

The helpers here are synchronous (subprocesses, short polls): an async test may call them
directly, or through `asyncio.to_thread` when something else must keep running on its event loop
meanwhile (an app serving requests, a subscription).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

# Every private cluster: small, no fsync (a crashed test cluster is thrown away anyway).
LEAN_SETTINGS: dict[str, str] = {
    "shared_buffers": "16MB",
    "fsync": "off",
    "full_page_writes": "off",
    "jit": "off",
}

# A primary and its replicas (the same on both: a hot standby needs at least the primary's
# max_connections, max_wal_senders and the like).
REPLICATION_SETTINGS: dict[str, str] = {
    "wal_level": "replica",
    "max_wal_senders": "10",
    "max_replication_slots": "10",
    "hot_standby": "on",
    # A replica whose upstream went away (a stopped primary, a restart) tries again this soon,
    # not after the default 5 s.
    "wal_retrieve_retry_interval": "200ms",
    # pg_stat_replication on the primary stays fresh.
    "wal_receiver_status_interval": "1s",
}

_TOOL_TIMEOUT = 120.0


class ClusterError(RuntimeError):
    """A PostgreSQL tool or statement failed, or a cluster did not reach a state in time."""


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory (Debian layout), if any."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    return versions[-1].parent if versions else None


def require_private_postgres(*tools: str) -> Path:
    """The bin directory with initdb, pg_ctl, psql and `tools`; skips the test (fails it where
    CI=true) when a private cluster cannot be started here."""
    bin_dir = pg_bin()
    missing = [
        tool
        for tool in ("initdb", "pg_ctl", "psql", *tools)
        if bin_dir is None or not (bin_dir / tool).exists()
    ]
    if missing or shutil.which("runuser") is None or os.geteuid() != 0:
        message = "a private PostgreSQL cluster needs initdb, runuser and root" + (
            f" (missing: {', '.join(missing)})" if missing else ""
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    assert bin_dir is not None
    return bin_dir


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(
    bin_dir: Path, tool: str, *args: str, cwd: Path, timeout: float = _TOOL_TIMEOUT
) -> str:
    """Run a PostgreSQL tool as the postgres user; its standard output, or ClusterError."""
    command = ["runuser", "-u", "postgres", "--", str(bin_dir / tool), *args]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd
        )
    except subprocess.TimeoutExpired as exc:
        raise ClusterError(f"{tool} took more than {timeout} s: {shlex.join(command)}") from exc
    if done.returncode != 0:
        raise ClusterError(
            f"{tool} exited with {done.returncode}: {shlex.join(command)}\n"
            f"{done.stderr.strip()}\n{done.stdout.strip()}".rstrip()
        )
    return done.stdout


def _setting(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


class Lsn(int):
    """A WAL position (pg_lsn): compares as a number, prints as PostgreSQL does (0/3000148)."""

    @classmethod
    def parse(cls, text: str) -> Lsn:
        high, low = text.strip().split("/")
        return cls((int(high, 16) << 32) | int(low, 16))

    def __str__(self) -> str:
        return f"{self >> 32:X}/{self & 0xFFFFFFFF:X}"

    def __repr__(self) -> str:
        return f"Lsn('{self}')"


# Clusters started and not yet stopped: killed at interpreter exit should a fixture's own cleanup
# never run.
_LIVE: set[Cluster] = set()


@atexit.register
def _kill_leftovers() -> None:
    for leftover in list(_LIVE):
        leftover.kill()


class Cluster:
    """One private PostgreSQL server: data in `root/name`, log in `root/name.log`, listening on
    127.0.0.1:`port` and on a unix socket in its data directory, trust authentication for the
    `postgres` user.

    `settings`: server settings (`-c name=value`) over LEAN_SETTINGS, given at every start.
    `initdb=False`: the data directory is made by someone else (a base backup, `Replicated`).
    """

    def __init__(
        self,
        root: Path,
        *,
        name: str = "data",
        settings: Mapping[str, object] | None = None,
        initdb: bool = True,
    ) -> None:
        self.bin = require_private_postgres()
        self.root = root
        self.name = name
        self.data = root / name
        self.log = root / f"{name}.log"
        self.port = free_port()
        self.settings: dict[str, str] = {
            **LEAN_SETTINGS,
            **{key: _setting(value) for key, value in (settings or {}).items()},
        }
        self._started = False
        # Not under pytest's tmp_path: its parents are private to root, and postgres must reach it.
        root.chmod(0o777)
        if initdb:
            self.tool(
                "initdb",
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            )

    def __repr__(self) -> str:
        return f"<Cluster {self.name} 127.0.0.1:{self.port} {self.data}>"

    def tool(self, tool: str, *args: str, timeout: float = _TOOL_TIMEOUT) -> str:
        """Run one of PostgreSQL's tools (initdb, pg_ctl, pg_basebackup...) as postgres."""
        return _as_postgres(self.bin, tool, *args, cwd=self.root, timeout=timeout)

    def _options(self) -> str:
        options = [
            f"-p {self.port}",
            f"-k {shlex.quote(str(self.data))}",
            "-c listen_addresses=127.0.0.1",
        ]
        options += [f"-c {shlex.quote(f'{key}={value}')}" for key, value in self.settings.items()]
        return " ".join(options)

    def start(self) -> None:
        """Start the server and wait until it takes connections (a hot standby: read-only ones).
        The first start picks another free port should someone have taken this one meanwhile."""
        for attempt in (1, 2, 3):
            logged = self.log.stat().st_size if self.log.exists() else 0
            _LIVE.add(self)
            try:
                self.tool(
                    "pg_ctl",
                    "-D",
                    str(self.data),
                    "-o",
                    self._options(),
                    "-l",
                    str(self.log),
                    "-w",
                    "-t",
                    "60",
                    "start",
                )
            except ClusterError as exc:
                log = self.log.read_text(errors="replace")[logged:] if self.log.exists() else ""
                if not self._started and attempt < 3 and "could not bind" in log:
                    self.port = free_port()
                    continue
                raise ClusterError(f"{exc}\n--- {self.log}:\n{log[-3000:]}") from exc
            self._started = True
            return

    def stop(self) -> None:
        """A fast shutdown: sessions are ended, the server checkpoints and exits."""
        self.tool("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        _LIVE.discard(self)

    def kill(self) -> None:
        """An immediate shutdown (no checkpoint: the next start recovers); nothing when the
        server is not running."""
        command = [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *command],
            capture_output=True,
            check=False,
            timeout=_TOOL_TIMEOUT,
            cwd=self.root,
        )
        _LIVE.discard(self)

    @property
    def running(self) -> bool:
        """pg_ctl status: a postmaster runs on the data directory."""
        command = [str(self.bin / "pg_ctl"), "status", "-D", str(self.data)]
        status = subprocess.run(
            ["runuser", "-u", "postgres", "--", *command],
            capture_output=True,
            check=False,
            timeout=_TOOL_TIMEOUT,
            cwd=self.root,
        )
        return status.returncode == 0

    def psql(self, sql: str, database: str = "postgres", *, timeout: float = 30.0) -> str:
        """Run SQL (one statement, or several as one transaction) through the unix socket and
        return its rows as psql -At prints them: one a line, columns separated by |."""
        return self.tool(
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.data),
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            database,
            "-At",
            "-c",
            sql,
            timeout=timeout,
        ).strip()

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"


@dataclass(frozen=True)
class Database:
    """A database made by `Replicated.create_database`: its URL on the primary and each
    replica's."""

    name: str
    primary_url: str
    replica_urls: tuple[str, ...]

    @property
    def replica_url(self) -> str:
        return self.replica_urls[0]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identifier(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


class Replicated:
    """A primary and `replicas` hot standbys streaming from it (physical replication, one slot
    each, so a stopped replica finds every WAL segment it missed when it comes back).

    The primary and the replicas get REPLICATION_SETTINGS and `settings` over LEAN_SETTINGS. Each
    replica is a `pg_basebackup -R -X stream` of the primary, started on a port of its own.
    Methods taking `index` address one replica (0: the first, also `replica`).
    """

    def __init__(
        self, root: Path, *, replicas: int = 1, settings: Mapping[str, object] | None = None
    ) -> None:
        if replicas < 1:
            raise ValueError("a Replicated cluster has at least one replica")
        require_private_postgres("pg_basebackup")
        self.root = root
        self.settings: dict[str, object] = {**REPLICATION_SETTINGS, **(settings or {})}
        self.primary = Cluster(root, name="primary", settings=self.settings)
        self.replicas: list[Cluster] = []
        self._wanted = replicas

    def __repr__(self) -> str:
        return f"<Replicated primary={self.primary!r} replicas={self.replicas!r}>"

    @property
    def replica(self) -> Cluster:
        return self.replicas[0]

    def start(self) -> None:
        """Start the primary, make the replicas from base backups of it and start them; returns
        once every replica has replayed all the primary has written."""
        self.primary.start()
        for number in range(len(self.replicas) + 1, self._wanted + 1):
            name = f"replica{number}"
            replica = Cluster(self.root, name=name, settings=self.settings, initdb=False)
            self.primary.tool(
                "pg_basebackup",
                "-D",
                str(replica.data),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.primary.port),
                "-U",
                "postgres",
                "-X",
                "stream",
                "-R",
                "--create-slot",
                "--slot",
                name,
                "--checkpoint=fast",
                "--no-sync",
            )
            self.replicas.append(replica)
            replica.start()
        self.wait_caught_up()

    def close(self) -> None:
        """Immediate stop of every server (replicas first), then the directory goes."""
        for server in [*self.replicas, self.primary]:
            server.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def stop_replica(self, index: int = 0, *, immediate: bool = False) -> None:
        replica = self.replicas[index]
        if immediate:
            replica.kill()
        else:
            replica.stop()

    def start_replica(self, index: int = 0) -> None:
        """Start a stopped replica; it streams what it missed (`wait_caught_up` waits for it)."""
        self.replicas[index].start()

    def pause_replay(self, index: int = 0, *, timeout: float = 10.0) -> None:
        """Pause WAL replay on a replica and wait until it is paused: from then on the replica
        keeps receiving WAL but shows nothing new."""
        replica = self.replicas[index]
        replica.psql("SELECT pg_wal_replay_pause()")
        _wait_until(
            lambda: replica.psql("SELECT pg_get_wal_replay_pause_state()") == "paused",
            time.monotonic() + timeout,
            f"replay on {replica!r} did not pause within {timeout} s",
        )

    def resume_replay(self, index: int = 0) -> None:
        self.replicas[index].psql("SELECT pg_wal_replay_resume()")

    def replay_paused(self, index: int = 0) -> bool:
        return self.replicas[index].psql("SELECT pg_is_wal_replay_paused()") == "t"

    @contextlib.contextmanager
    def paused(self, index: int = 0) -> Iterator[None]:
        """Replay paused inside, resumed at the end (even when the block fails)."""
        self.pause_replay(index)
        try:
            yield
        finally:
            if self.replicas[index].running:
                self.resume_replay(index)

    @contextlib.contextmanager
    def replica_stopped(self, index: int = 0, *, immediate: bool = False) -> Iterator[None]:
        """A replica stopped inside, started again at the end (even when the block fails)."""
        self.stop_replica(index, immediate=immediate)
        try:
            yield
        finally:
            if not self.replicas[index].running:
                self.start_replica(index)

    def replay_lsn(self, index: int = 0) -> Lsn:
        """The end of the last WAL record the replica has replayed (pg_last_wal_replay_lsn)."""
        replica = self.replicas[index]
        text = replica.psql("SELECT pg_last_wal_replay_lsn()")
        if not text:
            raise ClusterError(f"{replica!r} reports no replay position (not a standby?)")
        return Lsn.parse(text)

    def current_lsn(self) -> Lsn:
        """How far the primary has written WAL (pg_current_wal_lsn)."""
        return Lsn.parse(self.primary.psql("SELECT pg_current_wal_lsn()"))

    def wait_caught_up(self, timeout: float = 10.0, *, index: int | None = None) -> Lsn:
        """Wait until the replica (`index`; every one when None) has replayed everything the
        primary had written when called; returns that position. A replica whose replay is
        paused never catches up: ClusterError after `timeout` seconds."""
        target = self.current_lsn()
        chosen = range(len(self.replicas)) if index is None else [index]
        deadline = time.monotonic() + timeout
        for number in chosen:
            try:
                _wait_until(
                    lambda: self.replay_lsn(number) >= target,  # noqa: B023 (called in this turn)
                    deadline,
                    f"{self.replicas[number]!r} did not replay up to {target} within {timeout} s",
                )
            except ClusterError as exc:
                if self.replicas[number].running and self.replay_paused(number):
                    raise ClusterError(f"{exc} (its replay is paused)") from exc
                raise
        return target

    def create_database(self, name: str, *, timeout: float = 10.0) -> Database:
        """CREATE DATABASE on the primary; returns once every replica shows it too."""
        self.primary.psql(f"CREATE DATABASE {_identifier(name)}")
        self.wait_caught_up(timeout)
        for replica in self.replicas:
            found = replica.psql(
                f"SELECT count(*) FROM pg_database WHERE datname = {_literal(name)}"
            )
            if found != "1":
                raise ClusterError(f"database {name!r} is not on {replica!r}")
        return Database(
            name=name,
            primary_url=self.primary.url_for(name),
            replica_urls=tuple(replica.url_for(name) for replica in self.replicas),
        )

    def reset(self, timeout: float = 30.0) -> None:
        """Back to streaming: every server running, replay resumed, replicas caught up (for a
        test that found the shared pair as an earlier test left it)."""
        if not self.primary.running:
            self.primary.start()
        for index, replica in enumerate(self.replicas):
            if not replica.running:
                replica.start()
            if self.replay_paused(index):
                self.resume_replay(index)
        self.wait_caught_up(timeout)


def _wait_until(done: Callable[[], bool], deadline: float, failure: str) -> None:
    while not done():
        if time.monotonic() > deadline:
            raise ClusterError(failure)
        time.sleep(0.05)


def _new_root() -> Path:
    return Path(tempfile.mkdtemp(prefix="jobql-pg-"))


@contextlib.contextmanager
def private_cluster(settings: Mapping[str, object] | None = None) -> Iterator[Cluster]:
    """A started `Cluster`, killed and removed at the end (for fixtures of any scope)."""
    root = _new_root()
    private: Cluster | None = None
    try:
        private = Cluster(root, settings=settings)
        private.start()
        yield private
    finally:
        if private is not None:
            private.kill()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def replicated_cluster(
    replicas: int = 1, settings: Mapping[str, object] | None = None
) -> Iterator[Replicated]:
    """A started `Replicated`, every server killed and the directory removed at the end (for
    fixtures of any scope)."""
    root = _new_root()
    pair: Replicated | None = None
    try:
        pair = Replicated(root, replicas=replicas, settings=settings)
        pair.start()
        yield pair
    finally:
        if pair is not None:
            pair.close()
        shutil.rmtree(root, ignore_errors=True)


# Fixtures named apart from their functions: a test module imports the function
# (`from tests.clusters import cluster_fixture`) and its tests take `cluster`, which shadows
# nothing.
@pytest.fixture(name="cluster")
def cluster_fixture() -> Iterator[Cluster]:
    """A private cluster of the test's own, started."""
    with private_cluster() as private:
        yield private


@pytest.fixture(name="replicated", scope="module")
def replicated_fixture() -> Iterator[Replicated]:
    """A primary with one streaming replica, shared by the tests of a module (start-up takes a
    few seconds). A test makes its own database with `create_database`. A test that pauses
    replay or stops a server restores it (`paused()`, `replica_stopped()` do, even on failure),
    or calls `reset()`; a module needing something else makes its own fixture with
    `replicated_cluster(...)`."""
    with replicated_cluster() as pair:
        yield pair
