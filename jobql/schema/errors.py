"""Error format: every error carries `extensions.code`; unexpected ones are masked."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

from graphql import GraphQLError, OperationDefinitionNode
from strawberry.extensions import MaskErrors, SchemaExtension

from jobql.errors import JobqlError
from jobql.resolvers.context import is_unavailable

logger = logging.getLogger("jobql")

INTERNAL_MESSAGE = "Internal server error."
UNAVAILABLE_MESSAGE = "The database is unavailable right now; try again shortly."


def is_unexpected(error: GraphQLError) -> bool:
    """An exception raised while executing a field that is not one of our own errors.

    Errors without a path come before execution (parse, validation, variables): graphql-core
    writes their messages for the client, also when a scalar's parser raised them.
    """
    original = error.original_error
    if error.path is None:
        return False
    return original is not None and not isinstance(original, (JobqlError, GraphQLError))


# Messages of Strawberry's and graphql-core's limiters (depth, aliases, tokens).
LIMIT_MESSAGES = re.compile(
    r"exceeds maximum operation depth|aliases found\. Allowed|contains more than \d+ tokens"
)


def error_code(error: GraphQLError) -> str:
    original = error.original_error
    if isinstance(original, JobqlError):
        return original.code
    if error.path is None and LIMIT_MESSAGES.search(error.message):
        return "QUERY_TOO_COMPLEX"
    if error.path is None and (
        error.message.startswith("Variable '$") or isinstance(original, ValueError | OverflowError)
    ):
        # A value the client sent that its type refuses (a scalar's parser said why).
        return "BAD_USER_INPUT"
    if error.path is None and error.message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    if error.path is None:
        return "GRAPHQL_VALIDATION_FAILED"
    if isinstance(original, GraphQLError | None) and error.message.startswith("Argument '"):
        # graphql-core's own coercion of a field's arguments while executing: a variable with a
        # default sent as null where a non-null value goes ("Argument 'name' has invalid
        # value: Expected variable '$v' provided to non-null type 'String!' not to be None.").
        return "BAD_USER_INPUT"
    return "INTERNAL"


class SingleOperation(SchemaExtension):
    """A document with several operations needs `operationName` (GraphQL spec, GetOperation).

    Strawberry would run the first one; this turns that into a request error before validation.
    """

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        # Strawberry fills `operation_name` from the first operation; only this says what was sent.
        provided = context._provided_operation_name
        if provided is None and document is not None:
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            if len(operations) > 1:
                context.pre_execution_errors = [
                    GraphQLError(
                        "Must provide operationName: the document contains "
                        f"{len(operations)} operations."
                    )
                ]
        yield


class ErrorCodes(MaskErrors):
    """MaskErrors that keeps our own errors readable and labels every error with a code."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message=INTERNAL_MESSAGE)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if original is not None and is_unavailable(original):
            logger.warning("database unavailable at %s: %s", error.path, original)
            return GraphQLError(
                UNAVAILABLE_MESSAGE,
                nodes=error.nodes,
                path=error.path,
                extensions={"code": "SERVICE_UNAVAILABLE"},
            )
        logger.error("unexpected error at %s", error.path, exc_info=original or error)
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL"}
        return masked

    def _process_result(self, result: object) -> None:
        # MaskErrors asks `isinstance(result, <runtime-checkable Protocol>)`, which costs more
        # than the rest of its work on every subscription result; this is the same test.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = super()._process_errors(errors)
        for error in processed:
            if not (error.extensions or {}).get("code"):
                error.extensions = {**(error.extensions or {}), "code": error_code(error)}
        return processed
