"""What every source endpoint shares: its request context, its error replies, JSON bodies.

A handler reads its parameters, opens a `RequestContext` for the workspace its source names (the
same context GraphQL requests get), calls the resolvers, and closes the context. Whatever goes
wrong becomes the source's own error form: a refused parameter (`BadUserInput`, from the
parameter readers or the resolvers) its "invalid parameter" reply, a `NotFound` its "not found"
reply, anything unexpected a logged, masked 500 (never a traceback).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from jobql.access import principal_of
from jobql.errors import BadUserInput, Forbidden, NotFound
from jobql.resolvers.context import AsyncEngine, CursorCodec, RequestContext
from jobql.resolvers.validation import text

logger = logging.getLogger("jobql")

JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Backend:
    """What the endpoints are built with: the app's engine and cursor codec, the time zone of
    the sources' local times and "today" (JOBQL_TIMEZONE), and the clock (a UTC `now`)."""

    engine: AsyncEngine
    cursors: CursorCodec
    zone: tzinfo
    now: Callable[[], datetime]

    @asynccontextmanager
    async def context(
        self,
        request: Request,
        workspace: str | None,
        *,
        parameter: str = "workspace",
        header: str | None = None,
    ) -> AsyncIterator[RequestContext]:
        """The request's context in `workspace` (None or empty: `default`), closed at the end;
        `parameter` names where the workspace came from, for messages. Where the workspace
        comes from the request itself (Namespace, projectName), a `workspace` header that names
        another one is refused: the header is what gateways and access control look at."""
        chosen = workspace or "default"
        if header is not None and parameter != "workspace" and header != chosen:
            raise BadUserInput(
                f"The workspace header {header!r} does not match {parameter} {chosen!r}."
            )
        scopes = principal_of(request.scope).scopes_in(text(parameter, chosen))
        if not scopes:
            raise Forbidden(f"This token may not use workspace {chosen!r}.")
        ctx = RequestContext.open(
            self.engine, self.cursors, text(parameter, workspace), scopes=scopes
        )
        try:
            yield ctx
        finally:
            await ctx.close()


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """What a source answers when something went wrong: HTTP status, its code and message."""

    status: int
    code: str | int
    message: str


class ApiError(Exception):
    """Raised by a handler to answer with `reply` in its source's error form."""

    def __init__(self, reply: ErrorReply) -> None:
        super().__init__(reply.message)
        self.reply = reply


@dataclass(frozen=True, slots=True)
class ErrorForms:
    """How one source API says what went wrong."""

    render: Callable[[Request, ErrorReply], Response]
    # A parameter it refuses; the argument says which one and why.
    invalid: Callable[[str], ErrorReply]
    not_found: ErrorReply
    internal: ErrorReply
    # A workspace the caller's token does not cover.
    forbidden_code: str | int = "Forbidden"


Handler = Callable[[Backend, Request], Awaitable[Response]]


def endpoint(
    backend: Backend, handler: Handler, errors: ErrorForms
) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint: `handler` with the backend, its failures in the source's form."""

    async def run(request: Request) -> Response:
        try:
            return await handler(backend, request)
        except ApiError as exc:
            error = exc.reply
        except BadUserInput as exc:
            error = errors.invalid(exc.message)
        except NotFound:
            error = errors.not_found
        except Forbidden as exc:
            error = ErrorReply(403, errors.forbidden_code, exc.message)
        except Exception:
            logger.exception("REST %s %s failed", request.method, request.url.path)
            error = errors.internal
        return errors.render(request, error)

    return run


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON)


def request_id() -> str:
    """An id in the Alibaba replies' form: an upper-case UUID."""
    return str(uuid.uuid4()).upper()


def present(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields that have a value: what a stored instance lacks is left out of a reply."""
    return {key: value for key, value in fields.items() if value is not None}
