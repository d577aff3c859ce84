"""API tokens: who may read or write which workspaces.

Tokens are configured as JSON, in `JOBQL_TOKENS` or in the file `JOBQL_TOKENS_FILE`:

    [{"name": "dashboard", "sha256": "<hex of sha256(token)>",
      "workspaces": ["default", "ws1"], "scopes": ["read"]},
     {"name": "scheduler", "sha256": "...", "workspaces": ["*"], "scopes": ["read", "write"]}]

Only hashes are stored (`printf %s TOKEN | sha256sum`). Clients send `Authorization: Bearer
TOKEN`. With no tokens configured jobql runs open: every request may read and write everything
(the laptop default, said at start-up).

Scopes: `read` and `write` act in the token's workspaces; `metrics` lets it read `/metrics`
(counts of every workspace, no data), whatever its workspaces (`[]` for a scraper's token).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from jobql.asgi import send_error

logger = logging.getLogger("jobql")

# What a token may do with data in its workspaces, and everything it may do.
DATA_SCOPES = frozenset({"read", "write"})
SCOPES = DATA_SCOPES | {"metrics"}
ALL_WORKSPACES = "*"
HEALTH_PATHS = ("/healthz", "/livez", "/readyz")
PRINCIPAL_KEY = "jobql.principal"


class AccessConfigError(ValueError):
    """The token configuration cannot be used."""


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    workspaces: frozenset[str]
    scopes: frozenset[str]

    def scopes_in(self, workspace: str) -> frozenset[str]:
        """Its data scopes in `workspace` (none: it may not use the workspace)."""
        covered = ALL_WORKSPACES in self.workspaces or workspace in self.workspaces
        return self.scopes & DATA_SCOPES if covered else frozenset()


ANONYMOUS = Principal("anonymous", frozenset({ALL_WORKSPACES}), SCOPES)


@dataclass(frozen=True, slots=True)
class Access:
    tokens: Mapping[str, Principal]  # sha256 hex -> principal

    @property
    def open(self) -> bool:
        return not self.tokens

    def authenticate(self, authorization: str | None) -> Principal | None:
        if self.open:
            return ANONYMOUS
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        digest = hashlib.sha256(token.strip().encode("utf-8", "replace")).hexdigest()
        for known, principal in self.tokens.items():
            if hmac.compare_digest(known, digest):
                return principal
        return None

    @classmethod
    def from_config(cls, text: str | None, path: str | None) -> Access:
        if text and path:
            raise AccessConfigError("set JOBQL_TOKENS or JOBQL_TOKENS_FILE, not both")
        if path:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise AccessConfigError(f"JOBQL_TOKENS_FILE: cannot read {path}: {exc}") from exc
        if not text:
            return cls({})
        try:
            entries = json.loads(text)
        except ValueError as exc:
            raise AccessConfigError(f"the token configuration is not JSON: {exc}") from exc
        if not isinstance(entries, list):
            raise AccessConfigError("the token configuration must be a JSON list")
        return cls(dict(_entry(entry, index) for index, entry in enumerate(entries)))


def _entry(entry: Any, index: int) -> tuple[str, Principal]:
    where = f"token {index}"
    if not isinstance(entry, dict):
        raise AccessConfigError(f"{where} is not an object")
    name = entry.get("name", where)
    digest = entry.get("sha256")
    if not isinstance(digest, str) or len(digest) != 64:
        raise AccessConfigError(f"{where} ({name}): sha256 must be 64 hex digits")
    workspaces = entry.get("workspaces")
    scopes = entry.get("scopes", ["read"])
    if not isinstance(workspaces, list) or not all(isinstance(w, str) for w in workspaces):
        raise AccessConfigError(f"{where} ({name}): workspaces must be a list of names or ['*']")
    if not isinstance(scopes, list) or not set(scopes) <= SCOPES:
        raise AccessConfigError(f"{where} ({name}): scopes must be a list of read, write, metrics")
    return digest.lower(), Principal(str(name), frozenset(workspaces), frozenset(scopes))


class Authentication:
    """ASGI middleware: puts the caller's principal in the scope; 401 without a valid token.

    `/healthz`, `/livez`, `/readyz`, the static files, the GraphiQL page and the dashboard's
    files (no data: the dashboard sends the token with its GraphQL requests) need no token."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self._exempt(scope):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        principal = self.access.authenticate(headers.get("authorization"))
        if principal is None:
            if scope["type"] == "websocket":
                if "authorization" not in headers:
                    # Browsers cannot set headers on a WebSocket: the token may come in the
                    # protocol's first message (jobql/http/ws.py decides).
                    await self.app(scope, receive, send)
                    return
                await send({"type": "websocket.close", "code": 4401})
                return
            await send_error(
                send,
                401,
                "A valid API token is required: Authorization: Bearer <token>.",
                "UNAUTHENTICATED",
                [(b"www-authenticate", b'Bearer realm="jobql"')],
            )
            return
        scope[PRINCIPAL_KEY] = principal
        await self.app(scope, receive, send)

    @staticmethod
    def _exempt(scope: Scope) -> bool:
        path: str = scope.get("path", "")
        if path in (*HEALTH_PATHS, "/dashboard") or path.startswith(("/static/", "/dashboard/")):
            return True
        if path == "/graphql" and scope.get("method") == "GET":
            accept = dict(scope["headers"]).get(b"accept", b"").decode("latin-1")
            query = scope.get("query_string", b"")
            return "text/html" in accept and b"query=" not in query
        return False


def principal_of(scope: Scope) -> Principal:
    principal = scope.get(PRINCIPAL_KEY, ANONYMOUS)
    assert isinstance(principal, Principal)
    return principal


def principal_if_any(scope: Scope) -> Principal | None:
    """The principal the middleware found, None when it let a WebSocket through without one."""
    principal = scope.get(PRINCIPAL_KEY)
    return principal if isinstance(principal, Principal) else None
