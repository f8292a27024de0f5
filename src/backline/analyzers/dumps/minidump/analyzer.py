"""The ``dumps.minidump`` analyzer: a minidump artifact in, findings, facts and the crash event out.

Findings (codes are stable):

* ``DUMP.CRASH`` - the crash, with ``problem_class``, reason, address, signature, bucket id
  and blamed frame in ``data``; plus one specific code per problem class
  (``DUMP.NULL_READ``, ``DUMP.NULL_WRITE``, ``DUMP.NULL_EXECUTE``, ``DUMP.INVALID_READ``,
  ``DUMP.INVALID_WRITE``, ``DUMP.EXECUTE_NON_CODE``, ``DUMP.STACK_OVERFLOW``,
  ``DUMP.STACK_BUFFER_OVERRUN``, ``DUMP.HEAP_CORRUPTION``, ``DUMP.ABORT``,
  ``DUMP.DIVIDE_BY_ZERO``, ``DUMP.ILLEGAL_INSTRUCTION``, ``DUMP.BREAKPOINT``, ``DUMP.CPP_EXCEPTION``)
* ``DUMP.DEADLOCK`` - a cycle in the wait-for graph; ``DUMP.HANG`` - no exception, threads waiting
* ``DUMP.INCOMPLETE`` - parts of the dump could not be read (what is missing is in ``detail``)
* ``DUMP.UNREADABLE`` - the file is not a valid minidump (the error names the place)
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Iterator

from backline.analyzers.base import AnalysisContext, Analyzer, Output
from backline.analyzers.dumps.analysis import analyze_crash
from backline.analyzers.dumps.minidump.process import read_dump, report_from_minidump
from backline.analyzers.dumps.model import CrashReport
from backline.analyzers.dumps.symbols import shared_store
from backline.errors import BacklineError
from backline.model import Artifact, ArtifactKind, EvidenceRef, Event, Fact, Finding, Severity

SPECIFIC = {
    "NULL_POINTER_READ": "DUMP.NULL_READ", "NULL_POINTER_WRITE": "DUMP.NULL_WRITE",
    "NULL_POINTER_EXECUTE": "DUMP.NULL_EXECUTE", "INVALID_POINTER_READ": "DUMP.INVALID_READ",
    "INVALID_POINTER_WRITE": "DUMP.INVALID_WRITE", "EXECUTE_NON_CODE": "DUMP.EXECUTE_NON_CODE",
    "STACK_OVERFLOW": "DUMP.STACK_OVERFLOW", "STACK_BUFFER_OVERRUN": "DUMP.STACK_BUFFER_OVERRUN",
    "HEAP_CORRUPTION": "DUMP.HEAP_CORRUPTION", "ABORT": "DUMP.ABORT",
    "DIVIDE_BY_ZERO": "DUMP.DIVIDE_BY_ZERO", "ILLEGAL_INSTRUCTION": "DUMP.ILLEGAL_INSTRUCTION",
    "BREAKPOINT": "DUMP.BREAKPOINT", "CPP_EXCEPTION": "DUMP.CPP_EXCEPTION",
}
FACTS = ("dump.os", "dump.os_version", "dump.cpu", "dump.process", "dump.pid", "dump.crash_reason",
         "dump.crash_address", "dump.problem_class", "dump.signature", "dump.bucket_id",
         "dump.modules_count", "dump.threads_count", "dump.crash_time")


def crash_outputs(report: CrashReport, artifact: str, analyzer: str) -> Iterator[Output]:
    """Findings, facts and the crash event of an analysed report (shared by dump readers)."""
    th = report.crashed_thread
    ti = report.crashing_thread
    exc = report.exception
    refs: list[EvidenceRef] = []
    if th is not None and th.frames:
        idxs = [0] + ([report.blamed_frame] if report.blamed_frame not in (None, 0) else [])
        for fi in idxs:
            if fi is not None and fi < len(th.frames):
                refs.append(EvidenceRef.frame(artifact, fi, ti, th.frames[fi].display()))
    crash_time = (report.extra or {}).get("crash_time")
    ts = datetime.fromisoformat(crash_time) if crash_time else None
    blamed = th.frames[report.blamed_frame].display() if (th and report.blamed_frame is not None
                                                           and report.blamed_frame < len(th.frames)) else None
    facts = {
        "dump.os": report.os, "dump.os_version": report.os_version, "dump.cpu": report.cpu,
        "dump.process": report.process_name, "dump.pid": report.pid,
        "dump.crash_reason": exc.type if exc else None,
        "dump.crash_address": f"{exc.address:#x}" if exc and exc.address is not None else None,
        "dump.problem_class": report.problem_class, "dump.signature": report.signature,
        "dump.bucket_id": report.bucket_id,
        "dump.modules_count": sum(1 for m in report.modules if not m.unloaded),
        "dump.threads_count": len(report.threads), "dump.crash_time": crash_time,
    }
    for name, value in facts.items():
        if value is not None:
            yield Fact(name, value, artifact, analyzer)
    if exc is not None:
        title = f"{exc.type} at {exc.address:#x}" if exc.address is not None else exc.type
        if blamed:
            title += f" in {blamed}"
        data = {"problem_class": report.problem_class, "reason": exc.type,
                "address": exc.address, "code": exc.code, "signature": report.signature,
                "bucket_id": report.bucket_id, "blamed_frame": blamed, "thread": exc.thread,
                "crashing_instruction": (report.extra or {}).get("crashing_instruction")}
        yield Finding("DUMP.CRASH", f"Crash: {title}", Severity.CRITICAL, artifact, tuple(refs),
                      detail=f"problem class {report.problem_class}; signature {report.signature}",
                      first_seen=ts, last_seen=ts, analyzer=analyzer, data=data)
        code = SPECIFIC.get(report.problem_class or "")
        if code:
            yield Finding(code, f"{report.problem_class.replace('_', ' ').lower()}: {title}",
                          Severity.HIGH, artifact, tuple(refs), first_seen=ts, last_seen=ts,
                          analyzer=analyzer, data=data)
        yield Event(ts, artifact, "dump.crash", f"crash {exc.type} ({report.signature})",
                    Severity.CRITICAL, refs[0] if refs else None, analyzer=analyzer)
    elif ts is not None:
        yield Event(ts, artifact, "dump.written", "dump written (no exception)", Severity.INFO,
                    EvidenceRef(artifact, "header"), analyzer=analyzer)
    for d in report.deadlocks:
        tidx = {t.id: i for i, t in enumerate(report.threads)}
        ev = tuple(EvidenceRef.frame(artifact, 0, tidx.get(t), f"thread {t} waits on {r}")
                   for t, r in zip(d.threads, d.resources))
        yield Finding("DUMP.DEADLOCK", f"Deadlock: threads {', '.join(map(str, d.threads))}",
                      Severity.CRITICAL, artifact, ev, analyzer=analyzer,
                      detail="; ".join(f"thread {t} waits for {r}" for t, r in zip(d.threads, d.resources)),
                      data={"threads": list(d.threads), "resources": list(d.resources)})
    waiting = [t for t in report.threads if t.wait is not None]
    if exc is None and waiting:
        ev = tuple(EvidenceRef.frame(artifact, 0, i, f"{t.wait.kind} in {t.wait.function}")
                   for i, t in enumerate(report.threads) if t.wait is not None)[:50]
        yield Finding("DUMP.HANG", f"Hang dump: {len(waiting)} of {len(report.threads)} threads waiting",
                      Severity.HIGH, artifact, ev, analyzer=analyzer, count=len(waiting),
                      data={"waiting": [{"thread": t.id, "kind": t.wait.kind, "resource": t.wait.resource,
                                         "function": t.wait.function} for t in waiting]})
    if report.warnings:
        yield Finding("DUMP.INCOMPLETE", f"Dump partly unreadable ({len(report.warnings)} problems)",
                      Severity.LOW, artifact, (EvidenceRef(artifact, "streams"),),
                      detail="; ".join(report.warnings[:20]), analyzer=analyzer,
                      count=len(report.warnings))


class MinidumpAnalyzer(Analyzer):
    """Windows, Breakpad and Crashpad minidumps: stacks, crash reason and the automatic analysis."""

    name = "dumps.minidump"
    version = "1"
    consumes = frozenset({ArtifactKind.MINIDUMP, ArtifactKind.CRASH_TRACE})
    emits = frozenset({"DUMP.CRASH", "DUMP.DEADLOCK", "DUMP.HANG", "DUMP.INCOMPLETE",
                       "DUMP.UNREADABLE", *SPECIFIC.values(), *FACTS})
    description = "Minidump stack walking (CFI, frame pointer, scan), symbols, !analyze-style analysis"

    def applies_to(self, artifact: Artifact) -> bool:
        # Breakpad microdumps are text (intake calls them crash traces) but walk like minidumps.
        return artifact.readable and (artifact.kind is ArtifactKind.MINIDUMP or (
            artifact.kind is ArtifactKind.CRASH_TRACE and artifact.format == "microdump"))

    def analyze(self, artifact: Artifact, ctx: AnalysisContext) -> Iterator[Output]:
        path = Path(artifact.local_path) if artifact.local_path else None
        if path is None:
            return
        try:
            md = read_dump(path, artifact.path)   # reads minidumps and microdumps
        except (BacklineError, OSError) as exc:
            yield Finding("DUMP.UNREADABLE", f"Minidump unreadable: {exc}", Severity.MEDIUM,
                          artifact.path, (EvidenceRef(artifact.path, getattr(exc, "locator", None) or "file"),),
                          analyzer=self.name, data={"error": str(exc)})
            return
        # executables that came with the evidence (or --binaries) give PE unwind info and exports
        report = report_from_minidump(md, shared_store(ctx.symbol_paths),
                                      binary_paths=[Path(p) for p in ctx.binary_paths])
        report = analyze_crash(report, lambda a, n: md.memory.read_ptr(a, n))
        for w in report.warnings[:100]:
            ctx.warn(w)
        yield from crash_outputs(report, artifact.path, self.name)
