"""The runner isolates failures, runs in parallel and gives every artifact a status."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from backline.analyzers.base import Analyzer
from backline.analyzers.runner import RunSettings, run_all
from backline.model import Artifact, ArtifactKind, Event, EvidenceRef, Fact, Finding, RunStatus, Severity


class CountLines(Analyzer):
    name = "test.count"
    version = "1"
    consumes = frozenset({ArtifactKind.TEXT_LOG})

    def analyze(self, artifact, ctx):
        n = 0
        with open(artifact.local_path, "rb") as f:
            for n, line in enumerate(f, 1):
                if b"ERROR" in line:
                    yield Event(ts=datetime(2024, 1, 1, tzinfo=timezone.utc), artifact=artifact.path,
                                kind="log.error", summary=line.decode().strip(), severity=Severity.HIGH,
                                ref=EvidenceRef.line(artifact.path, n))
        yield Fact("lines", n, artifact.path)
        yield Finding("TEST.LINES", "lines counted", Severity.LOW, artifact.path, count=n)


class Explodes(Analyzer):
    name = "test.explodes"
    version = "2"
    consumes = frozenset({ArtifactKind.TEXT_LOG})

    def analyze(self, artifact, ctx):
        yield Fact("before", 1, artifact.path)
        raise ValueError(f"cannot parse {artifact.name}")


class DiesHard(Analyzer):
    name = "test.dies"
    version = "1"
    consumes = frozenset({ArtifactKind.DATA})

    def analyze(self, artifact, ctx):
        os._exit(3)           # a native crash kills the worker process outright
        yield  # pragma: no cover


def _art(tmp: Path, name: str, text: str, kind=ArtifactKind.TEXT_LOG) -> Artifact:
    p = tmp / name
    p.write_text(text)
    return Artifact(path=f"bundle.zip!/{name}", kind=kind, size=p.stat().st_size, sha256="0" * 64, local_path=p)


def test_failure_is_isolated_and_recorded(tmp_path):
    a = _art(tmp_path, "a.log", "ok\nERROR one\nERROR two\n")
    out = run_all([a], [CountLines, Explodes], RunSettings())
    by = {r.analyzer: r for r in out.runs}
    assert by["test.count"].status is RunStatus.OK
    assert by["test.count"].events == 2 and by["test.count"].findings == 1
    bad = by["test.explodes"]
    assert bad.status is RunStatus.FAILED
    assert "ValueError: cannot parse a.log" in bad.reason
    assert "Traceback" in bad.traceback and "raise ValueError" in bad.traceback
    assert bad.version == "2"
    # output yielded before the failure is kept
    assert any(f.name == "before" for f in out.facts)
    assert [e.ref.locator for e in out.events] == ["line:2", "line:3"]
    assert all(e.analyzer == "test.count" for e in out.events)


def test_every_artifact_gets_a_status(tmp_path):
    a = _art(tmp_path, "a.log", "x\n")
    doc = _art(tmp_path, "notes.md", "# hi\n", kind=ArtifactKind.DOCUMENT)
    broken = Artifact(path="empty.log", kind=ArtifactKind.TEXT_LOG, size=0, sha256="0" * 64,
                      local_path=None, problems=("zero-byte file",))
    out = run_all([a, doc, broken], [CountLines], RunSettings())
    status = {(r.artifact, r.analyzer): r for r in out.runs}
    assert status[("bundle.zip!/a.log", "test.count")].status is RunStatus.OK
    skipped_doc = status[("bundle.zip!/notes.md", "(none)")]
    assert skipped_doc.status is RunStatus.SKIPPED and "document" in skipped_doc.reason
    assert status[("empty.log", "intake")].reason == "zero-byte file"


def test_parallel_equals_serial(tmp_path):
    arts = [_art(tmp_path, f"f{i}.log", "ERROR x\n" * (i + 1)) for i in range(6)]
    serial = run_all(arts, [CountLines], RunSettings(), jobs=1)
    parallel = run_all(arts, [CountLines], RunSettings(), jobs=2)
    key = lambda r: (r.artifact, r.analyzer, r.status, r.events)  # noqa: E731
    assert sorted(map(key, serial.runs)) == sorted(map(key, parallel.runs))
    assert len(parallel.events) == sum(range(1, 7))


def test_worker_death_fails_only_that_task(tmp_path):
    arts = [_art(tmp_path, f"f{i}.log", "ERROR x\n") for i in range(3)]
    arts.append(_art(tmp_path, "poison.csv", "a,b\n", kind=ArtifactKind.DATA))
    progress = []
    out = run_all(arts, [CountLines, DiesHard], RunSettings(), jobs=2,
                  progress=lambda d, done, total: progress.append((done, total)))
    by = {(r.artifact, r.analyzer): r for r in out.runs}
    dead = by[("bundle.zip!/poison.csv", "test.dies")]
    assert dead.status is RunStatus.FAILED and "worker process died" in dead.reason
    assert all(by[(a.path, "test.count")].status is RunStatus.OK for a in arts[:3])
    assert progress[-1] == (4, 4)


def test_event_cap_is_counted(tmp_path):
    a = _art(tmp_path, "big.log", "ERROR\n" * 50)
    out = run_all([a], [CountLines], RunSettings(max_events=10))
    run = out.runs[0]
    assert len(out.events) == 10 and run.events == 50
    assert any("40 more events" in w for w in run.warnings)


class Spins(Analyzer):
    name = "test.spins"
    version = "1"
    consumes = frozenset({ArtifactKind.TEXT_LOG})

    def analyze(self, artifact, ctx):
        yield Fact("started", True, artifact.path)
        while True:                      # a parser stuck in a loop, swallowing errors as it goes
            try:
                sum(range(1000))
            except Exception:            # noqa: BLE001 - must not swallow the time limit
                pass


def test_time_limit_fails_only_the_stuck_task(tmp_path):
    a = _art(tmp_path, "a.log", "ERROR x\n")
    for jobs in (1, 2):
        out = run_all([a], [Spins, CountLines], RunSettings(timeout_s=0.5), jobs=jobs)
        by = {r.analyzer: r for r in out.runs}
        stuck = by["test.spins"]
        assert stuck.status is RunStatus.FAILED and "time limit of 0.5 s" in stuck.reason
        assert "while True" in stuck.traceback or "sum(range" in stuck.traceback   # where it was stuck
        assert by["test.count"].status is RunStatus.OK
        assert any(f.name == "started" for f in out.facts)
