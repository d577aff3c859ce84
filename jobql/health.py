"""Health endpoints, as orchestrators probe them; none needs a token or counts against the
admission limit.

- `/livez`: the process answers (liveness). No database: a database outage must not get every
  worker restarted.
- `/readyz`: this worker can serve (readiness): the database answers and its Alembic revision is
  this jobql's head; else 503 with the reason. The revision is read at most every
  `REVISION_TTL` seconds (a reachable database is checked on every call).
- `/healthz`: the database answers (as before `/readyz` existed; kept for the probes that use it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from jobql.storage.migrate import current_revision, head_revision
from jobql.storage.replicas import Replicas

logger = logging.getLogger("jobql")

# Seconds a read revision is trusted (a migration is rare; a probe comes every few seconds).
REVISION_TTL = 10.0


class Health:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        timeout: float = 5.0,
        replicas: Replicas | None = None,
        others: Sequence[AsyncEngine] = (),
    ) -> None:
        self.engine = engine
        # Every database workspaces live in (JOBQL_WORKSPACE_DATABASES), the main one first.
        self.engines = [engine, *(other for other in others if other is not engine)]
        self.replicas = replicas
        self.timeout = timeout  # per check: a database that hangs is not ready either
        self.head = head_revision()
        # (read at, revision) per database engine.
        self._revisions: dict[int, tuple[float, str | None]] = {}

    def routes(self) -> list[Route]:
        return [
            Route("/livez", self.livez, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/healthz", self.healthz, methods=["GET"]),
        ]

    async def livez(self, _request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def healthz(self, _request: Request) -> JSONResponse:
        try:
            await asyncio.gather(*(_ping(engine) for engine in self.engines))
        except Exception:
            logger.exception("health check: database unreachable")
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, 503)
        return JSONResponse({"status": "ok"})

    async def readyz(self, _request: Request) -> JSONResponse:
        revisions = await asyncio.gather(
            *(self._ready(engine) for engine in self.engines), return_exceptions=True
        )
        # Other workspaces' databases (JOBQL_WORKSPACE_DATABASES): one of them away costs its
        # workspaces' requests a 503, not the worker its place behind the load balancer.
        others: list[dict[str, str]] = []
        for engine, found in zip(self.engines, revisions, strict=True):
            where = self._where(engine)
            if isinstance(found, BaseException):
                reason = f"database{where} unreachable: {type(found).__name__}"
                logger.warning("readiness: %s: %s", reason, found)
                if engine is self.engine:
                    return _unavailable(reason)
                others.append({"database": _name(engine), "status": "unreachable"})
                continue
            if found != self.head:
                return _unavailable(
                    f"database{where} at revision {found or 'none'}, this jobql needs "
                    f"{self.head}: run `jobql migrate`"
                )
            if engine is not self.engine:
                others.append({"database": _name(engine), "status": "ok"})
        ready: dict[str, object] = {"status": "ok", "revision": self.head}
        if others:
            ready["databases"] = others
        if self.replicas is not None:
            # Informational: a replica out of rotation costs reads on the primary, not readiness.
            ready["replicas"] = self.replicas.status()
        return JSONResponse(ready)

    def _where(self, engine: AsyncEngine) -> str:
        """ "" for the main database, " (<url without password>)" for another."""
        if engine is self.engine:
            return ""
        return f" ({_name(engine)})"

    async def _ready(self, engine: AsyncEngine) -> str | None:
        """The database's revision, once it has answered a ping (each within the timeout)."""
        await asyncio.wait_for(_ping(engine), self.timeout)
        return await asyncio.wait_for(self._current_revision(engine), self.timeout)

    async def _current_revision(self, engine: AsyncEngine) -> str | None:
        now = time.monotonic()
        cached = self._revisions.get(id(engine))
        if cached is not None and now - cached[0] < REVISION_TTL:
            return cached[1]
        revision = await current_revision(engine)
        self._revisions[id(engine)] = (now, revision)
        return revision


def _name(engine: AsyncEngine) -> str:
    return engine.url.render_as_string(hide_password=True)


async def _ping(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


def _unavailable(reason: str) -> JSONResponse:
    return JSONResponse({"status": "unavailable", "reason": reason}, 503)


__all__ = ["REVISION_TTL", "Health"]
