"""Importers: response bodies of the five source APIs (../seeds) -> ingest records.

One module per format (`dlf_v1_list`, `dlf_v2_list`, `dlf_v1_detail`, `schedulerx`,
`flink_instance`), each with `parse(body, *, source, workspace, timezone)`; `parse_body` detects the
format from the content. Every problem is an `ImportFormatError` naming the file, the record and
the problem.
"""

from __future__ import annotations

from jobql.importers.body import ParsedBody
from jobql.importers.detect import FORMATS, detect_format, parse_body
from jobql.importers.errors import ImportFormatError

__all__ = ["FORMATS", "ImportFormatError", "ParsedBody", "detect_format", "parse_body"]
