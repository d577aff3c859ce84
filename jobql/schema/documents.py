"""Parsed documents, shared across requests."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from graphql import DocumentNode
from strawberry.extensions import SchemaExtension


class Documents:
    """The documents that parsed without an error, by text and parse options (the token limit
    among them), the least recently used dropped beyond `maxsize`."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._parsed: OrderedDict[tuple[str, tuple[tuple[str, Any], ...]], DocumentNode] = (
            OrderedDict()
        )

    def get(self, key: tuple[str, tuple[tuple[str, Any], ...]]) -> DocumentNode | None:
        document = self._parsed.get(key)
        if document is not None:
            self._parsed.move_to_end(key)
        return document

    def put(self, key: tuple[str, tuple[tuple[str, Any], ...]], document: DocumentNode) -> None:
        self._parsed[key] = document
        if len(self._parsed) > self.maxsize:
            self._parsed.popitem(last=False)


class DocumentCache(SchemaExtension):
    """A document parsed once is not parsed again: its parse (3-4% of a single-instance
    recordInstances' CPU) is skipped, and ValidationCache then finds it by identity instead of
    comparing it node by node. Unlike Strawberry's ParserCache, parsing stays Strawberry's own:
    a document that does not parse is parsed, and refused, each time as before (ParserCache
    raises its errors from the hook, where they lose their codes)."""

    def __init__(self, documents: Documents) -> None:
        self.documents = documents

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is None or context.graphql_document is not None:
            yield
            return
        key = (context.query, tuple(sorted(context.parse_options.items())))
        document = self.documents.get(key)
        if document is not None:
            context.graphql_document = document  # Strawberry then parses nothing
        yield
        if document is None and context.graphql_document is not None:
            self.documents.put(key, context.graphql_document)
