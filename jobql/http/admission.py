"""Admission control: past `limit` requests in flight, answer 503 at once instead of queueing."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from jobql import metrics
from jobql.asgi import send_error

# A live stream (`/graphql/stream`) is not a request in flight: subscriptions have their own
# limits (JOBQL_LIVE_MAX_SUBSCRIPTIONS). Health checks and scrapes answer an overloaded worker too.
EXEMPT = ("/healthz", "/livez", "/readyz", "/metrics", "/static/", "/graphql/stream")


class ConcurrencyLimit:
    """ASGI middleware. Admitted requests finish normally; the others get a fast 503 with
    `Retry-After`, so that an overloaded worker sheds load instead of timing everyone out."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith(EXEMPT):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            metrics.ADMISSION_REJECTED.inc()
            await send_error(
                send,
                503,
                f"Too many requests in flight (limit {self.limit}); retry shortly.",
                "SERVICE_UNAVAILABLE",
                [(b"retry-after", b"1")],
            )
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
