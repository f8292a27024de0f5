"""AnalysisResults built in the tests: renderer tests need controlled inputs
(empty results, hostile strings, many events, failed runs)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

from backline.model import (
    AnalysisResult,
    AnalyzerRun,
    Artifact,
    ArtifactKind,
    Event,
    EvidenceRef,
    Fact,
    Finding,
    Refusal,
    RunStatus,
    Severity,
    TsQuality,
)

T0 = datetime(2024, 3, 14, 9, 26, 53, tzinfo=timezone.utc)
HOSTILE = '<script>alert("x")</script> | `tick` [bold red]markup[/] \x1b[31mansi\x1b[0m & <img src=https://evil.example/p.png>'


def fixed_clock() -> datetime:
    return datetime(2024, 3, 15, 8, 0, 0, tzinfo=timezone.utc)


def art(path: str, kind: ArtifactKind = ArtifactKind.TEXT_LOG, *, readable: bool = True,
        **kw) -> Artifact:
    return Artifact(path=path, kind=kind, size=kw.pop("size", 1234),
                    sha256=kw.pop("sha256", "ab" * 32),
                    local_path=Path("/tmp/x") if readable else None, **kw)


def run(analyzer: str, artifact: str, status: RunStatus = RunStatus.OK, **kw) -> AnalyzerRun:
    return AnalyzerRun(analyzer=analyzer, version="1", artifact=artifact, status=status, **kw)


def empty_result() -> AnalysisResult:
    return AnalysisResult(inputs=(), artifacts=(), runs=(), findings=(), events=(), facts=())


def rich_result() -> AnalysisResult:
    """A realistic result: several artifacts, every severity, a failed run,
    an unreadable artifact, refusals, facts of awkward types."""
    app = "bundle.zip!/logs/app.log"
    cap = "bundle.zip!/net/trace.pcapng"
    dmp = "bundle.zip!/dumps/svc.dmp"
    bad = "bundle.zip!/logs/empty.log"
    artifacts = (
        art(app, time_start=T0, time_end=T0 + timedelta(hours=2), format="log4j"),
        art(cap, ArtifactKind.CAPTURE, format="pcapng", size=10_485_760),
        art(dmp, ArtifactKind.MINIDUMP, compression="gzip"),
        art(bad, readable=False, problems=("zero-byte file",), size=0),
    )
    runs = (
        run("logs.text", app, events=40, findings=3),
        run("net.tcp", cap, duration_s=1.5, findings=1),
        run("dumps.minidump", dmp, RunStatus.FAILED, reason="FormatError: stream 7 beyond file",
            traceback="Traceback (most recent call last):\n  File \"x.py\", line 1\nFormatError"),
        run("logs.text", bad, RunStatus.SKIPPED, reason="unreadable"),
    )
    findings = (
        Finding("LOG.ERROR_BURST", "Burst of 40 errors in 2 minutes", Severity.HIGH, app,
                (EvidenceRef.line(app, 1201, "2024-03-14 09:30:01 ERROR pool exhausted"),
                 EvidenceRef.line(app, 1250, "2024-03-14 09:31:07 ERROR pool exhausted")),
                detail="Connection pool exhausted repeatedly.", count=40,
                first_seen=T0 + timedelta(minutes=3), last_seen=T0 + timedelta(minutes=5),
                analyzer="logs.text", data={"template": "ERROR pool <*>", "ratio": 0.25}),
        Finding("NET.TCP.RST_TO_SYN", "Connection refused by 10.0.0.5:443", Severity.CRITICAL, cap,
                (EvidenceRef.packet(cap, 5531, "10.0.0.5:443 -> 10.0.0.9:51234 [RST, ACK]"),),
                count=12, first_seen=T0 + timedelta(minutes=4), analyzer="net.tcp"),
        Finding("LOG.DEPRECATION", "Deprecated API used", Severity.LOW, app, count=3,
                analyzer="logs.text"),
        Finding("LOG.SLOW_START", "Slow start-up", Severity.MEDIUM, app,
                (EvidenceRef.line(app, 3, "startup took 93 s"),), analyzer="logs.text"),
        Finding("CASE.CORRELATED", "Errors follow the resets", Severity.INFO, "",
                analyzer="knowledge.timeline"),
    )
    events = [
        Event(T0 + timedelta(seconds=7 * i), app, "log.error" if i % 5 == 0 else "log.info",
              f"line {i}", Severity.HIGH if i % 5 == 0 else Severity.INFO,
              EvidenceRef.line(app, i + 1), analyzer="logs.text")
        for i in range(40)
    ]
    events += [
        Event(T0 + timedelta(minutes=4, seconds=i), cap, "net.rst", "RST", Severity.CRITICAL,
              EvidenceRef.packet(cap, 5531 + i), analyzer="net.tcp")
        for i in range(12)
    ]
    events.append(Event(None, app, "log.info", "no timestamp", ts_quality=TsQuality.NONE))
    events.append(Event(T0 + timedelta(hours=1), dmp, "dump.crash", "crash", Severity.CRITICAL,
                        EvidenceRef.frame(dmp, 0, thread=3), ts_quality=TsQuality.INFERRED))
    facts = (
        Fact("os.version", "Windows Server 2019", dmp, "dumps.minidump"),
        Fact("net.packets", 20811, cap, "net.tcp"),
        Fact("net.rtt_ms", float("nan"), cap, "net.tcp"),
        Fact("log.span", {"start": T0, "end": T0 + timedelta(hours=2)}, app, "logs.text"),
        Fact("log.levels", frozenset({"ERROR", "INFO"}), app, "logs.text"),
        Fact("raw.magic", b"MDMP", dmp, "dumps.minidump"),
    )
    refusals = (
        Refusal("bundle.zip!/../etc/passwd", "path escapes the work folder"),
        Refusal("bundle.zip!/bomb.zip", "compression ratio 1:2000 exceeds limit"),
    )
    return AnalysisResult(
        inputs=("/cases/4711/bundle.zip",), artifacts=artifacts, runs=runs, findings=findings,
        events=tuple(events), facts=facts, refusals=refusals,
        started_at=T0 + timedelta(days=1), finished_at=T0 + timedelta(days=1, seconds=4.2),
        options={"tz": "UTC", "jobs": 2, "symbols": [Path("/syms")]}, backline_version="0.1.0",
    )


def hostile_result() -> AnalysisResult:
    """Every string a customer file can influence carries markup."""
    path = f"bundle.zip!/{HOSTILE}.log"
    return AnalysisResult(
        inputs=(HOSTILE,),
        artifacts=(art(path, problems=(HOSTILE,), format=HOSTILE),),
        runs=(run("logs.text", path, RunStatus.FAILED, reason=HOSTILE, traceback=HOSTILE),),
        findings=(Finding("LOG.X", HOSTILE, Severity.CRITICAL, path,
                          (EvidenceRef(path, f"line:1 {HOSTILE}", HOSTILE + "\n" + "```" + "\n|x|"),),
                          detail=HOSTILE, data={HOSTILE: HOSTILE}),),
        events=(Event(T0, path, HOSTILE, HOSTILE, Severity.HIGH, EvidenceRef.line(path, 1, HOSTILE)),),
        facts=(Fact(HOSTILE, HOSTILE, path),),
        refusals=(Refusal(HOSTILE, HOSTILE),),
        options={HOSTILE: HOSTILE},
    )


def many_events_result(n: int = 100_000, artifacts: int = 40, seed: int = 7) -> AnalysisResult:
    rng = random.Random(seed)
    paths = [f"bundle/logs/node{i:02d}.log" for i in range(artifacts)]
    sevs = list(Severity)
    weights = [80, 10, 6, 3, 1]
    events = tuple(
        Event(None if rng.random() < 0.01 else T0 + timedelta(seconds=rng.uniform(0, 86400)),
              rng.choice(paths), "log.line", "x", rng.choices(sevs, weights)[0])
        for _ in range(n)
    )
    return AnalysisResult(inputs=("bundle",), artifacts=tuple(art(p) for p in paths),
                          runs=tuple(run("logs.text", p) for p in paths), findings=(),
                          events=events, facts=())
