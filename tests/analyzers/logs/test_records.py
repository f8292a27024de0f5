"""Records: continuation lines grouped with their head line; stack traces recognised."""

from __future__ import annotations

import pytest

from backline.analyzers.logs.reader import open_log
from backline.analyzers.logs.records import read_records, stack_trace_kind
from backline.model import Severity

TRACES = {
    "java": "java_caused_by.txt",
    "python": "py_traceback_explicit.txt",
    "dotnet": "dotnet_mono_inner_exception.txt",
}


@pytest.mark.parametrize("kind,name", sorted(TRACES.items()))
def test_stack_trace_kinds_on_real_traces(corpus, kind, name):
    text = (corpus / "dumps" / "text" / "gen" / name).read_text(encoding="utf-8", errors="replace")
    assert stack_trace_kind(text) == kind


def test_one_line_message_is_no_trace():
    assert stack_trace_kind("java.lang.NullPointerException at line 3") == ""


@pytest.mark.parametrize("name", ["java_caused_by.txt", "py_traceback_explicit.txt"])
def test_trace_inside_a_log_is_one_record(corpus, tmp_path, name):
    trace = (corpus / "dumps" / "text" / "gen" / name).read_text(encoding="utf-8").strip("\n")
    n = trace.count("\n") + 1
    p = tmp_path / "app.log"
    p.write_text("2024-01-02 03:04:05,000 INFO [main] app.Main: starting\n"
                 "2024-01-02 03:04:06,000 ERROR [main] app.Main: request failed\n"
                 + trace + "\n"
                 "2024-01-02 03:04:07,000 INFO [main] app.Main: still here\n", encoding="utf-8")
    recs = list(read_records(open_log(p)))
    assert [(r.line, r.end_line) for r in recs] == [(1, 1), (2, 2 + n), (3 + n, 3 + n)]
    assert recs[1].severity is Severity.HIGH and recs[1].message == "request failed"
    assert stack_trace_kind(recs[1].text) in ("java", "python")


def test_plain_log_groups_indented_continuations(tmp_path):
    p = tmp_path / "plain.log"
    p.write_text("starting up\nTraceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
                 "ValueError: bad\nnext message\n", encoding="utf-8")
    recs = list(read_records(open_log(p)))
    assert [(r.line, r.end_line) for r in recs] == [(1, 4), (5, 5)]


def test_lines_without_header_but_with_own_timestamp_start_records(tmp_path):
    p = tmp_path / "mixed.log"
    p.write_text("".join(f"2024-01-02 03:04:0{i},000 INFO [t] c.D: m{i}\n" for i in range(5))
                 + "2024-01-02 03:04:09 something else entirely\n", encoding="utf-8")
    recs = list(read_records(open_log(p)))
    assert len(recs) == 6 and recs[-1].line == 6


def test_record_text_is_capped(tmp_path):
    p = tmp_path / "big.log"
    p.write_text("2024-01-02 03:04:05,000 ERROR [t] c.D: boom\n" + "\tat x.y(Z.java:1)\n" * 20000
                 + "2024-01-02 03:04:06,000 INFO [t] c.D: after\n", encoding="utf-8")
    recs = list(read_records(open_log(p)))
    assert len(recs) == 2 and recs[0].end_line == 20001
    assert len(recs[0].text) <= 64 * 1024
