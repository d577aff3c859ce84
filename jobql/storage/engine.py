"""Engines and sessions: one place that knows how to open each database."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import Connection, Executable, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util import await_

from jobql.storage.pools import ObservedQueuePool, PoolObserver, observe_engine
from jobql.storage.replicas import COMMIT_LSNS, Replicas, commit_lsn
from jobql.storage.sqlite_functions import register_sqlite_functions

SQLITE_BUSY_TIMEOUT_MS = 5_000
# A writer that still finds the database locked after the busy timeout starts over this often.
WRITE_ATTEMPTS = 5

T = TypeVar("T")
# A statement for the driver ($n text, values) and the position of the value to replace.
DriverTemplate = tuple[str, tuple[Any, ...], int]
# Server settings a driver read asks for (name, value), beside the engine's.
DriverSettings = tuple[tuple[str, str], ...]
logger = logging.getLogger("jobql")


def create_engine(
    database_url: str,
    *,
    pool_size: int = 10,
    pool_timeout: float = 5.0,
    plan_cache_mode: str = "auto",
    observe: bool = False,
) -> AsyncEngine:
    """`observe`: count the pools' checkouts, waits and connections (jobql.storage.pools)."""
    url = make_url(database_url)
    # The dialect's own pool class, timed: SQLAlchemy's asyncio queue pool (not SQLite's
    # in-memory StaticPool). get_pool_class is DefaultDialect's, not in the Dialect interface.
    queued = url.get_dialect().get_pool_class(url) is AsyncAdaptedQueuePool  # type: ignore[attr-defined]
    observed: dict[str, Any] = {"poolclass": ObservedQueuePool} if observe and queued else {}
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(url, **observed)
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        event.listen(engine.sync_engine, "begin", _begin_sqlite)
        if observed:
            pool = engine.sync_engine.pool
            # The default pool's size and overflow (QueuePool's; Pool does not declare them).
            observe_engine(engine.sync_engine, pool.size() + pool._max_overflow)  # type: ignore[attr-defined]
        return engine
    if url.get_backend_name() == "postgresql":
        # For both pools, SQLAlchemy's and the DriverPool.
        connect_args: dict[str, Any] = {
            # A connect attempt that takes longer fails (never hangs).
            "timeout": pool_timeout,
            # PostgreSQL's choice for prepared statements (asyncpg prepares every one):
            # `auto` plans the first five executions for their values and then may keep
            # replanning; `force_generic_plan` plans each statement once per connection.
            "server_settings": {"plan_cache_mode": plan_cache_mode},
        }
        engine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=0,
            # A checkout that waits longer fails (never hangs).
            pool_timeout=pool_timeout,
            connect_args=connect_args,
            # A connection the server dropped (a restart) is noticed before use: recovery
            # without restarting jobql. The ping is one round trip (see _lean_ping).
            pool_pre_ping=True,
            **observed,
        )
        if observed:
            observe_engine(engine.sync_engine, pool_size)
        _use_lean_ping()
        connect = {
            key: value
            for key, value in engine.dialect.create_connect_args(url)[1].items()
            if key not in _SQLALCHEMY_ONLY
        }
        _DRIVER_POOLS[engine.sync_engine] = DriverPool(
            connect | connect_args,
            size=pool_size,
            timeout=pool_timeout,
            observer=PoolObserver("asyncpg", pool_size) if observe else None,
        )
        event.listen(engine.sync_engine, "engine_disposed", _close_driver_pool)
        return engine
    raise ValueError(
        f"unsupported database {url.get_backend_name()!r}: use sqlite+aiosqlite:// or "
        "postgresql+asyncpg://"
    )


async def _lean_async_ping(self: Any) -> None:
    await self._connection.fetchrow(";")


def _use_lean_ping() -> None:
    """Ping with one round trip. SQLAlchemy's asyncpg adapter wraps its pool pre-ping in BEGIN
    and ROLLBACK (for pgbouncer's transaction mode, which jobql does not use): three round trips
    on every checkout, more than a compiled read costs. Its connection class has slots, so the
    replacement is on the class (SQLAlchemy is pinned; tests/test_faults.py covers recovery)."""
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection

    AsyncAdapt_asyncpg_connection._async_ping = _lean_async_ping  # type: ignore[method-assign]


class DriverPool:
    """PostgreSQL: asyncpg's own pool, for the compiled reads that go straight to the driver.

    A checkout from SQLAlchemy's pool costs about as much Python as the compiled read itself: a
    greenlet switch, a ping round trip, the reset on return (measured with py-spy on W3: ~15% of
    the server's CPU). asyncpg's pool does none of that. A connection the server closed is seen
    by asyncpg itself (the socket closes) and replaced on the next acquire; a read that meets a
    connection lost in flight runs once more on a fresh one (reads only: running one twice is
    harmless). Opened on first use, in the running event loop; closed with the engine
    (`AsyncEngine.dispose`), so its connections never outlive the engine's. It holds at most
    `size` connections beside the engine's own pool of the same size.
    """

    def __init__(
        self,
        connect: dict[str, Any],
        *,
        size: int,
        timeout: float,
        observer: PoolObserver | None = None,
    ) -> None:
        self._connect = connect
        self._size = size
        self._timeout = timeout
        self._observer = observer
        self._pool: asyncpg.Pool | None = None
        # Pools whose connections have other settings (see `fetch`), by those settings.
        self._planned: dict[DriverSettings, asyncpg.Pool] = {}
        self._opening = asyncio.Lock()

    async def fetch(
        self, sql: str, args: Sequence[Any], *, settings: DriverSettings = ()
    ) -> list[Any]:
        """`settings`: run it on a connection with these server settings beside the engine's
        (a pool of its own per set of settings, opened on first use, the same size), unless they
        are the connections' own. The subscriptions' by-id reads ask for generic plans without
        sequential scans (`json_sql.BY_KEY`)."""
        own = self._connect.get("server_settings", {})
        if all(own.get(name) == value for name, value in settings):
            pool = self._pool or await self._open()
        else:
            pool = self._planned.get(settings) or await self._open(settings)
        observer = self._observer
        for attempt in (1, 2):
            started = time.perf_counter()
            try:
                connection = await pool.acquire(timeout=self._timeout)
            except TimeoutError:
                if observer is not None:
                    observer.timed_out(started)
                raise
            if observer is not None:
                observer.checked_out(started)
            try:
                return await connection.fetch(sql, *args)  # type: ignore[no-any-return]
            except Exception as exc:
                if not (_connection_lost(exc) or _closed(connection)):
                    raise
                # The pool opens a fresh one on the next acquire. A connection asyncpg saw
                # close is already back in the pool, and says so.
                with contextlib.suppress(asyncpg.exceptions.InterfaceError):
                    connection.terminate()
                if attempt == 2:
                    raise
            finally:
                await pool.release(connection)
        raise AssertionError("unreachable")

    async def _open(self, settings: DriverSettings = ()) -> asyncpg.Pool:
        async with self._opening:
            if settings:
                if settings not in self._planned:
                    merged = {**self._connect.get("server_settings", {}), **dict(settings)}
                    self._planned[settings] = await self._create(
                        {**self._connect, "server_settings": merged}
                    )
                return self._planned[settings]
            if self._pool is None:
                self._pool = await self._create(self._connect)
            return self._pool

    async def _create(self, connect: dict[str, Any]) -> asyncpg.Pool:
        return await asyncpg.create_pool(
            min_size=0,
            max_size=self._size,
            # No timer re-armed on every release, no reset query on every release (a
            # compiled read leaves no session state: no transaction, no SET, no LISTEN).
            max_inactive_connection_lifetime=0,
            reset=_keep_session,
            **connect,
        )

    def publish(self) -> None:
        """Its connections open and in use, for /metrics (jobql.storage.pools)."""
        if self._observer is not None:
            pools = [self._pool, *self._planned.values()]
            size = sum(pool.get_size() for pool in pools if pool is not None)
            idle = sum(pool.get_idle_size() for pool in pools if pool is not None)
            self._observer.publish(size, size - idle)

    async def close(self) -> None:
        """Close the connections, waiting for reads in flight at most the pool timeout (then
        cutting them), as SQLAlchemy's dispose never waits for a checked-out connection."""
        pools = [self._pool, *self._planned.values()]
        self._pool = None
        self._planned = {}
        for pool in pools:
            if pool is None:
                continue
            try:
                await asyncio.wait_for(pool.close(), self._timeout)
            except TimeoutError:
                pool.terminate()


async def _keep_session(_connection: Any) -> None:
    return None


# URL options that SQLAlchemy's asyncpg dialect takes for itself; asyncpg refuses them.
_SQLALCHEMY_ONLY = {"prepared_statement_cache_size", "prepared_statement_name_func"}


def _connection_lost(exc: BaseException) -> bool:
    """The server closed the connection or cannot take one now (restart, shutdown, terminated
    backend), or asyncpg's protocol state broke on an unsolicited FATAL, as opposed to an error
    of the statement itself: those, and a timeout (never run twice), are not retried."""
    return isinstance(
        exc,
        asyncpg.exceptions.PostgresConnectionError  # class 08
        | asyncpg.exceptions.AdminShutdownError
        | asyncpg.exceptions.CrashShutdownError
        | asyncpg.exceptions.CannotConnectNowError
        | asyncpg.exceptions.IdleSessionTimeoutError
        | asyncpg.exceptions.InternalClientError
        | ConnectionError,
    )


def _closed(connection: Any) -> bool:
    """asyncpg's own "connection is closed" errors: the connection says it is closed, or it is
    already back in the pool (asyncpg releases a connection it saw close)."""
    try:
        return bool(connection.is_closed())
    except asyncpg.exceptions.InterfaceError:
        return True


_DRIVER_POOLS: weakref.WeakKeyDictionary[Any, DriverPool] = weakref.WeakKeyDictionary()


def publish_pool_metrics(engine: AsyncEngine) -> None:
    """The connections open and in use in `engine`'s pools, as /metrics shows them (engines
    made with `observe=True`; a no-op for others)."""
    pool = engine.sync_engine.pool
    if isinstance(pool, ObservedQueuePool):
        pool.publish()
    driver = _DRIVER_POOLS.get(_base_engine(engine.sync_engine))
    if driver is not None:
        driver.publish()


def driver_connect_args(engine: AsyncEngine) -> dict[str, Any] | None:
    """PostgreSQL: what asyncpg.connect takes to open a connection like the engine's own (for
    a dedicated one, such as a LISTEN connection); None on other databases."""
    pool = _DRIVER_POOLS.get(_base_engine(engine.sync_engine))
    return None if pool is None else dict(pool._connect)


def _close_driver_pool(sync_engine: Any) -> None:
    # Engine.dispose runs in SQLAlchemy's greenlet bridge (AsyncEngine.dispose), where await_
    # may wait for the pool's connections to close.
    pool = _DRIVER_POOLS.get(_base_engine(sync_engine))
    if pool is not None:
        await_(pool.close())


def _base_engine(sync_engine: Any) -> Any:
    """The engine an `execution_options()` copy (an OptionEngine) stands for."""
    return getattr(sync_engine, "_proxied", sync_engine)


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # The driver must not open transactions on its own: SQLAlchemy's begin emits them (below),
    # so that writers can ask for BEGIN IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    register_sqlite_functions(dbapi_connection)


def _begin_sqlite(connection: Connection) -> None:
    options = connection.get_execution_options()
    if options.get("isolation_level") == "AUTOCOMMIT":
        return  # one statement, its own implicit transaction
    mode = options.get("jobql_begin", "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


# connection.info key: callbacks `write` runs once the transaction has committed.
AFTER_COMMIT = "jobql.after_commit"


def after_commit(connection: AsyncConnection, callback: Callable[[], None]) -> None:
    """Run `callback` when the `write` transaction of `connection` has committed; never when it
    rolls back. (A transaction not begun by `write` drops it: its committer says when.)"""
    connection.info.setdefault(AFTER_COMMIT, []).append(callback)


async def write(engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run `work` in one write transaction and commit it; then the callbacks `work` registered
    with `after_commit`.

    On SQLite the transaction starts with BEGIN IMMEDIATE: concurrent writers queue for the
    write lock (up to the busy timeout) at the start, instead of failing at their first write.
    A transaction that still loses (SQLite locked out after the busy timeout; PostgreSQL deadlock
    or serialization failure) starts over, a few times, before the error reaches anyone.
    """
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            async with engine.connect() as connection:
                await connection.execution_options(jobql_begin="IMMEDIATE")
                connection.info.pop(AFTER_COMMIT, None)
                try:
                    async with connection.begin():
                        result = await work(connection)
                except BaseException:
                    # Rolled back: nothing happened. (A connection a cancellation invalidated
                    # cannot even be asked; the next write on it starts by emptying the list.)
                    with contextlib.suppress(Exception):
                        connection.info.pop(AFTER_COMMIT, None)
                    raise
                for callback in connection.info.pop(AFTER_COMMIT, ()):
                    callback()
                positions = COMMIT_LSNS.get()
                if positions is not None and engine.dialect.name == "postgresql":
                    # Read-your-writes with replicas (jobql.storage.replicas): where it committed.
                    positions.append(await commit_lsn(connection))
                return result
        except DBAPIError as exc:
            if not _worth_retrying(exc) or attempt == WRITE_ATTEMPTS:
                raise
            logger.info("write attempt %d of %d lost: %s", attempt, WRITE_ATTEMPTS, exc.orig)
    raise AssertionError("unreachable")


async def analyze(engine: AsyncEngine, tables: Sequence[str]) -> None:
    """Fresh planner statistics after a bulk load: without them PostgreSQL plans look-ups on a
    table that grew from nothing as full scans (measured: 3.6 s instead of 0.17 s per 500
    instances at 30,000 rows)."""
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        for table in tables:
            await connection.exec_driver_sql(f"ANALYZE {table}")


def is_unavailable(exc: BaseException) -> bool:
    """The database cannot be reached right now (down, restarting, pool exhausted)."""
    if isinstance(exc, SQLAlchemyTimeoutError | OSError | asyncio.TimeoutError):
        return True
    if _connection_lost(exc):  # asyncpg's own, from DriverPool
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(exc, InterfaceError):
            return True
        original = exc.orig
        sqlstate = getattr(original, "sqlstate", None) or ""
        # 08: connection exceptions; 57P0x: admin shutdown, crash shutdown, cannot connect now.
        if sqlstate.startswith("08") or sqlstate.startswith("57P0"):
            return True
        text = str(original).lower()
        return "connection" in text and ("closed" in text or "refused" in text)
    cause = exc.__cause__ or exc.__context__
    return cause is not None and cause is not exc and is_unavailable(cause)


def is_statement_error(exc: BaseException) -> bool:
    """The database failed this one statement, as opposed to the connection (`is_unavailable`),
    a timeout or a cancellation: another statement on the same data may well succeed."""
    if is_unavailable(exc):
        return False
    original = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(original, asyncpg.PostgresError):
        # 57014 query_canceled: a statement timeout or a cancelled request.
        return getattr(original, "sqlstate", None) != "57014"
    if isinstance(original, sqlite3.Error):
        return "interrupted" not in str(original)
    # Other drivers' errors reach here wrapped: the DBAPI's own base classes.
    return isinstance(exc, DBAPIError) and not isinstance(exc, InterfaceError)


def _worth_retrying(exc: DBAPIError) -> bool:
    if isinstance(exc, OperationalError) and "database is locked" in str(exc):
        return True
    # PostgreSQL: deadlock_detected, serialization_failure.
    return getattr(exc.orig, "sqlstate", None) in {"40P01", "40001"}


class ReaderClosed(RuntimeError):
    """A statement for a request that has ended (its `Reader` is closed)."""


class Reader:
    """One request's database access: a single connection, checked out on first use.

    Loaders of one request may dispatch concurrently; the lock keeps their statements in turn on
    the one connection instead of checking out one per loader. A long-lived reader (a WebSocket
    connection) passes `hold=False` and returns the connection to the pool after each statement.

    Closed at the end of its request, it takes no more statements: work of the request can
    outlive its answer. graphql-core does not wait for the unfinished siblings of a field whose
    error propagated synchronously (an argument that fails coercion): it settles them in the
    background (`Executor.settle_in_background`), and their loaders' batches run later still.
    Such a statement checking out a connection after `close` would hold it until the garbage
    collector found it; it fails with ReaderClosed instead, and nobody awaits its result.
    """

    def __init__(
        self, engine: AsyncEngine, *, hold: bool = True, replicas: Replicas | None = None
    ) -> None:
        self._engine = self._primary = engine
        self._replicas = replicas
        self._hold = hold
        self._connection: AsyncConnection | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    @contextlib.asynccontextmanager
    async def _connected(self, *, autocommit: bool = False) -> AsyncIterator[AsyncConnection]:
        """The request's connection, in turn with the other statements of the request; opened
        here on first use (`autocommit`: no transaction begun), returned after each statement
        when the reader does not hold it."""
        async with self._lock:
            self._check_open()
            connection = self._connection
            opened = connection is None
            if connection is None:
                # Cancelled while checking out, SQLAlchemy returns the connection itself.
                connection = self._connection = await self._engine.connect()
            try:
                if opened and autocommit:
                    await connection.execution_options(isolation_level="AUTOCOMMIT")
                yield connection
            except (DBAPIError, asyncio.CancelledError):
                # A failed statement aborts a PostgreSQL transaction, and a cancelled one (a
                # sibling field's error cancels the rest) leaves the connection unusable: whatever
                # the request reads next (the reference strategy after a compiled read failed)
                # gets a fresh connection.
                self._connection = None
                with contextlib.suppress(Exception):
                    await connection.close()
                raise
            finally:
                if not self._hold and self._connection is not None:
                    self._connection = None
                    await connection.close()

    def prefer_replica(self, min_lsn: int | None = None) -> None:
        """Read from a replica (one that has replayed `min_lsn`) if one is in rotation: for a
        read-only operation, before its first statement. Without replicas, or once a statement
        ran, nothing changes. A long-lived reader (a WebSocket's) serves subscriptions too: it
        keeps to the primary."""
        if self._replicas is None or not self._hold or self._connection is not None:
            return
        chosen = self._replicas.choose(min_lsn)
        if chosen is not None:
            self._engine = chosen

    @property
    def database(self) -> Any:
        """What stands for the reader's database in per-database caches: its primary engine
        (the one an `execution_options()` copy stands for), whichever replica it reads."""
        return _base_engine(self._primary.sync_engine)

    @property
    def on_replica(self) -> bool:
        return self._engine is not self._primary

    def _to_primary(self, exc: BaseException) -> bool:
        """After a failed read: whether it runs again on the primary (its replica could not
        be reached; the replica leaves rotation)."""
        if self._engine is self._primary or self._replicas is None or not is_unavailable(exc):
            return False
        self._replicas.mark_down(self._engine, exc)
        self._engine = self._primary
        return True

    async def execute(self, statement: Executable, *, autocommit: bool = False) -> Sequence[Any]:
        """Rows of one statement. `autocommit`: when this opens the request's connection, no
        transaction is begun (nor rolled back): for a request that reads with one statement."""
        try:
            async with self._connected(autocommit=autocommit) as connection:
                return (await connection.execute(statement)).all()
        except Exception as exc:
            if not self._to_primary(exc):
                raise
        async with self._connected(autocommit=autocommit) as connection:
            return (await connection.execute(statement)).all()

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    async def fetch_driver(
        self, sql: str, args: Sequence[Any], *, settings: DriverSettings = ()
    ) -> Sequence[Any]:
        """Rows of one statement sent straight to asyncpg through the engine's `DriverPool`: no
        transaction, no SQLAlchemy execution machinery or pool checkout, and asyncpg's
        prepared-statement cache keyed by the text. For a request whose only statement this
        is (it does not use the request's connection). `settings`: on a connection with these
        server settings (`DriverPool.fetch`); planner settings, which an engine `create_engine`
        did not make ignores."""
        self._check_open()
        try:
            return await self._fetch_driver(sql, args, settings)
        except Exception as exc:
            if not self._to_primary(exc):
                raise
        return await self._fetch_driver(sql, args, settings)

    async def _fetch_driver(
        self, sql: str, args: Sequence[Any], settings: DriverSettings
    ) -> Sequence[Any]:
        pool = _DRIVER_POOLS.get(_base_engine(self._engine.sync_engine))
        if pool is None:  # an engine create_engine did not make: its own pooled connection
            async with self._connected() as connection:
                pooled = await connection.get_raw_connection()
                return await pooled.driver_connection.fetch(sql, *args)  # type: ignore[no-any-return,union-attr]
        return await pool.fetch(sql, args, settings=settings)

    def driver_statement(self, statement: ClauseElement) -> tuple[str, tuple[Any, ...]] | None:
        """PostgreSQL: the statement as asyncpg takes it ($n text, positional values converted
        by the same bind processors SQLAlchemy applies); None on other databases."""
        found = self._driver_form(statement)
        return None if found is None else (found[0], found[1])

    def driver_template(self, statement: ClauseElement, name: str) -> DriverTemplate | None:
        """`driver_statement`, and the position of the parameter `name` among its values: a
        statement to run again with another value there (not converted: a value no bind
        processor changes, such as an array of keys)."""
        found = self._driver_form(statement)
        if found is None or name not in found[2]:
            return None
        return found[0], found[1], found[2].index(name)

    def _driver_form(
        self, statement: ClauseElement
    ) -> tuple[str, tuple[Any, ...], list[str]] | None:
        dialect = self._engine.dialect
        if dialect.name != "postgresql":
            return None
        compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        assert isinstance(compiled, SQLCompiler)
        values = compiled.construct_params() or {}
        processors = compiled._bind_processors
        names = list(compiled.positiontup or ())
        args: list[Any] = []
        for name in names:
            value = values[name]
            processor = processors.get(name)
            if processor is not None:
                if not callable(processor):  # a tuple-valued parameter: SQLAlchemy's path only
                    return None
                value = processor(value)
            args.append(value)
        return str(compiled), tuple(args), names

    async def scalar(self, statement: Executable) -> Any:
        rows = await self.execute(statement)
        return rows[0][0] if rows else None

    def _check_open(self) -> None:
        if self._closed:
            raise ReaderClosed("the request is over: its reader takes no more statements")

    async def release(self) -> None:
        """Return the connection to the pool now (after the statement in flight, if any); the
        next statement checks out a fresh one."""
        async with self._lock:
            if self._connection is not None:
                connection, self._connection = self._connection, None
                await connection.close()

    async def close(self) -> None:
        """End of the request: release the connection and refuse any later statement (see the
        class docstring). Statements already waiting for the connection are refused too."""
        self._closed = True
        await self.release()
