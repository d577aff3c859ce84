"""Log format (JOBQL_LOG_FORMAT): `text` (the default: `LEVEL logger: message`, uvicorn's own
lines as uvicorn writes them) or `json`: every line on stderr one JSON object, jobql's and
uvicorn's alike, with `time`, `level`, `logger`, `pid` and `message`, an `exception` with the
traceback where there is one, and for the request lines (`jobql.access`, JOBQL_ACCESS_LOG) the
request's fields (`jobql.http.telemetry`). No line carries query variables or tokens: request
lines name the path, never the query string or the headers.
"""

from __future__ import annotations

import copy
import logging
import logging.config
from datetime import UTC, datetime
from typing import Any

import orjson

TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"
# The request line's fields (jobql.http.telemetry), copied from a record when present.
REQUEST_FIELDS = (
    "request_id",
    "method",
    "route",
    "path",
    "status",
    "duration_ms",
    "workspace",
    "operation",
    "strategy",
    "trace_id",
)
ACCESS_LOGGER = "jobql.access"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        for name in REQUEST_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


def configure(log_format: str, level: str = "info") -> None:
    """This process's logging (the commands; `serve`'s workers get `uvicorn_config`)."""
    if log_format == "json":
        logging.config.dictConfig(_json_config(level))
    else:
        logging.basicConfig(level=logging.INFO, format=TEXT_FORMAT)
    logging.getLogger("alembic").setLevel(logging.WARNING)


class WithoutQueryString(logging.Filter):
    """uvicorn's access line names the path without its query string: a GET request's query
    string carries the document and its variables (`?query=...&variables=...`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # uvicorn: '%s - "%s %s HTTP/%s" %d' % (client, method, path and query, version, status)
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], args[2].split("?", 1)[0], *args[3:])
        return True


def uvicorn_config(log_format: str, level: str = "info") -> dict[str, Any]:
    """uvicorn's `log_config`: its own default for text (its access lines without query
    strings), else every logger as JSON on stderr (each worker applies it)."""
    if log_format == "json":
        return _json_config(level)
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["without_query_string"] = {
        "()": "jobql.logs.WithoutQueryString"
    }
    config["handlers"]["access"].setdefault("filters", []).append("without_query_string")
    return config


def _json_config(level: str) -> dict[str, Any]:
    name = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        # Names, not objects: uvicorn hands this to its worker processes.
        "formatters": {"json": {"()": "jobql.logs.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": name},
        # uvicorn's loggers as they are in its own configuration, writing through the root.
        "loggers": {
            "uvicorn": {"level": name, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": name, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": name, "handlers": [], "propagate": True},
            "alembic": {"level": "WARNING"},
        },
    }


__all__ = ["ACCESS_LOGGER", "JsonFormatter", "WithoutQueryString", "configure", "uvicorn_config"]
