"""The /dashboard page: static files from `examples/dashboard/`, served beside the API.

The page is an example client, not part of the installed package: it lives in the repository's
`examples/` (where the other example operations live) and is found next to the `jobql` package of a
source checkout, or wherever `JOBQL_DASHBOARD_DIR` points. Without it, `/dashboard` is a plain 404
that says so, and the API is unaffected.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

DASHBOARD_PATH = "/dashboard"
# jobql/dashboard.py -> the checkout's root -> examples/dashboard
CHECKOUT_DASHBOARD_DIR = Path(__file__).resolve().parent.parent / "examples" / "dashboard"

MISSING_MESSAGE = (
    "The dashboard is not installed here. /dashboard serves the static files of "
    "examples/dashboard/ from a source checkout of jobql (they are not part of the Python "
    "package); point JOBQL_DASHBOARD_DIR at a copy of that directory to serve it. "
    "The GraphQL API at /graphql works without it."
)


def dashboard_directory(configured: str | None) -> Path:
    return Path(configured) if configured else CHECKOUT_DASHBOARD_DIR


def is_dashboard_directory(directory: Path) -> bool:
    return (directory / "index.html").is_file()


def dashboard_routes(configured: str | None) -> list[BaseRoute]:
    """`/dashboard/` with its files, or a 404 that explains where they come from."""
    directory = dashboard_directory(configured)
    if is_dashboard_directory(directory):
        # `/dashboard` redirects to `/dashboard/` (Starlette's redirect_slashes), so the page's
        # relative URLs (./app.js) resolve inside the mount.
        return [
            Mount(
                DASHBOARD_PATH,
                StaticFiles(directory=directory, html=True, follow_symlink=False),
                name="dashboard",
            )
        ]

    async def missing(_request: Request) -> PlainTextResponse:
        return PlainTextResponse(MISSING_MESSAGE, status_code=404)

    return [
        Route(DASHBOARD_PATH, missing, methods=["GET", "HEAD"]),
        Route(f"{DASHBOARD_PATH}/{{path:path}}", missing, methods=["GET", "HEAD"]),
    ]
