from __future__ import annotations

import json

import pytest

from backline.errors import FormatError
from backline.report import build_report, render_json, to_document
from backline.report.load import load_result, read_document, validate_document

from .samples import empty_result, fixed_clock, hostile_result, many_events_result, rich_result


@pytest.mark.parametrize("make", [empty_result, rich_result, hostile_result, lambda: many_events_result(2000)],
                         ids=["empty", "rich", "hostile", "many"])
def test_round_trip_keeps_everything(make):
    first = json.loads(render_json(build_report(make(), now=fixed_clock)))
    again = to_document(build_report(load_result(first), now=fixed_clock))
    assert json.loads(json.dumps(again)) == first


def test_invalid_documents_are_format_errors():
    doc = json.loads(render_json(build_report(rich_result())))
    doc["findings"][1]["count"] = "many"
    with pytest.raises(FormatError) as err:
        load_result(doc, source="r.json")
    assert err.value.artifact == "r.json" and err.value.locator == "$.findings[1].count"
    assert validate_document(doc) == ["$.findings[1].count: 'many' is not of type 'integer'"]


def test_read_document_errors(tmp_path):
    with pytest.raises(FormatError, match="cannot read"):
        read_document(tmp_path / "nope.json")
    p = tmp_path / "list.json"
    p.write_text("[1, 2]")
    with pytest.raises(FormatError, match="top level is not an object"):
        read_document(p)
    p.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(FormatError, match="not UTF-8|not JSON"):
        read_document(p)
