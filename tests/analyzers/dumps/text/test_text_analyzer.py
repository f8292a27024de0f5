"""The ``dumps.text`` analyzer through the runner."""

from __future__ import annotations

import pytest

from backline.analyzers.dumps.text.analyzer import TextCrashAnalyzer
from backline.model import ArtifactKind, RunStatus
from backline.testing import run_analyzer


@pytest.mark.parametrize("name,kind,code", [
    ("gen/java_caused_by.txt", ArtifactKind.CRASH_TRACE, "DUMP.JAVA_EXCEPTION"),
    ("gen/py_traceback_explicit.txt", ArtifactKind.CRASH_TRACE, "DUMP.PYTHON_EXCEPTION"),
    ("gen/dotnet_mono_inner_exception.txt", ArtifactKind.CRASH_TRACE, "DUMP.DOTNET_EXCEPTION"),
    ("gen/java_deadlock_jstack.txt", ArtifactKind.CRASH_TRACE, "DUMP.DEADLOCK"),
    ("gen/py_faulthandler_hang.txt", ArtifactKind.CRASH_TRACE, "DUMP.HANG"),
    ("hs_err/krashpad_dataset41.txt", ArtifactKind.HS_ERR, "DUMP.JVM_FATAL"),
])
def test_findings(corpus, name, kind, code):
    res = run_analyzer(TextCrashAnalyzer, corpus / "dumps/text" / name, kind)
    assert res.run.status == RunStatus.OK, res.run.reason
    assert [f.code for f in res.findings] == [code]
    f = res.findings[0]
    assert f.evidence[0].locator.startswith("line:")
    assert code in TextCrashAnalyzer.emits and all(x.name in TextCrashAnalyzer.emits for x in res.facts)


def test_python_finding_names_root_cause(corpus):
    res = run_analyzer(TextCrashAnalyzer, corpus / "dumps/text/gen/py_traceback_explicit.txt",
                       ArtifactKind.CRASH_TRACE)
    f = res.findings[0]
    assert f.evidence[0].locator == "line:1"
    assert "JSONDecodeError" in f.title and f.data["causes"] == ["json.decoder.JSONDecodeError"]


def test_hs_err_facts(corpus):
    res = run_analyzer(TextCrashAnalyzer, corpus / "dumps/text/gen/java_hs_err_pid2267.log", ArtifactKind.HS_ERR)
    facts = {x.name: x.value for x in res.facts}
    assert facts["jvm.version"] == "17.0.15+6" and facts["dump.exception_type"] == "SIGSEGV"


@pytest.mark.parametrize("name,iso,exact", [
    ("hs_err/krashpad_dataset41.txt", "2020-10-13T21:05:20+00:00", True),      # EDT
    ("hs_err/krashpad_dataset77.txt", "2022-07-26T08:48:03+00:00", True),      # EEST
    ("hs_err/krashpad_dataset72.txt", "2022-02-21T09:42:45+00:00", True),      # "timezone: +08"
    ("gen/java_deadlock_jstack.txt", "2026-11-27T09:32:04+00:00", False),      # jstack: local time, --tz
])
def test_event_times(corpus, name, iso, exact):
    kind = ArtifactKind.HS_ERR if name.startswith("hs_err") else ArtifactKind.CRASH_TRACE
    res = run_analyzer(TextCrashAnalyzer, corpus / "dumps/text" / name, kind)
    [ev] = res.events
    assert ev.ts is not None and ev.ts.isoformat() == iso
    assert ev.ts_quality.value == ("exact" if exact else "inferred")
    assert res.findings[0].first_seen == ev.ts
