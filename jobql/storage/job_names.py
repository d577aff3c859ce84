"""Job names by job id, kept per database for the compiled reads.

An instance's `jobName` cost its compiled statement a correlated subquery per row (two buffer
hits each: 150 of W1's 385, and 5-10% of its database CPU). But a job is keyed by its name and
never renamed nor deleted, and ids are never reused, so the server can know id -> name: the
compiled statement returns the instance's `job_id`, and the `Shaper` maps it through the names
of its database (`JobNames`). Ids it does not know yet are read in one more statement and the
rows shaped again (`Naming`), so a warm request is still one statement.

One `JobNames` per database (its engine; the workspaces of JOBQL_WORKSPACE_DATABASES live in
several), bounded: the least recently used names make room. Everything it does is synchronous,
so tasks of one event loop never see it half changed; names read for a request are kept with
that request (`Naming.known`) until it is shaped, whatever other requests evict meanwhile.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import bindparam, select

from jobql.storage.engine import Reader
from jobql.storage.models import Job
from jobql.storage.scope import in_workspace

# About 200 bytes a name in CPython (an OrderedDict entry, the int, a 20-character str): 100,000
# names are ~20 MB per database, and more jobs than any workspace set seen here (the benchmark's
# data has 4,000; a scheduler with 100,000 live jobs would show a few misses a request, each
# one statement for the page's missing names, never one per row).
CAPACITY = 100_000
# Ids per statement of `read_names`: under SQLite's bound-parameter limit (32,766); a page
# holds at most a few thousand instances, so a request's misses take one statement.
CHUNK = 10_000


class JobNames:
    """One database's job names by id, the least recently used dropped beyond `capacity`."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._names: OrderedDict[int, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, key: object) -> bool:
        return key in self._names

    def get(self, key: int) -> str | None:
        names = self._names
        try:
            name = names[key]
        except KeyError:
            return None
        names.move_to_end(key)
        return name

    def put(self, found: Mapping[int, str]) -> None:
        names = self._names
        for key, name in found.items():
            names[key] = name
            names.move_to_end(key)
        while len(names) > self.capacity:
            names.popitem(last=False)


_CACHES: weakref.WeakKeyDictionary[Any, JobNames] = weakref.WeakKeyDictionary()


def of(reader: Reader) -> JobNames:
    """The job names of the reader's database (its primary's: a replica has the same jobs)."""
    database = reader.database
    names = _CACHES.get(database)
    if names is None:
        names = _CACHES[database] = JobNames(CAPACITY)
    return names


async def read_names(
    reader: Reader, workspace: str, keys: Iterable[int], *, autocommit: bool = False
) -> dict[int, str]:
    """The names of the jobs `keys` of the workspace, one statement per `CHUNK` of them."""
    wanted = sorted(keys)
    statement = select(Job.id, Job.name).where(
        in_workspace(Job.workspace_id, workspace),  # type: ignore[arg-type]
        Job.id.in_(bindparam("keys", expanding=True)),
    )
    found: dict[int, str] = {}
    for at in range(0, len(wanted), CHUNK):
        chunk = wanted[at : at + CHUNK]
        rows = await reader.execute(statement.params(keys=chunk), autocommit=autocommit)
        found.update((int(key), name) for key, name in rows)
    return found


class Naming:
    """The names one shaping of a statement's rows uses. Each name it takes from its
    database's is kept in `known` with those read for it, so that shaping again after the read
    finds them all, whatever other requests evicted meanwhile; the ids found nowhere
    (`missing`) are read and the rows shaped again."""

    __slots__ = ("known", "missing", "names")

    def __init__(self, names: JobNames) -> None:
        self.names = names
        self.known: dict[int, str] = {}
        self.missing: set[int] = set()

    def __call__(self, key: int | None) -> str | None:
        if key is None:
            return None
        name = self.known.get(key)
        if name is None:
            name = self.names.get(key)
            if name is None:
                self.missing.add(key)
                return None
            self.known[key] = name
        return name

    async def read_missing(self, reader: Reader, workspace: str, *, autocommit: bool) -> None:
        """Read the missing names (into `known` and the database's names)."""
        found = await read_names(reader, workspace, self.missing, autocommit=autocommit)
        self.known.update(found)
        self.names.put(found)
        self.missing = set()


_NAMING: ContextVar[Naming] = ContextVar("jobql_job_naming")


@contextmanager
def naming(current: Naming) -> Iterator[None]:
    """`current` answers `job_name` in this block (shaping is synchronous: no task switches)."""
    token = _NAMING.set(current)
    try:
        yield
    finally:
        _NAMING.reset(token)


def job_name(key: int | None) -> str | None:
    """The name of job `key`, for the `Shaper`'s generated code (inside `naming`)."""
    return _NAMING.get()(key)


__all__ = ["CAPACITY", "JobNames", "Naming", "job_name", "naming", "of", "read_names"]
