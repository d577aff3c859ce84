"""What every use case needs for one request: its workspace, its connection, its loaders."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from jobql.errors import Forbidden
from jobql.storage.engine import Reader, is_statement_error, is_unavailable
from jobql.storage.identifiers import CursorCodec
from jobql.storage.loaders import Loaders
from jobql.storage.placement import engine_for
from jobql.storage.replicas import (
    COMMIT_LSNS,
    LSN_HEADER,
    BadLsn,
    capture_commit_lsns,
    format_lsn,
    parse_lsn,
    replicas_of,
)
from jobql.storage.stats import StatsLoaders

__all__ = [
    "DEFAULT_WORKSPACE",
    "LSN_HEADER",
    "AsyncEngine",
    "BadLsn",
    "CursorCodec",
    "Reader",
    "RequestContext",
    "capture_commit_lsns",
    "has_replicas",
    "is_statement_error",
    "is_unavailable",
    "parse_lsn",
    "written_lsn",
]

DEFAULT_WORKSPACE = "default"


ALL_SCOPES = frozenset({"read", "write"})


@dataclass(slots=True)
class RequestContext:
    workspace: str
    reader: Reader
    loaders: Loaders
    cursors: CursorCodec
    engine: AsyncEngine
    # What the caller may do in `workspace`; everything until access control configures less.
    scopes: frozenset[str] = ALL_SCOPES
    # How each root field was served ("compiled" or "reference"), by response key.
    strategies: dict[str, str] = field(default_factory=dict)
    # The text of the operation being run (its hash names it in logs), set by the schema.
    document: str | None = None
    # Read-your-writes: the WAL position the client last wrote at (its `JobQL-LSN` header); a
    # replica serves this request's reads only once it has replayed it.
    min_lsn: int | None = None
    # A subscription's `jobql.resolvers.live.Live` (how it reads events); None elsewhere.
    live: object | None = None
    # The statistics' loaders (`jobql.storage.stats`), made on first use; rows are cached for
    # the request unless the context outlives one operation.
    cache_rows: bool = True
    _stats_loaders: StatsLoaders | None = None

    @property
    def stats_loaders(self) -> StatsLoaders:
        if self._stats_loaders is None:
            self._stats_loaders = StatsLoaders(self.reader, self.workspace, cache=self.cache_rows)
        return self._stats_loaders

    @classmethod
    def open(
        cls,
        engine: AsyncEngine,
        cursors: CursorCodec,
        workspace: str | None,
        *,
        long_lived: bool = False,
        scopes: frozenset[str] = ALL_SCOPES,
    ) -> RequestContext:
        """A context for one request; `long_lived` for a WebSocket connection's many operations
        (no connection held between statements, no rows cached between operations)."""
        name = workspace if workspace else DEFAULT_WORKSPACE
        # The database that holds the workspace (JOBQL_WORKSPACE_DATABASES), and its replicas.
        engine = engine_for(engine, name)
        reader = Reader(engine, hold=not long_lived, replicas=replicas_of(engine))
        return cls(
            workspace=name,
            reader=reader,
            loaders=Loaders.create(reader, name, cache=not long_lived),
            cursors=cursors,
            engine=engine,
            scopes=scopes,
            cache_rows=not long_lived,
        )

    def rebind(self, workspace: str | None, scopes: frozenset[str]) -> None:
        """Move a connection's context to another workspace (a WebSocket's connection_init)."""
        self.workspace = workspace if workspace else DEFAULT_WORKSPACE
        self.scopes = scopes
        placed = engine_for(self.engine, self.workspace)
        if placed is not self.engine:  # the workspace lives in another database
            self.engine = placed
            self.reader = Reader(placed, hold=False, replicas=replicas_of(placed))
        self.loaders = Loaders.create(self.reader, self.workspace, cache=False)
        self.cache_rows = False
        self._stats_loaders = None

    def read_only(self) -> None:
        """The request only reads (a query, a GET of a source API): a read replica may serve
        it (jobql.storage.replicas), unless it is behind `min_lsn`."""
        self.reader.prefer_replica(self.min_lsn)

    def note_strategy(self, response_key: str, strategy: str) -> None:
        self.strategies[response_key] = strategy

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"This request may not {scope} in workspace {self.workspace!r}.")

    async def close(self) -> None:
        await self.reader.close()


def has_replicas(engine: AsyncEngine) -> bool:
    """Whether read replicas serve `engine`'s reads (then writes report where they committed)."""
    return replicas_of(engine) is not None


def written_lsn() -> str | None:
    """Where the current request's last write committed (`capture_commit_lsns` around it), in
    PostgreSQL's text form; None when it wrote nothing or nobody asked."""
    positions = COMMIT_LSNS.get()
    return format_lsn(max(positions)) if positions else None
