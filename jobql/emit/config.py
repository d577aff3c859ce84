"""Whether the emitter runs: JOBQL_OPENLINEAGE (`auto`, `on`, `off`) and openlineage-python's own
configuration."""

from __future__ import annotations

import os
from collections.abc import Mapping

from openlineage.client import OpenLineageClient


def standard_config_present(environ: Mapping[str, str] | None = None) -> bool:
    """openlineage-python is configured: `OPENLINEAGE_URL`, an `OPENLINEAGE__TRANSPORT...`
    variable, or a config file (`OPENLINEAGE_CONFIG`, `./openlineage.yml`,
    `~/.openlineage/openlineage.yml`, found as the client finds it)."""
    env = os.environ if environ is None else environ
    if env.get("OPENLINEAGE_URL"):
        return True
    if any(name.startswith("OPENLINEAGE__TRANSPORT") for name in env):
        return True
    return OpenLineageClient._find_yaml_config_path() is not None


def disabled_by_client(environ: Mapping[str, str] | None = None) -> bool:
    """`OPENLINEAGE_DISABLED=true`: the client would drop every event (its no-op transport),
    and the cursor must not move past events nobody received."""
    env = os.environ if environ is None else environ
    return env.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true"


def emitter_enabled(mode: str, environ: Mapping[str, str] | None = None) -> bool:
    """`mode` is JOBQL_OPENLINEAGE: `off` never, `on` always (the client's console transport
    when nothing else is configured), `auto` when openlineage-python is configured."""
    if mode == "off" or disabled_by_client(environ):
        return False
    return mode == "on" or standard_config_present(environ)
