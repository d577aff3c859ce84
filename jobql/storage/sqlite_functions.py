"""Functions SQLite lacks, registered on every SQLite connection (see `engine`).

The compiled strategy (`json_sql`) builds global ids and cursors in SQL; PostgreSQL has base64 and
sha256 built in, SQLite gets these two, which make the same bytes as `identifiers`.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from jobql.storage.identifiers import CHECK_BYTES


def register_sqlite_functions(dbapi_connection: Any) -> None:
    """The two encoders SQLite lacks, as deterministic functions of the connection."""

    def global_id(text: str | None) -> str | None:
        return None if text is None else base64.b64encode(text.encode()).decode("ascii")

    def cursor(secret: str, payload: str | None) -> str | None:
        if payload is None:
            return None
        data = payload.encode()
        token = data + hashlib.sha256(secret.encode() + data).digest()[:CHECK_BYTES]
        return base64.urlsafe_b64encode(token).rstrip(b"=").decode("ascii")

    dbapi_connection.create_function("jobql_global_id", 1, global_id, deterministic=True)
    dbapi_connection.create_function("jobql_cursor", 2, cursor, deterministic=True)
