"""The diagnosis as a stage of the analysis: on by default, off on request, never fatal."""

from __future__ import annotations

from backline import pipeline
from backline.model import RunStatus
from backline.pipeline import AnalyzeOptions, analyze

LOG = ("2024-05-01 14:02:00,100 INFO app started\n"
       "2024-05-01 14:02:01,200 ERROR connect to 10.1.2.3:6432 failed: [Errno 111] Connection refused\n"
       "2024-05-01 14:02:02,300 ERROR connect to 10.1.2.3:6432 failed: [Errno 111] Connection refused\n"
       "2024-05-01 14:02:03,400 ERROR giving up, shutting down\n")


def _bundle(tmp_path):
    p = tmp_path / "app.log"
    p.write_text(LOG)
    return [p]


def test_on_by_default_off_on_request(tmp_path):
    on = analyze(_bundle(tmp_path), AnalyzeOptions(jobs=1))
    assert on.diagnosis is not None and on.diagnosis.causes
    top = on.diagnosis.top
    assert top.signal == "conn_refused_log" and "10.1.2.3:6432" in top.title
    assert on.findings[0] is on.findings[top.finding] and top.finding == 0
    off = analyze(_bundle(tmp_path), AnalyzeOptions(jobs=1, diagnose=False))
    assert off.diagnosis is None
    assert not [r for r in off.runs if r.analyzer == "knowledge.diagnosis"]


def test_a_failing_diagnosis_is_a_failed_run_and_the_analysis_stands(tmp_path, monkeypatch):
    def broken(*a, **k):
        raise ValueError("boom")

    monkeypatch.setattr(pipeline, "diagnose", broken)
    r = analyze(_bundle(tmp_path), AnalyzeOptions(jobs=1))
    assert r.diagnosis is None and r.findings
    (run,) = [x for x in r.runs if x.analyzer == "knowledge.diagnosis"]
    assert run.status is RunStatus.FAILED and "ValueError: boom" in run.reason and "broken" in run.traceback
