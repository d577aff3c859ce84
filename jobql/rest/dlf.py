"""DataArts Studio / DLF (seeds 000, 001, 003): what its endpoints share.

The workspace is the `workspace` request header (absent or empty: `default`); the path's
`project_id` is accepted and ignored (one jobql serves one project). Errors are HTTP 400 with
`{"error_code", "error_msg"}`: every refused parameter is `DLF.3051` "The request parameter is
invalid." (the page's one form; which parameter and why is not told, as DLF does not).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from jobql.rest.endpoint import ErrorForms, ErrorReply, json_response
from jobql.rest.formats import DLF_STATUS_FILTER, INSTANCE_TYPE_FILTER
from jobql.rest.params import Query
from jobql.storage.enums import InstanceStatus, InstanceType

INVALID = ErrorReply(400, "DLF.3051", "The request parameter is invalid.")
JOB_MISSING = ErrorReply(400, "DLF.0100", "The job does not exists.")
INSTANCE_MISSING = ErrorReply(400, "DLF.0137", "Job instance does not exist.")
INTERNAL = ErrorReply(500, "DLF.0500", "Internal server error.")


def _render(_request: Request, error: ErrorReply) -> Response:
    return json_response({"error_code": error.code, "error_msg": error.message}, error.status)


def _invalid(_detail: str) -> ErrorReply:
    return INVALID


def errors(not_found: ErrorReply = INVALID) -> ErrorForms:
    return ErrorForms(
        render=_render,
        invalid=_invalid,
        not_found=not_found,
        internal=INTERNAL,
        forbidden_code="DLF.0403",
    )


def workspace(request: Request) -> str | None:
    return request.headers.get("workspace")


def statuses(query: Query) -> list[InstanceStatus] | None:
    """`status`: one DLF status string (`waiting` .. `manual-stop`, `skip-by-depend`, `freeze`)."""
    return query.choice("status", DLF_STATUS_FILTER)


_INSTANCE_TYPES = {str(code): member for code, member in INSTANCE_TYPE_FILTER.items()}


def instance_types(query: Query, name: str) -> list[InstanceType] | None:
    """An instance type parameter (v1 `instanceType`, v2 `instance_type`): one of the codes 0
    (general), 2 (manual), 5 (PatchData), 6 (subjob), 7 (one-off)."""
    found = query.choice(name, _INSTANCE_TYPES)
    return None if found is None else [found]
