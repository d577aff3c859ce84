"""Workspaces on several databases (JOBQL_WORKSPACE_DATABASES).

Every read and write of jobql is scoped to one workspace, so a workspace can live in a database
of its own with no query ever crossing two: `Placement` says which database holds a workspace,
`Databases` holds one engine per database and hands each request the engine of its workspace.

The map: workspace names or glob patterns (`team-*`, `ws?`; fnmatch's, case-sensitive) to
database URLs. A name written out wins over every pattern; among patterns, the first one written
wins; a workspace nothing matches lives in the main database (JOBQL_DATABASE_URL). Each
database has the whole schema (`jobql migrate` migrates every one) and numbers its own rows:
global ids and cursors name rows of their workspace's database, which is where every request
that uses them reads.
"""

from __future__ import annotations

import fnmatch
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

_GLOB = frozenset("*?[")


class PlacementError(ValueError):
    """A map jobql cannot use."""


@dataclass(frozen=True, slots=True)
class Placement:
    """Which database URL holds each workspace."""

    default_url: str
    # (name or pattern, URL), in the order written.
    rules: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(
        cls, default_url: str, rules: Mapping[str, str] | Iterable[tuple[str, str]]
    ) -> Placement:
        pairs = tuple(rules.items() if isinstance(rules, Mapping) else rules)
        default_backend = _backend(default_url)
        for key, url in pairs:
            if not isinstance(key, str) or not key:
                raise PlacementError(f"{key!r} is not a workspace name or pattern")
            if not isinstance(url, str) or not url:
                raise PlacementError(f"workspace {key!r}: {url!r} is not a database URL")
            backend = _backend(url)
            if backend is None:
                raise PlacementError(
                    f"workspace {key!r}: {_safe(url)!r} is not a database URL "
                    "(sqlite+aiosqlite:// or postgresql+asyncpg://)"
                )
            if backend != default_backend:
                raise PlacementError(
                    f"workspace {key!r}: {backend} beside a {default_backend} main database; "
                    "every database of one jobql is of one kind"
                )
        return cls(default_url, pairs)

    @property
    def spread(self) -> bool:
        """Whether any workspace lives elsewhere than the main database."""
        return any(url != self.default_url for _key, url in self.rules)

    def url_for(self, workspace: str) -> str:
        for key, url in self.rules:
            if key == workspace:
                return url
        for key, url in self.rules:
            if _GLOB.intersection(key) and fnmatch.fnmatchcase(workspace, key):
                return url
        return self.default_url

    def urls(self) -> list[str]:
        """Every database, the main one first, each once."""
        seen = [self.default_url]
        for _key, url in self.rules:
            if url not in seen:
                seen.append(url)
        return seen

    def describe(self, url: str) -> str:
        """The URL without its password, for logs and reports."""
        return _safe(url)


class Databases:
    """One engine per database of a placement (the main one given, the others made by
    `make_engine`); `engine_for` a workspace."""

    def __init__(
        self,
        placement: Placement,
        main: AsyncEngine,
        make_engine: Any,
    ) -> None:
        self.placement = placement
        self.main = main
        self._engines: dict[str, AsyncEngine] = {placement.default_url: main}
        for url in placement.urls()[1:]:
            self._engines[url] = make_engine(url)

    @property
    def engines(self) -> Sequence[AsyncEngine]:
        return list(self._engines.values())

    def engine_for(self, workspace: str) -> AsyncEngine:
        return self._engines[self.placement.url_for(workspace)]

    async def dispose_others(self) -> None:
        """Close every engine but the main one (its owner closes that)."""
        for engine in self._engines.values():
            if engine is not self.main:
                await engine.dispose()


def _backend(url: str) -> str | None:
    try:
        name = make_url(url).get_backend_name()
    except Exception:
        return None
    return name if name in ("sqlite", "postgresql") else None


def _safe(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.rsplit("@", 1)[-1]


# -- which databases a main engine's workspaces live in (set up by the app) -------------------

_DATABASES: weakref.WeakKeyDictionary[Any, Databases] = weakref.WeakKeyDictionary()


def attach(databases: Databases) -> None:
    """Every engine of `databases` finds the others through it (`engine_for`)."""
    for engine in databases.engines:
        _DATABASES[engine.sync_engine] = databases


def engine_for(engine: AsyncEngine, workspace: str) -> AsyncEngine:
    """The engine of `workspace`'s database: `engine` itself unless it is one of a placement's
    databases (`attach`)."""
    databases = _DATABASES.get(engine.sync_engine)
    return engine if databases is None else databases.engine_for(workspace)


def databases_of(engine: AsyncEngine) -> Databases | None:
    return _DATABASES.get(engine.sync_engine)
