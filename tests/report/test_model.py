from __future__ import annotations

import doctest
from datetime import timedelta

import pytest

import backline.report.html
import backline.report.json_report
import backline.report.markdown
import backline.report.model
import backline.report.svg
import backline.report.text
import backline.report.timeline
import backline.report.write
from backline.model import SCHEMA_VERSION, AnalysisResult, Finding, RunStatus, Severity
from backline.report import build_report
from backline.report.model import section_status

from .samples import T0, art, fixed_clock, run


@pytest.mark.parametrize("module", [
    backline.report.model, backline.report.timeline, backline.report.json_report,
    backline.report.text, backline.report.markdown, backline.report.svg, backline.report.html,
    backline.report.write,
])
def test_docstring_examples(module):
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0


def test_findings_sorted_by_severity_then_count(rich):
    report = build_report(rich, now=fixed_clock)
    keys = [(int(f.severity), f.count) for f in report.findings]
    assert keys == sorted(keys, key=lambda k: (-k[0], -k[1]))
    assert report.findings[0].code == "NET.TCP.RST_TO_SYN"
    assert report.findings[-1].severity is Severity.INFO


def test_summary_counts(rich):
    s = build_report(rich, now=fixed_clock).summary
    assert s.artifacts == 4
    assert s.artifacts_by_kind == {"text_log": 2, "capture": 1, "minidump": 1}
    assert list(s.findings_by_severity) == ["critical", "high", "medium", "low", "info"]
    assert s.findings_by_severity == {"critical": 1, "high": 1, "medium": 1, "low": 1, "info": 1}
    assert s.occurrences == 12 + 40 + 3 + 1 + 1
    assert s.runs_by_status == {"ok": 2, "failed": 1, "skipped": 1}
    assert s.events == len(rich.events) and s.undated_events == 1
    assert s.refusals == 2 and s.facts == 6 and s.unreadable_artifacts == 1
    assert s.highest_severity is Severity.CRITICAL
    assert s.duration_s == pytest.approx(4.2)
    # the span covers events, artifact ranges and finding times
    assert s.time_start == T0 and s.time_end == T0 + timedelta(hours=2)
    assert s.headline() == "1 critical, 1 high, 1 medium, 1 low, 1 info findings in 4 artifacts"


def test_sections_group_by_artifact_and_keep_order(rich):
    report = build_report(rich, now=fixed_clock)
    paths = [a.path for a in report.artifacts]
    assert paths[:4] == [a.path for a in rich.artifacts]
    # the case-wide finding (artifact "") gets its own section, after the artifacts
    assert paths[4] == "" and report.artifacts[4].artifact is None
    app = report.artifacts[0]
    assert [f.code for f in app.findings] == ["LOG.ERROR_BURST", "LOG.SLOW_START", "LOG.DEPRECATION"]
    assert app.events == 41 and app.status == "analyzed" and len(app.facts) == 2
    assert [a.status for a in report.artifacts[:4]] == ["analyzed", "analyzed", "failed", "unreadable"]
    assert len({a.anchor for a in report.artifacts}) == len(report.artifacts)
    assert [r.analyzer for r in report.failed_runs] == ["dumps.minidump"]


def test_events_sorted_undated_last(rich):
    events = build_report(rich, now=fixed_clock).events
    dated = [e.ts for e in events if e.ts is not None]
    assert dated == sorted(dated)
    assert events[-1].ts is None


def test_empty_result(empty):
    report = build_report(empty, now=fixed_clock)
    assert report.summary.headline() == "No findings in 0 artifacts"
    assert report.summary.time_start is None and report.summary.highest_severity is None
    assert report.findings == () and report.artifacts == () and report.timeline.empty
    assert report.schema_version == SCHEMA_VERSION
    assert report.generated_at == fixed_clock()


def test_generated_at_is_aware_utc(empty):
    report = build_report(empty)
    assert report.generated_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize("statuses, expected", [
    ((), "not analyzed"),
    ((RunStatus.OK,), "analyzed"),
    ((RunStatus.OK, RunStatus.FAILED), "partial"),
    ((RunStatus.FAILED, RunStatus.SKIPPED), "failed"),
    ((RunStatus.SKIPPED,), "skipped"),
])
def test_section_status(statuses, expected):
    runs = tuple(run(f"a{i}", "x", st) for i, st in enumerate(statuses))
    assert section_status(art("x"), runs) == expected
    assert section_status(art("x", readable=False), runs) == "unreadable"


def test_singular_headline():
    result = AnalysisResult(("x",), (art("x"),), (), (Finding("A", "a", Severity.HIGH, "x"),), (), ())
    assert build_report(result).summary.headline() == "1 high finding in 1 artifact"


def test_headline_says_when_not_everything_was_analysed():
    arts = (art("a.log"), art("b.log"), art("c.log"))
    runs = (run("x", "a.log"), run("x", "b.log", RunStatus.SKIPPED), run("y", "c.log", RunStatus.FAILED))
    s = build_report(AnalysisResult((), arts, runs, (), (), ())).summary
    assert s.analyzed_artifacts == 1
    assert s.headline() == "No findings in 3 artifacts (1 analysed)"
