"""/dashboard is served from examples/dashboard without a token, and is a clear 404 without it.

The browser side (that the page shows what the API answers) is tests/e2e/test_dashboard.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from jobql import dashboard
from jobql.app import create_app
from jobql.settings import Settings, SettingsError

DASHBOARD_DIR = Path(__file__).resolve().parents[1] / "examples" / "dashboard"
TOKEN = "dashboard-routes-secret"


@pytest.fixture
async def make_client(tmp_path: Path) -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    """Clients of apps built from Settings(**overrides); no request here reaches the database."""
    apps: list[Starlette] = []
    clients: list[httpx.AsyncClient] = []

    def make(**overrides: str | None) -> httpx.AsyncClient:
        settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}")
        app = create_app(Settings(**{**_fields(settings), **overrides}))
        apps.append(app)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://jobql.test"
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()
    for app in apps:
        await app.state.engine.dispose()


def _fields(settings: Settings) -> dict[str, object]:
    return {name: getattr(settings, name) for name in Settings.__dataclass_fields__}


async def test_the_checkout_dashboard_is_served(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    client = make_client()
    redirect = await client.get("/dashboard")
    assert redirect.status_code in (301, 307, 308)
    assert redirect.headers["location"].endswith("/dashboard/")

    page = await client.get("/dashboard/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.text == (DASHBOARD_DIR / "index.html").read_text(encoding="utf-8")

    scripts = sorted(DASHBOARD_DIR.rglob("*.js"))
    assert DASHBOARD_DIR / "vendor" / "chart.umd.js" in scripts
    for script in scripts:
        name = script.relative_to(DASHBOARD_DIR).as_posix()
        module = await client.get(f"/dashboard/{name}")
        assert module.status_code == 200, name
        # Browsers refuse ES modules served with a non-JavaScript MIME type.
        assert "javascript" in module.headers["content-type"], module.headers["content-type"]

    missing = await client.get("/dashboard/no-such-file.js")
    assert missing.status_code == 404


def test_the_dashboard_loads_nothing_from_another_origin() -> None:
    """Every URL in the page's files is relative or same-origin: no CDN, no fonts, no beacons."""
    reference = re.compile(
        r"""(?:src|href)\s*=\s*["']([^"']+)["']"""  # HTML attributes
        r"""|\bfrom\s+["']([^"']+)["']"""  # ES module imports
        r"""|url\(\s*["']?([^"')]+)"""  # CSS
        r"""|fetch\(\s*["']([^"']+)["']""",
    )
    seen = []
    # The vendored Chart.js (vendor/) included: it must not fetch anything either.
    for path in sorted(p for p in DASHBOARD_DIR.rglob("*") if p.is_file()):
        name = path.relative_to(DASHBOARD_DIR).as_posix()
        for match in reference.finditer(path.read_text(encoding="utf-8")):
            url = next(group for group in match.groups() if group)
            seen.append(url)
            assert url.startswith(("./", "/", "data:")), f"{name} references {url}"
            assert not url.startswith("//"), f"{name} references {url}"
    assert "./app.js" in seen, seen
    assert "./dashboard.css" in seen, seen
    assert "./vendor/chart.umd.js" in seen, seen


def test_the_vendored_chart_library_is_pinned_and_licensed() -> None:
    """vendor/ holds what scripts/refresh-dashboard-vendor.sh pins, with the licences."""
    vendor = DASHBOARD_DIR / "vendor"
    script = (DASHBOARD_DIR.parents[1] / "scripts" / "refresh-dashboard-vendor.sh").read_text()
    pinned = dict(re.findall(r"^(CHARTJS_VERSION|KURKLE_COLOR_VERSION)=(\S+)$", script, re.M))
    lines = [
        line.split()
        for line in (vendor / "VERSIONS").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert [(name, version) for name, version, _ in lines] == [
        ("chart.js", pinned["CHARTJS_VERSION"]),
        ("@kurkle/color", pinned["KURKLE_COLOR_VERSION"]),
    ]
    assert all(integrity.startswith("sha512-") for _, _, integrity in lines)
    bundle = (vendor / "chart.umd.js").read_text(encoding="utf-8")
    assert f"Chart.js v{pinned['CHARTJS_VERSION']}" in bundle[:200]
    assert f"@kurkle/color v{pinned['KURKLE_COLOR_VERSION']}" in bundle
    for licence in ("LICENSE.chart.js", "LICENSE.kurkle-color"):
        assert "MIT License" in (vendor / licence).read_text(), licence


async def test_the_dashboard_needs_no_token_but_its_data_does(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    tokens = [
        {
            "name": "dash",
            "sha256": hashlib.sha256(TOKEN.encode()).hexdigest(),
            "workspaces": ["*"],
            "scopes": ["read"],
        }
    ]
    client = make_client(tokens=json.dumps(tokens))
    for path in ("/dashboard/", "/dashboard/app.js", "/dashboard/dashboard.css"):
        response = await client.get(path)
        assert response.status_code == 200, path
    data = await client.post("/graphql", json={"query": "{ jobs { totalCount } }"})
    assert data.status_code == 401
    # The exemption is for the dashboard's own path, not for anything that starts alike.
    lookalike = await client.get("/dashboardx")
    assert lookalike.status_code == 401


async def test_without_the_files_dashboard_is_a_404_that_says_why(
    make_client: Callable[..., httpx.AsyncClient],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # As in an installed wheel: examples/ is not next to the package.
    monkeypatch.setattr(dashboard, "CHECKOUT_DASHBOARD_DIR", tmp_path / "not-here")
    client = make_client()
    for path in ("/dashboard", "/dashboard/", "/dashboard/app.js"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/plain")
        assert "examples/dashboard" in response.text
        assert "JOBQL_DASHBOARD_DIR" in response.text
    posted = await client.post("/dashboard/")
    assert posted.status_code == 405
    # The API does not depend on the dashboard.
    page = await client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200


async def test_jobql_dashboard_dir_serves_a_copy(
    make_client: Callable[..., httpx.AsyncClient],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(dashboard, "CHECKOUT_DASHBOARD_DIR", tmp_path / "not-here")
    copy = tmp_path / "my-dashboard"
    shutil.copytree(DASHBOARD_DIR, copy)
    (copy / "index.html").write_text("<!doctype html><title>my copy</title>", encoding="utf-8")

    settings = Settings.from_env({"JOBQL_DASHBOARD_DIR": str(copy)})
    client = make_client(dashboard_dir=settings.dashboard_dir)
    response = await client.get("/dashboard/")
    assert response.status_code == 200
    assert "my copy" in response.text


def test_jobql_dashboard_dir_without_an_index_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="JOBQL_DASHBOARD_DIR"):
        Settings.from_env({"JOBQL_DASHBOARD_DIR": str(tmp_path)})
