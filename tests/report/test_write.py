from __future__ import annotations

import json
from dataclasses import replace

import pytest

from backline.errors import StorageError, UsageError
from backline.model import Fact
from backline.report import build_report, write_reports
from backline.report.write import normalise_formats

from .samples import fixed_clock


def test_writes_each_format(rich, tmp_path):
    out = tmp_path / "deep" / "out"
    paths = write_reports(build_report(rich, now=fixed_clock), out, ["json", "md", "html", "txt"])
    assert paths == {"json": out / "report.json", "md": out / "report.md",
                     "html": out / "report.html", "txt": out / "report.txt"}
    assert json.loads(paths["json"].read_text())["summary"]["findings"]["total"] == 5
    assert paths["md"].read_text().startswith("# Backline report")
    assert paths["html"].read_text().startswith("<!DOCTYPE html>")
    assert "\x1b" not in paths["txt"].read_text()
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json", "report.md", "report.txt"]


def test_unknown_format_is_a_usage_error_and_writes_nothing(rich, tmp_path):
    with pytest.raises(UsageError, match="unknown report format 'pdf'"):
        write_reports(build_report(rich), tmp_path / "o", ["json", "pdf"])
    assert not (tmp_path / "o").exists()


def test_aliases_and_duplicates():
    assert normalise_formats(["markdown", "MD", "htm", "text"]) == ["md", "html", "txt"]


def test_folder_that_is_a_file_is_a_storage_error(rich, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError) as err:
        write_reports(build_report(rich), blocker, ["json"])
    assert str(blocker) in str(err.value)


def test_lone_surrogates_from_bad_decoding_are_written(rich, tmp_path):
    bad = "caf\udce9"                                  # bytes b"caf\xe9" read with surrogateescape
    result = replace(rich, facts=(Fact("app.name", bad, "x"),))
    paths = write_reports(build_report(result), tmp_path, ["json", "md", "html"])
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert doc["facts"][0]["value"] == bad              # round-trips through the \udce9 escape
    assert "caf\\udce9" in paths["md"].read_text(encoding="utf-8")


def test_streamed_json_file_equals_render_json(rich, tmp_path):
    from backline.report import render_json
    report = build_report(rich, now=fixed_clock)
    path = write_reports(report, tmp_path, ["json"])["json"]
    assert path.read_text(encoding="utf-8") == render_json(report)
    compact = json.loads(render_json(report, indent=None))
    assert compact == json.loads(path.read_text()) and len(compact["events"]) == len(rich.events)
    assert json.loads(render_json(report, include_events=False))["events"] == []
