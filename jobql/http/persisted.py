"""Automatic persisted queries (Apollo's APQ protocol) and HTTP caching of GET queries.

APQ: a client sends `extensions.persistedQuery = {"version": 1, "sha256Hash": H}`. With the query
text, H must be its SHA-256 (hex); the text is remembered under H. With H alone, a remembered text
runs, else the answer is Apollo Server's `PersistedQueryNotFound` (HTTP 200), on which Apollo's
clients resend the text. The store holds only query texts keyed by their hash, never results, so
it cannot carry one workspace's data to another. It is per process (an LRU of at most
`max_entries` texts and `MAX_STORED_CHARS` characters): another worker answers its first miss and
the client registers the text there too.

Allow-list mode: only the operations of a directory of `.graphql` files run (with or without a
hash); any other document is `PERSISTED_QUERY_NOT_ALLOWED` (403). Documents are compared in
printed form without `__typename` fields, so formatting, comments and the `__typename` that Apollo
Client adds do not matter.

Caching: a GET query answered 200 without errors gets `Cache-Control: public, max-age=N` (`private`
when an Authorization header was sent) and a strong `ETag` (a hash of the body); `If-None-Match`
with that tag is a 304. Other GET answers get `no-store`. Every answer varies on `Accept`,
`workspace` and `Authorization`. POST answers (and so every mutation) get no caching headers.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from graphql import FieldNode, GraphQLError, Visitor, parse, print_ast, visit
from graphql.language.visitor import REMOVE
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from jobql import metrics

APQ_VERSION = 1
MAX_STORED_CHARS = 32 * 1024 * 1024
# Documents longer than the token limit are refused by the schema anyway; this only bounds the
# work of comparing a refused document with the allow-list.
MAX_COMPARED_TOKENS = 100_000
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")

NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
NOT_ALLOWED = "PERSISTED_QUERY_NOT_ALLOWED"
# What Apollo Server sends with PersistedQueryNotFound / NotSupported: never cache a miss.
UNCACHED = "private, no-cache, must-revalidate"
VARY = "Accept, workspace, Authorization"


def sha256_hex(text: str) -> str:
    # JSON may carry lone surrogates ("\ud800"), which UTF-8 cannot encode: "surrogatepass" gives
    # them a hash too (no client's hash of real UTF-8 matches it) instead of an exception.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class PersistedQueryError(Exception):
    """An APQ answer that is not an execution result: an error body with a code and a status."""

    def __init__(
        self, status: int, message: str, code: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = dict(headers or {})

    def response(self, media_type: str) -> Response:
        metrics.note_error(self.code)
        body = {"errors": [{"message": self.message, "extensions": {"code": self.code}}]}
        return Response(
            orjson.dumps(body),
            status_code=self.status,
            media_type=f"{media_type}; charset=utf-8",
            headers=self.headers,
        )


class QueryStore:
    """Query texts by SHA-256, least recently used first out; bounded in entries and size."""

    def __init__(self, max_entries: int, max_chars: int = MAX_STORED_CHARS) -> None:
        self.max_entries = max_entries
        self.max_chars = max_chars
        self._texts: OrderedDict[str, str] = OrderedDict()
        self._chars = 0

    def __len__(self) -> int:
        return len(self._texts)

    def get(self, digest: str) -> str | None:
        text = self._texts.get(digest)
        if text is not None:
            self._texts.move_to_end(digest)
        return text

    def put(self, digest: str, text: str) -> None:
        if len(text) > self.max_chars:
            return
        old = self._texts.pop(digest, None)
        if old is not None:
            self._chars -= len(old)
        self._texts[digest] = text
        self._chars += len(text)
        while len(self._texts) > self.max_entries or self._chars > self.max_chars:
            _, evicted = self._texts.popitem(last=False)
            self._chars -= len(evicted)


class AllowlistError(ValueError):
    """The allow-list directory cannot be read or holds a document that does not parse."""


class _DropTypename(Visitor):
    def enter_field(self, node: FieldNode, *_args: Any) -> Any:
        return REMOVE if node.name.value == "__typename" else None


def canonical(text: str) -> str | None:
    """The document printed without `__typename` fields; None when it does not parse."""
    try:
        document = parse(text, no_location=True, max_tokens=MAX_COMPARED_TOKENS)
    except GraphQLError:
        return None
    return print_ast(visit(document, _DropTypename()))


class Allowlist:
    """The operations that may run in allow-list mode, from a directory of `.graphql` files."""

    def __init__(self, documents: Mapping[str, str]) -> None:
        self.sources = dict(documents)  # file name -> text
        self.by_hash: dict[str, str] = {}
        self.canonical: set[str] = set()
        for name, text in self.sources.items():
            printed = canonical(text)
            if printed is None:
                raise AllowlistError(f"{name}: not a GraphQL document")
            self.canonical.add(printed)
            # Either form may be registered: the file as written, or as a client prints it.
            self.by_hash[sha256_hex(text)] = text
            self.by_hash[sha256_hex(printed)] = printed

    @classmethod
    def from_directory(cls, directory: str | Path) -> Allowlist:
        path = Path(directory)
        if not path.is_dir():
            raise AllowlistError(f"JOBQL_ALLOWED_OPERATIONS={directory}: not a directory")
        files = sorted(path.glob("*.graphql"))
        if not files:
            raise AllowlistError(f"JOBQL_ALLOWED_OPERATIONS={directory}: no *.graphql files")
        try:
            return cls({str(file): file.read_text(encoding="utf-8") for file in files})
        except (OSError, UnicodeDecodeError) as exc:
            raise AllowlistError(f"JOBQL_ALLOWED_OPERATIONS={directory}: {exc}") from exc

    def allows(self, text: str) -> bool:
        if sha256_hex(text) in self.by_hash:
            return True
        printed = canonical(text)
        return printed is not None and printed in self.canonical


class PersistedQueries:
    """Resolves the query text of a request that may use APQ; raises PersistedQueryError."""

    def __init__(
        self, *, enabled: bool = True, max_entries: int = 10_000, allowlist: Allowlist | None = None
    ) -> None:
        self.enabled = enabled
        self.store = QueryStore(max_entries)
        self.allowlist = allowlist

    def resolve(self, query: str | None, extensions: Mapping[str, Any] | None) -> str | None:
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None:
            if query is not None:
                self._check_allowed(query)
            return query
        if not self.enabled:
            raise PersistedQueryError(
                200, "PersistedQueryNotSupported", NOT_SUPPORTED, {"cache-control": UNCACHED}
            )
        digest = _digest_of(persisted)
        if query is None:
            text = self.store.get(digest)
            if text is None and self.allowlist is not None:
                text = self.allowlist.by_hash.get(digest)
            _note("miss" if text is None else "hit")
            if text is None:
                raise PersistedQueryError(
                    200, "PersistedQueryNotFound", NOT_FOUND, {"cache-control": UNCACHED}
                )
            return text
        if sha256_hex(query) != digest:
            raise PersistedQueryError(
                400,
                "provided sha does not match query: extensions.persistedQuery.sha256Hash must "
                "be the lowercase hex SHA-256 of the UTF-8 query text",
                HASH_MISMATCH,
            )
        self._check_allowed(query)
        self.store.put(digest, query)
        _note("registered")
        return query

    def _check_allowed(self, query: str) -> None:
        if self.allowlist is not None and not self.allowlist.allows(query):
            raise PersistedQueryError(
                403,
                "Only the operations of the allow-list may run here (allow-list mode).",
                NOT_ALLOWED,
            )


def _note(result: str) -> None:
    """For the request's metrics; the fast lane and the full stack may both resolve one request."""
    record = metrics.current()
    if record is not None:
        record.persisted = result


def _digest_of(persisted: object) -> str:
    if not isinstance(persisted, dict):
        raise PersistedQueryError(
            400,
            'extensions.persistedQuery must be an object: {"version": 1, "sha256Hash": "<hex>"}',
            "BAD_REQUEST",
        )
    version = persisted.get("version")
    if version != APQ_VERSION or isinstance(version, bool):
        raise PersistedQueryError(
            400,
            f"Unsupported persisted query version {version!r}: jobql supports version 1.",
            "BAD_REQUEST",
        )
    digest = persisted.get("sha256Hash")
    if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest):
        raise PersistedQueryError(
            400,
            "extensions.persistedQuery.sha256Hash must be a SHA-256 in hex (64 characters).",
            "BAD_REQUEST",
        )
    return digest.lower()


class HttpCache:
    """Cache headers of /graphql answers (see the module docstring)."""

    def __init__(self, max_age: int) -> None:
        self.max_age = max_age

    def apply(self, request: Request, response: Response) -> Response:
        if isinstance(response, StreamingResponse) or not _is_json(response):
            return response  # the GraphiQL page, streams
        response.headers["vary"] = VARY
        if request.method != "GET" or "cache-control" in response.headers:
            return response
        cacheable = response.status_code == 200 and getattr(request.state, "no_errors", False)
        if not cacheable:
            response.headers["cache-control"] = "no-store"
            return response
        scope = "private" if "authorization" in request.headers else "public"
        etag = '"' + hashlib.sha256(response.body).hexdigest()[:40] + '"'
        headers = {"cache-control": f"{scope}, max-age={self.max_age}", "etag": etag, "vary": VARY}
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        response.headers.update(headers)
        return response


def _is_json(response: Response) -> bool:
    media = response.headers.get("content-type", "")
    return media.startswith(("application/json", "application/graphql-response+json"))


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:  # If-None-Match compares weakly
            return True
    return False
