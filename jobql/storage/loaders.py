"""Per-request loaders of the reference strategy: one statement per batch, whatever its size.

Connection loaders take `(parent id, page arguments...)` keys; keys that share page arguments are
answered by one statement that limits per parent with row_number().
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

from aiodataloader import DataLoader
from sqlalchemy import Row

from jobql.storage import instances, jobs, nodes
from jobql.storage.engine import Reader
from jobql.storage.instances import InstanceFilter, InstanceOrder
from jobql.storage.paging import KeysetWindow, Page

# Bounded so that one IN list stays far below every driver's bound-parameter cap.
MAX_BATCH = 5_000

K = TypeVar("K", bound=Hashable)
P = TypeVar("P", bound=Hashable)
A = TypeVar("A", bound=Hashable)
V = TypeVar("V")
L = TypeVar("L", bound="_Loader")


class ShieldedDataLoader(DataLoader[Any, Any]):
    """aiodataloader's DataLoader, except that a caller cancelled while it awaits a load cancels
    only its own wait. Every loader of a request derives from it.

    aiodataloader hands every caller of one key the same future (its cache), and cancelling a
    task cancels the future it awaits. graphql-core cancels the unfinished siblings of a field
    whose error propagates; the other callers of that key (the other items of a list) would get
    the CancelledError as their value, which is no Exception: nothing catches it, and it ends
    the request with no answer."""

    def load(self, key: Any) -> asyncio.Future[Any]:
        shared = super().load(key)
        # When every caller has gone (cancelled), nobody retrieves its outcome: marked retrieved
        # here, so that asyncio does not log it as "never retrieved" (e.g. ReaderClosed).
        shared.add_done_callback(_retrieved)
        return asyncio.shield(shared)


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class _Loader(ShieldedDataLoader):
    def __init__(self, reader: Reader, workspace: str, *, cache: bool = True) -> None:
        super().__init__(max_batch_size=MAX_BATCH, cache=cache)
        self.reader = reader
        self.workspace = workspace


class _ByIdLoader(_Loader):
    fetch: Callable[[Reader, str, Sequence[int]], Awaitable[dict[int, Row[Any]]]]

    async def batch_load_fn(self, keys: Sequence[int]) -> list[Row[Any] | None]:
        found = await type(self).fetch(self.reader, self.workspace, keys)
        return [found.get(key) for key in keys]


class JobByIdLoader(_ByIdLoader):
    fetch = staticmethod(jobs.jobs_by_ids)


class InstanceByIdLoader(_ByIdLoader):
    fetch = staticmethod(instances.instances_by_ids)


class NodeByIdLoader(_ByIdLoader):
    fetch = staticmethod(nodes.nodes_by_ids)


async def _grouped(
    keys: Sequence[tuple[P, A]],
    fetch: Callable[[list[P], A], Awaitable[dict[P, V]]],
) -> list[V]:
    """Answer (parent, arguments) keys with one fetch per distinct arguments."""
    by_arguments: dict[A, list[P]] = defaultdict(list)
    for parent_id, arguments in keys:
        by_arguments[arguments].append(parent_id)
    results: dict[tuple[P, A], V] = {}
    for arguments, parent_ids in by_arguments.items():
        unique = list(dict.fromkeys(parent_ids))
        for parent_id, value in (await fetch(unique, arguments)).items():
            results[(parent_id, arguments)] = value
    return [results[key] for key in keys]


InstancePageArgs = tuple[InstanceFilter, InstanceOrder, KeysetWindow]
NodePageArgs = tuple[tuple[str, ...] | None, KeysetWindow]


class InstancesByJobIdLoader(_Loader):
    async def batch_load_fn(
        self, keys: Sequence[tuple[int, InstancePageArgs]]
    ) -> list[Page[Row[Any]]]:
        async def fetch(job_ids: list[int], args: InstancePageArgs) -> dict[int, Page[Row[Any]]]:
            spec, order, window = args
            return await instances.instances_for_jobs(
                self.reader, self.workspace, job_ids, spec, order, window
            )

        return await _grouped(keys, fetch)


class InstanceCountByJobIdLoader(_Loader):
    async def batch_load_fn(self, keys: Sequence[tuple[int, InstanceFilter]]) -> list[int]:
        async def fetch(job_ids: list[int], spec: InstanceFilter) -> dict[int, int]:
            return await instances.count_instances_for_jobs(
                self.reader, self.workspace, job_ids, spec
            )

        return await _grouped(keys, fetch)


class NodesByInstanceIdLoader(_Loader):
    """Keys ((instance id, its plan time), page arguments): the plan time is the node
    partitions' key (see `nodes.of_instances`)."""

    async def batch_load_fn(
        self, keys: Sequence[tuple[nodes.Parent, NodePageArgs]]
    ) -> list[Page[Row[Any]]]:
        async def fetch(
            parents: list[nodes.Parent], args: NodePageArgs
        ) -> dict[nodes.Parent, Page[Row[Any]]]:
            statuses, window = args
            found = await nodes.nodes_for_instances(
                self.reader, self.workspace, parents, statuses, window
            )
            return {parent: found[parent[0]] for parent in parents}

        return await _grouped(keys, fetch)


class NodeCountByInstanceIdLoader(_Loader):
    """Keys ((instance id, its plan time), node statuses or None)."""

    async def batch_load_fn(
        self, keys: Sequence[tuple[nodes.Parent, tuple[str, ...] | None]]
    ) -> list[int]:
        async def fetch(
            parents: list[nodes.Parent], statuses: tuple[str, ...] | None
        ) -> dict[nodes.Parent, int]:
            found = await nodes.count_nodes_for_instances(
                self.reader, self.workspace, parents, statuses
            )
            return {parent: found[parent[0]] for parent in parents}

        return await _grouped(keys, fetch)


class _MadeOnFirstUse(Generic[L]):
    """A `Loaders` attribute: its loader is made on first access and kept for the request."""

    def __init__(self, loader: type[L]) -> None:
        self.loader = loader

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, loaders: Loaders, owner: type | None = None) -> L:
        made = self.loader(loaders._reader, loaders._workspace, cache=loaders._cache)
        loaders.__dict__[self.name] = made  # later lookups find the instance attribute first
        return made


class Loaders:
    """The loaders of one request. Never share them: they cache rows of one workspace.

    Each is made on first use: a request the compiled strategy answers needs none of them."""

    job_by_id = _MadeOnFirstUse(JobByIdLoader)
    instance_by_id = _MadeOnFirstUse(InstanceByIdLoader)
    node_by_id = _MadeOnFirstUse(NodeByIdLoader)
    instances_by_job_id = _MadeOnFirstUse(InstancesByJobIdLoader)
    instance_count_by_job_id = _MadeOnFirstUse(InstanceCountByJobIdLoader)
    nodes_by_instance_id = _MadeOnFirstUse(NodesByInstanceIdLoader)
    node_count_by_instance_id = _MadeOnFirstUse(NodeCountByInstanceIdLoader)

    def __init__(self, reader: Reader, workspace: str, *, cache: bool = True) -> None:
        self._reader = reader
        self._workspace = workspace
        self._cache = cache

    @classmethod
    def create(cls, reader: Reader, workspace: str, *, cache: bool = True) -> Loaders:
        """Loaders that batch; `cache=False` for contexts that outlive one operation."""
        return cls(reader, workspace, cache=cache)
