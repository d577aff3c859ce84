"""graphql-http's GraphQL-over-HTTP audit finds no MUST-level violation at /graphql."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

# SHOULD-level audits that API.md section 3 makes part of our contract: the status code follows the
# Accept header (4xx for a bad document under application/graphql-response+json, 200 with `errors`
# under application/json) and the response media type matches the one asked for.
CONTRACT_AUDITS = {
    "22EB": "answer application/graphql-response+json when it is accepted",
    "865D": "4xx on a parsing failure under application/graphql-response+json",
    "51FE": "4xx on a validation failure under application/graphql-response+json",
    "572B": "200 on a parsing failure under application/json",
    "FDE2": "200 on a validation failure under application/json",
}


@pytest.fixture(scope="module")
def audit(
    node_tool: Callable[..., subprocess.CompletedProcess[str]],
    live_server: str,
    audit_report: list[str],
) -> dict[str, Any]:
    """The audit summary printed by audit.mjs; its warnings also go to the terminal summary."""
    run = node_tool("audit.mjs", f"{live_server}/graphql")
    assert run.returncode == 0, (
        f"audit.mjs exited with {run.returncode}\n"
        f"--- stderr\n{run.stderr}\n--- stdout\n{run.stdout}"
    )
    summary: dict[str, Any] = json.loads(run.stdout)
    print(run.stderr.strip())
    audit_report.append(
        f"{summary['ok']} ok, {summary['notice']} notice, {summary['warn']} warn, "
        f"{summary['error']} error"
    )
    audit_report.extend(
        f"{kind} {item['id']} {item['name']}: {item['reason']}"
        for kind, key in (("error", "errors"), ("warn", "warnings"), ("notice", "notices"))
        for item in summary[key]
    )
    return summary


def test_graphql_over_http_audit_has_no_errors(audit: dict[str, Any]) -> None:
    for warning in audit["warnings"]:
        print(f"warning {warning['id']} {warning['name']}: {warning['reason']}")

    assert audit["error"] == 0, (
        f"{audit['error']} MUST-level audit(s) failed:\n{json.dumps(audit['errors'], indent=2)}"
    )


def test_status_codes_follow_the_accept_header(audit: dict[str, Any]) -> None:
    broken = [w for w in audit["warnings"] + audit["notices"] if w["id"] in CONTRACT_AUDITS]

    assert not broken, "API.md §3 requires:\n" + "\n".join(
        f"- {CONTRACT_AUDITS[w['id']]} ({w['id']}: {w['reason']})\n"
        f"  got {json.dumps(w['response'])}"
        for w in broken
    )
