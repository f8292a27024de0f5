"""The dumps.minidump analyzer: findings, facts, event, evidence refs; registered."""

from __future__ import annotations

import hashlib
from pathlib import Path

from backline.analyzers.base import AnalysisContext
from backline.analyzers.dumps.minidump.analyzer import MinidumpAnalyzer
from backline.analyzers.registry import analyzer_by_name, builtin_analyzer_classes
from backline.model import Artifact, ArtifactKind, Event, Fact, Finding


def _artifact(path: Path, display: str | None = None) -> Artifact:
    data = path.read_bytes()
    return Artifact(display or path.name, ArtifactKind.MINIDUMP, len(data),
                    hashlib.sha256(data).hexdigest(), local_path=path)


def _run(path: Path, symbols=()):
    ctx = AnalysisContext(symbol_paths=tuple(symbols))
    out = list(MinidumpAnalyzer().analyze(_artifact(path, f"bundle.zip!/{path.name}"), ctx))
    return out, ctx


def test_registered():
    assert MinidumpAnalyzer in builtin_analyzer_classes()
    assert analyzer_by_name("dumps.minidump") is MinidumpAnalyzer
    assert MinidumpAnalyzer().applies_to(_artifact(Path(__file__)))


def test_crash_findings_facts_and_event(corpus):
    d = corpus / "dumps/breakpad"
    out, _ = _run(d / "minidump2.dmp", [d / "symbols"])
    findings = {f.code: f for f in out if isinstance(f, Finding)}
    facts = {f.name: f.value for f in out if isinstance(f, Fact)}
    events = [e for e in out if isinstance(e, Event)]
    crash = findings["DUMP.CRASH"]
    assert crash.data["problem_class"] == "NULL_POINTER_WRITE"
    assert crash.data["signature"] == "(anonymous namespace)::CrashFunction"
    assert crash.evidence[0].locator == "thread:0/frame:0"
    assert crash.evidence[0].artifact == "bundle.zip!/minidump2.dmp"
    assert "CrashFunction" in crash.evidence[0].excerpt
    assert "DUMP.NULL_WRITE" in findings
    assert facts["dump.os"] == "Windows NT" and facts["dump.cpu"] == "x86"
    assert facts["dump.crash_reason"] == "EXCEPTION_ACCESS_VIOLATION_WRITE"
    assert facts["dump.crash_address"] == "0x45" and facts["dump.modules_count"] == 13
    assert facts["dump.bucket_id"].startswith("NULL_POINTER_WRITE_c0000005_test_app.exe!")
    assert facts["dump.pid"] == 3932
    assert len(events) == 1 and events[0].kind == "dump.crash"
    assert events[0].ts is not None and events[0].ts.tzinfo is not None
    assert all(o.analyzer == "dumps.minidump" for o in out)


def test_unreadable_dump_is_a_finding(corpus):
    out, _ = _run(corpus / "dumps/rust-minidump/invalid-range.dmp")
    assert [f.code for f in out if isinstance(f, Finding)] == ["DUMP.UNREADABLE"]
    assert out[0].evidence[0].locator == "stream:0"


def test_no_exception_dump_has_no_crash_finding(corpus):
    out, _ = _run(corpus / "dumps/breakpad/tiny-exe-with-cet-xsave.dmp")
    codes = {f.code for f in out if isinstance(f, Finding)}
    assert "DUMP.CRASH" not in codes
    assert any(isinstance(e, Event) and e.kind == "dump.written" for e in out)


def test_truncated_dump_is_incomplete(corpus, tmp_path):
    data = (corpus / "dumps/breakpad/minidump2.dmp").read_bytes()
    p = tmp_path / "cut.dmp"
    p.write_bytes(data[:5000])
    out, ctx = _run(p)
    codes = {f.code for f in out if isinstance(f, Finding)}
    assert {"DUMP.CRASH", "DUMP.INCOMPLETE"} <= codes
    assert ctx.warnings


def test_through_backline_analyze(corpus):
    """The analyzer runs inside ``backline analyze`` (intake classifies the dump, the runner runs it)."""
    import json

    from typer.testing import CliRunner

    from backline.cli import app

    d = corpus / "dumps/breakpad"
    r = CliRunner().invoke(app, ["analyze", str(d / "minidump2.dmp"), "--symbols", str(d / "symbols"),
                                 "--format", "json", "--jobs", "1"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    crash = next(f for f in doc["findings"] if f["code"] == "DUMP.CRASH")
    assert crash["data"]["bucket_id"].startswith("NULL_POINTER_WRITE_c0000005_test_app.exe!")
    assert any(f["name"] == "dump.signature" and f["value"] == "(anonymous namespace)::CrashFunction"
               for f in doc["facts"])
