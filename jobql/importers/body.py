"""A response body read into plain Python values, and what an importer makes of it.

JSON is read with the standard library (floats keep their spelling for messages; NaN and Infinity
are refused). XML is read with ElementTree into the same shape as the JSON form of the same
response: an element with children is a dict, a repeated child is a list, a leaf is its text (""
when empty). A body with a DTD or an entity declaration is refused outright: nothing is ever
expanded. Seed 004's XML has no root element (`<RequestId>` then `<Instance>`), so every XML body is
parsed inside a synthetic root; a body with a real root is unwrapped to that root's children.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from jobql.importers.errors import ImportFormatError
from jobql.importers.fields import Rec, parse_json_float, show
from jobql.storage.records import InstanceRecord, JobRecord

DEFAULT_WORKSPACE = "default"

_HTML = re.compile(r"<!doctype\s+html|<html[\s>]", re.IGNORECASE)
_DTD = re.compile(r"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_XML_DECLARATION = re.compile(r"<\?xml[^>]*\?>")
_ROOT = "jobql-import"
_OPEN = f"<{_ROOT}>"
# Elements that are records, never a response wrapper to look inside.
_RECORD_TAGS = frozenset({"Instance", "JobInstanceDetails"})


@dataclass(frozen=True)
class Document:
    """A parsed body: `data` as JSON would give it, `xml` when it was XML (all values are text)."""

    source: str
    data: Any
    xml: bool
    # The XML response element's name (e.g. GetJobInstanceListResponse), when there is one.
    root_tag: str | None = None


@dataclass
class ParsedBody:
    """What one body holds, in the order it listed it.

    `instances` carry the job facts they came with in `job_values`; `jobs` is one record per job
    named in the body with those facts merged (the same facts, for callers that upsert jobs first).
    """

    format: str
    source: str
    instances: list[InstanceRecord] = field(default_factory=list)
    jobs: list[JobRecord] = field(default_factory=list)
    # Oddities that do not stop the import (e.g. a node `total` that disagrees with the list).
    warnings: list[str] = field(default_factory=list)


class Collector:
    """Gathers a body's instances; refuses one instance listed twice and jobs described two ways."""

    def __init__(self, format: str, source: str) -> None:
        self.parsed = ParsedBody(format=format, source=source)
        self._instances: dict[tuple[str, str, int], str] = {}
        self._jobs: dict[tuple[str, str], tuple[JobRecord, dict[str, str]]] = {}

    def add(self, record: InstanceRecord, rec: Rec) -> None:
        key = (record.workspace, record.job_name, record.instance_id)
        first = self._instances.get(key)
        if first is not None:
            rec.fail(
                f"instance {record.instance_id} of job {record.job_name!r} is listed twice "
                f"(first at {first})"
            )
        self._instances[key] = rec.path
        job_key = (record.workspace, record.job_name)
        known = self._jobs.get(job_key)
        if known is None:
            job = JobRecord(
                workspace=record.workspace,
                name=record.job_name,
                values=dict(record.job_values),
                source=record.source,
            )
            self._jobs[job_key] = (job, dict.fromkeys(record.job_values, rec.path))
            self.parsed.jobs.append(job)
        else:
            job, reported_by = known
            for column, value in record.job_values.items():
                if column not in job.values:
                    job.values[column] = value
                    reported_by[column] = rec.path
                elif job.values[column] != value:
                    rec.fail(
                        f"job {record.job_name!r}: {column} {show(value)} disagrees with "
                        f"{show(job.values[column])} at {reported_by[column]}"
                    )
        self.parsed.instances.append(record)


def load(body: str, source: str) -> Document:
    """Parse a body as JSON or XML, whichever it is; no format-specific checks."""
    if body.startswith("\ufeff"):
        body = body[1:]
    start = body.lstrip()
    if not start:
        raise ImportFormatError(source, "the body is empty")
    if start[0] in "{[":
        return Document(source=source, data=_load_json(body, source), xml=False)
    if start[0] == "<":
        return _load_xml(body, source)
    raise ImportFormatError(
        source,
        f"cannot tell the format: the body is neither JSON nor XML (it starts with {start[:40]!r})",
    )


class _NonFinite(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NonFinite(name)


def _load_json(body: str, source: str) -> Any:
    try:
        return json.loads(body, parse_float=parse_json_float, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        problem = f"truncated or invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        raise ImportFormatError(source, problem) from None
    except _NonFinite as exc:
        raise ImportFormatError(source, f"invalid JSON: {exc} is not a JSON number") from None
    except RecursionError:
        raise ImportFormatError(source, "invalid JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal with thousands of digits
        raise ImportFormatError(source, f"invalid JSON: {exc}") from None


def _load_xml(body: str, source: str) -> Document:
    if _HTML.search(body, 0, 4096):
        raise ImportFormatError(
            source, "cannot tell the format: the body is an HTML page, not an API response"
        )
    if _DTD.search(body):
        raise ImportFormatError(
            source,
            "XML with a DOCTYPE or ENTITY declaration is refused (entities are never expanded)",
        )
    # The declaration may only open a document; blank it out (same length, so error positions
    # stay right) before wrapping the body in the synthetic root.
    declaration = _XML_DECLARATION.match(body.lstrip())
    if declaration is not None:
        offset = len(body) - len(body.lstrip()) + declaration.start()
        body = body[:offset] + " " * len(declaration.group()) + body[offset + declaration.end() :]
    try:
        root = ET.fromstring(f"{_OPEN}{body}</{_ROOT}>")
    except ET.ParseError as exc:
        line, column = exc.position
        if line == 1:
            column -= len(_OPEN)
        message = re.sub(r": line \d+, column \d+$", "", str(exc))
        end_line, end_column = body.count("\n") + 1, len(body) - body.rfind("\n") - 1
        if (line, column) >= (end_line, end_column):  # failed at the synthetic closing tag
            line, column = end_line, end_column
            message = "the body ends before its elements are closed"
        problem = f"truncated or invalid XML at line {line} column {column + 1}: {message}"
        raise ImportFormatError(source, problem) from None
    top = list(root)
    if _stray_text(root):
        raise ImportFormatError(source, "invalid XML: text outside any element")
    if not top:
        raise ImportFormatError(source, "cannot tell the format: the XML body has no elements")
    try:
        if len(top) == 1 and len(top[0]) and _local(top[0].tag) not in _RECORD_TAGS:
            response = top[0]
            return Document(source, _element(response), True, _local(response.tag))
        return Document(source, _element(root), True)
    except RecursionError:
        raise ImportFormatError(source, "invalid XML: nested too deeply") from None


def _stray_text(root: ET.Element) -> bool:
    if root.text and root.text.strip():
        return True
    return any(child.tail and child.tail.strip() for child in root)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _element(element: ET.Element) -> Any:
    if not len(element):
        return element.text or ""
    out: dict[str, Any] = {}
    for child in element:
        tag = _local(child.tag)
        value = _element(child)
        if tag not in out:
            out[tag] = value
        elif isinstance(out[tag], list):  # a leaf or an object is never a list itself
            out[tag].append(value)
        else:
            out[tag] = [out[tag], value]
    return out


def refuse_error_response(doc: Document) -> None:
    """An error reply is not data: say what the service answered instead of guessing a format."""
    data = doc.data
    if not isinstance(data, dict):
        return
    if "error_code" in data or "error_msg" in data:
        raise ImportFormatError(
            doc.source,
            f"the body is an error response, not data: error_code {_plain(data.get('error_code'))}"
            f", error_msg {show(data.get('error_msg'))}",
        )
    success = data.get("Success")
    if isinstance(success, str) and doc.xml:
        success = {"true": True, "false": False}.get(success.strip(), success)
    failed = success is False
    if not failed and success is not True and "Code" in data and "Message" in data:
        failed = "Data" not in data and "Instance" not in data
    if failed:
        raise ImportFormatError(
            doc.source,
            f"the body is an error response, not data (Success: {show(success)}): Code "
            f"{_plain(data.get('Code'))}, Message {show(data.get('Message'))}",
        )


def _plain(raw: object) -> str:
    return raw if isinstance(raw, str) else show(raw)


def body_object(doc: Document, *, json_only: bool = False) -> dict[str, Any]:
    """The body's top-level object, after refusing error replies."""
    refuse_error_response(doc)
    if json_only and doc.xml:
        raise ImportFormatError(doc.source, "this format is JSON; the body is XML")
    if not isinstance(doc.data, dict):
        raise ImportFormatError(doc.source, f"expected a JSON object, got {show(doc.data)}")
    return doc.data


def describe(doc: Document) -> str:
    """What a body looks like, for 'cannot tell the format' messages."""
    data = doc.data
    if not isinstance(data, dict):
        return f"the top level is {show(data)}, not an object"
    keys = ", ".join(list(data)[:8]) + (", ..." if len(data) > 8 else "")
    if doc.xml:
        root = f"<{doc.root_tag}> " if doc.root_tag else ""
        return f"XML {root}with elements {keys or '(none)'}"
    return f"a JSON object with keys {keys or '(none)'}"
