"""A private PostgreSQL cluster for the benchmark (initdb + pg_ctl on a free port).

Private so that pg_stat_statements can count statements per request, so that /proc shows the CPU
of this cluster's processes only, and so that the shared server of the tests is left alone. The
data directory lives outside the repository and is kept between runs (full mode reuses its data).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import socket
import subprocess
import time
from pathlib import Path

from bench import procs

BIN = Path(os.environ.get("JOBQL_BENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))


def default_data_dir(version: str) -> Path:
    if override := os.environ.get("JOBQL_BENCH_PGDATA"):
        return Path(override)
    if os.geteuid() == 0:
        # /root is not readable by the postgres user the cluster runs as.
        return Path("/var/tmp/jobql-bench") / f"pg{version}"
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "jobql-bench" / f"pg{version}"


class ClusterError(RuntimeError):
    pass


class PrivateCluster:
    def __init__(self, data_dir: Path | None = None, port: int | None = None) -> None:
        if not (BIN / "initdb").exists():
            raise ClusterError(
                f"{BIN}/initdb not found: install PostgreSQL 15 (Debian postgresql-15) "
                "or pass --postgres-url to use an existing server"
            )
        self.version = _version()
        self.data_dir = data_dir or default_data_dir(self.version.split(".")[0])
        self.port = port or _free_port()
        self.has_pg_stat_statements = (
            Path(
                f"/usr/lib/postgresql/{self.version.split('.')[0]}/lib/pg_stat_statements.so"
            ).exists()
            or (BIN.parent / "lib" / "pg_stat_statements.so").exists()
        )
        self._started = False

    @property
    def url_base(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}"

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        prefix: list[str] = []
        if os.geteuid() == 0:
            prefix = ["runuser", "-u", "postgres", "--"]
        return subprocess.run(
            [*prefix, *argv], capture_output=True, text=True, check=False, timeout=120
        )

    def start(self) -> None:
        if not (self.data_dir / "PG_VERSION").exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                user = pwd.getpwnam("postgres")
                for path in [self.data_dir, *self.data_dir.parents]:
                    if path == Path("/var/tmp") or path == Path("/"):
                        break
                    os.chown(path, user.pw_uid, user.pw_gid)
            print(f"[pg] initdb {self.data_dir}", flush=True)
            done = self._run(
                str(BIN / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-instructions",
            )
            if done.returncode:
                raise ClusterError(f"initdb failed:\n{done.stdout}\n{done.stderr}")
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.data_dir}",
            "-c max_connections=300",
            "-c shared_buffers=512MB",
            "-c fsync=off",
            "-c synchronous_commit=off",
            "-c full_page_writes=off",
            "-c max_wal_size=4GB",
            "-c jit=off",
        ]
        if self.has_pg_stat_statements:
            options += [
                "-c shared_preload_libraries=pg_stat_statements",
                "-c pg_stat_statements.max=10000",
            ]
        log = self.data_dir / "bench.log"
        # Registered before it runs: a Ctrl-C during start-up still stops it.
        procs.register_cleanup(self.stop)
        done = self._run(
            str(BIN / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "-o",
            " ".join(options),
            "start",
        )
        if done.returncode:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise ClusterError(f"pg_ctl start failed:\n{done.stdout}\n{done.stderr}\n{tail}")
        self._started = True
        print(f"[pg] private PostgreSQL {self.version} on 127.0.0.1:{self.port}", flush=True)

    def stop(self) -> None:
        if not self._started:
            pid_file = self.data_dir / "postmaster.pid"
            if not pid_file.exists():
                return
        self._run(str(BIN / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
        self._started = False
        print("[pg] private PostgreSQL stopped", flush=True)

    def postmaster_pid(self) -> int:
        text = (self.data_dir / "postmaster.pid").read_text()
        return int(text.split()[0])

    def pin(self, cpus: int) -> set[int]:
        """Pin the cluster to its first `cpus` cores (what `taskset -a -p` does): the postmaster
        and every process it has started; backends it forks later inherit the mask."""
        chosen = set(sorted(os.sched_getaffinity(0))[:cpus])
        postmaster = self.postmaster_pid()
        for pid in [postmaster, *_children(postmaster)]:
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(ProcessLookupError):
                    os.sched_setaffinity(int(task.name), chosen)
        return chosen


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _version() -> str:
    out = subprocess.run(
        [str(BIN / "postgres"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"PostgreSQL\)\s+(\S+)", out)
    return match.group(1) if match else out.strip()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise ClusterError(f"nothing listens on port {port} after {timeout} s")
