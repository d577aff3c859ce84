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
        self, engine: AsyncEngine, *, timeout: float = 5.0, replicas: Replicas | None = None
    ) -> None:
        self.engine = engine
        self.replicas = replicas
        self.timeout = timeout  # per check: a database that hangs is not ready either
        self.head = head_revision()
        self._revision: tuple[float, str | None] | None = None  # (read at, revision)

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
            await self._ping()
        except Exception:
            logger.exception("health check: database unreachable")
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, 503)
        return JSONResponse({"status": "ok"})

    async def readyz(self, _request: Request) -> JSONResponse:
        try:
            await asyncio.wait_for(self._ping(), self.timeout)
            revision = await asyncio.wait_for(self._current_revision(), self.timeout)
        except Exception as exc:
            reason = f"database unreachable: {type(exc).__name__}"
            logger.warning("readiness: %s: %s", reason, exc)
            return _unavailable(reason)
        if revision != self.head:
            return _unavailable(
                f"database at revision {revision or 'none'}, this jobql needs {self.head}: "
                "run `jobql migrate`"
            )
        ready: dict[str, object] = {"status": "ok", "revision": revision}
        if self.replicas is not None:
            # Informational: a replica out of rotation costs reads on the primary, not readiness.
            ready["replicas"] = self.replicas.status()
        return JSONResponse(ready)

    async def _ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def _current_revision(self) -> str | None:
        now = time.monotonic()
        if self._revision is not None and now - self._revision[0] < REVISION_TTL:
            return self._revision[1]
        revision = await current_revision(self.engine)
        self._revision = (now, revision)
        return revision


def _unavailable(reason: str) -> JSONResponse:
    return JSONResponse({"status": "unavailable", "reason": reason}, 503)


__all__ = ["REVISION_TTL", "Health"]
