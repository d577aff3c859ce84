"""Error format: every error carries `extensions.code`; unexpected ones are masked."""

from __future__ import annotations

import logging

from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from jobql.errors import JobqlError

logger = logging.getLogger("jobql")

INTERNAL_MESSAGE = "Internal server error."


def is_unexpected(error: GraphQLError) -> bool:
    original = error.original_error
    return original is not None and not isinstance(original, (JobqlError, GraphQLError))


def error_code(error: GraphQLError) -> str:
    original = error.original_error
    if isinstance(original, JobqlError):
        return original.code
    if error.path is None and error.message.startswith("Variable '$"):
        return "BAD_USER_INPUT"
    if error.path is None and error.message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    if error.path is None:
        return "GRAPHQL_VALIDATION_FAILED"
    return "INTERNAL"


class ErrorCodes(MaskErrors):
    """MaskErrors that keeps our own errors readable and labels every error with a code."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message=INTERNAL_MESSAGE)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        logger.error("unexpected error at %s", error.path, exc_info=error.original_error or error)
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL"}
        return masked

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = super()._process_errors(errors)
        for error in processed:
            if not (error.extensions or {}).get("code"):
                error.extensions = {**(error.extensions or {}), "code": error_code(error)}
        return processed
