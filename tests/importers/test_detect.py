"""Format detection from the content, and what `format` (`--format`) may override."""

from __future__ import annotations

import json

import pytest

from jobql.importers import FORMATS, ImportFormatError, detect_format, parse_body
from tests.importers.support import example

EXAMPLE_FORMATS = {
    "000_example1.json": "dlf-v1-list",
    "000_example3.json": "dlf-v1-list",
    "001_example.json": "dlf-v2-list",
    "002_example.json": "schedulerx",
    "002_example.xml": "schedulerx",
    "003_example.json": "dlf-v1-detail",
    "004_example.json": "flink-instance",
    "004_example.xml": "flink-instance",
}


def test_the_format_names() -> None:
    assert FORMATS == (
        "dlf-v1-list",
        "dlf-v2-list",
        "dlf-v1-detail",
        "schedulerx",
        "flink-instance",
    )


@pytest.mark.parametrize(("name", "format"), sorted(EXAMPLE_FORMATS.items()))
def test_each_example_is_detected(name: str, format: str) -> None:
    assert detect_format(example(name)) == format


@pytest.mark.parametrize(("name", "format"), sorted(EXAMPLE_FORMATS.items()))
def test_format_naming_the_right_format_parses_the_same(name: str, format: str) -> None:
    body = example(name)
    assert parse_body(body, source=name, format=format) == parse_body(body, source=name)


def test_detection_ignores_the_file_name() -> None:
    assert parse_body(example("004_example.xml"), source="data.json").format == "flink-instance"


@pytest.mark.parametrize(
    ("name", "wrong"),
    [
        ("000_example1.json", "dlf-v2-list"),
        ("001_example.json", "dlf-v1-list"),
        ("002_example.xml", "flink-instance"),
        ("003_example.json", "dlf-v1-list"),
        ("004_example.json", "schedulerx"),
    ],
)
def test_a_format_the_body_plainly_is_not_is_refused(name: str, wrong: str) -> None:
    right = EXAMPLE_FORMATS[name]
    with pytest.raises(ImportFormatError) as caught:
        parse_body(example(name), source=name, format=wrong)
    assert str(caught.value) == f"{name}: the body is {right}, not {wrong} as --format says"


def test_an_unknown_format_name_is_refused() -> None:
    with pytest.raises(ImportFormatError, match="unknown format 'dlf'; the formats are dlf-v1-"):
        parse_body(example("000_example1.json"), source="a.json", format="dlf")


def test_format_decides_where_the_content_cannot() -> None:
    body = '{"total": 0, "instances": []}'
    assert detect_format(body) == "dlf-v1-list"
    parsed = parse_body(body, source="empty.json", format="dlf-v2-list")
    assert (parsed.format, parsed.instances, parsed.jobs) == ("dlf-v2-list", [], [])


def test_format_forces_a_parser_on_a_body_of_unknown_shape() -> None:
    body = json.dumps({"jobName": "j", "instanceId": 1, "status": "running", "planTime": 0})
    assert detect_format(body) == "dlf-v1-detail"
    body = json.dumps({"JobInstanceDetails": [], "RequestId": "r"})
    with pytest.raises(ImportFormatError, match="cannot tell the format"):
        detect_format(body)
    with pytest.raises(ImportFormatError, match=r"^x.json: missing required field Data$"):
        parse_body(body, source="x.json", format="schedulerx")


def test_an_html_page_is_not_a_response() -> None:
    page = "<!DOCTYPE html>\n<html><head><title>Login</title></head><body>Sign in</body></html>"
    with pytest.raises(ImportFormatError) as caught:
        parse_body(page, source="page.html")
    assert str(caught.value) == (
        "page.html: cannot tell the format: the body is an HTML page, not an API response"
    )
    with pytest.raises(ImportFormatError, match="HTML page"):
        parse_body("<html><body>502 Bad Gateway</body></html>", source="p")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("", "the body is empty"),
        ("  \n", "the body is empty"),
        ("job_batch,34765,success\n", "cannot tell the format: the body is neither JSON nor XML"),
        ('{"hello": "world"}', "cannot tell the format: a JSON object with keys hello; give"),
        ("[1, 2]", "cannot tell the format: the top level is (a list), not an object"),
        ("<a><b>1</b></a>", "cannot tell the format: XML <a> with elements b; give --format"),
        ("<Note>hi</Note>", "cannot tell the format: XML with elements Note; give --format"),
    ],
)
def test_bodies_of_no_known_format(body: str, problem: str) -> None:
    with pytest.raises(ImportFormatError) as caught:
        detect_format(body, source="in.txt")
    assert str(caught.value).startswith(f"in.txt: {problem}")


def test_a_byte_order_mark_and_an_xml_declaration_are_fine() -> None:
    body = '\ufeff<?xml version="1.0" encoding="UTF-8"?>\n' + example("002_example.xml")
    assert parse_body(body, source="x").instances[0].instance_id == 11111111
