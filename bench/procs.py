"""Processes the benchmark starts, their cleanup (also on Ctrl-C and failure), and /proc figures."""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

_cleanups: list[Callable[[], None]] = []
TICKS = os.sysconf("SC_CLK_TCK")


def register_cleanup(action: Callable[[], None]) -> None:
    _cleanups.append(action)


def cleanup_all() -> None:
    while _cleanups:
        action = _cleanups.pop()
        try:
            action()
        except Exception as exc:  # cleanup must go on with the others
            print(f"[cleanup] {exc}", flush=True)


def _on_signal(signum: int, _frame: Any) -> None:
    cleanup_all()
    raise SystemExit(128 + signum)


def install_handlers() -> None:
    atexit.register(cleanup_all)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    # Ctrl-C raises KeyboardInterrupt (also when started in the background, where SIGINT comes
    # ignored); the runner's finally and atexit clean up.
    signal.signal(signal.SIGINT, signal.default_int_handler)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """A server subprocess in its own process group, stopped by `stop()` or at exit."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        port: int,
        log_dir: Path,
        cwd: Path | None = None,
        health: str = "/healthz",
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.port = port
        self.cwd = cwd
        self.health = health
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> None:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        register_cleanup(self.stop)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start-up:\n{self.log_tail()}")
            if self._healthy():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not healthy after {timeout} s:\n{self.log_tail()}")

    def _healthy(self) -> bool:
        try:
            if self.health.startswith("POST "):
                request = urllib.request.Request(
                    self.url + self.health[5:],
                    data=b'{"query":"{ __typename }"}',
                    headers={"content-type": "application/json"},
                )
            else:
                request = urllib.request.Request(self.url + self.health)
            with urllib.request.urlopen(request, timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:]) or "(no output)"

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def tree_pids(root: int) -> list[int]:
    tree = _children()
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(tree.get(pid, []))
    return pids


def cpu_seconds(root: int) -> float:
    """utime+stime of `root` and its live descendants, plus what exited children left in `root`'s
    cutime+cstime (the postmaster's backends come and go)."""
    total = 0.0
    for pid in tree_pids(root):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields[11..14] = utime stime cutime cstime (stat fields 14..17)
        total += int(fields[11]) + int(fields[12])
        if pid == root:
            total += int(fields[13]) + int(fields[14])
    return total / TICKS


def peak_rss_mb(root: int) -> float:
    """Sum of VmHWM (peak resident set) over the process tree, in MiB."""
    total_kb = 0
    for pid in tree_pids(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024
