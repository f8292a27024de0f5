"""The ``dumps.elfcore`` analyzer: a Linux core file as findings, events and facts."""

from __future__ import annotations

from typing import Iterator

from backline.analyzers.base import AnalysisContext, Analyzer, Output
from backline.analyzers.dumps.elfcore.analysis import load_core
from backline.analyzers.dumps.model import CrashReport
from backline.errors import FormatError
from backline.model import Artifact, ArtifactKind, Event, EvidenceRef, Fact, Finding, Severity, TsQuality


def crash_title(rep: CrashReport) -> str:
    e = rep.exception
    t = rep.crashed_thread
    where = ""
    if t is not None and rep.blamed_frame is not None and rep.blamed_frame < len(t.frames):
        where = " in " + t.frames[rep.blamed_frame].display()
    addr = f" at {e.address:#x}" if e and e.address is not None else ""
    return f"{rep.process_name or 'process'} crashed: {e.message if e else '?'}{addr}{where} ({rep.problem_class})"


class ElfCoreAnalyzer(Analyzer):
    """Linux ELF core files: crash reason, stacks of every thread, deadlocks."""

    name = "dumps.elfcore"
    version = "1"
    consumes = frozenset({ArtifactKind.ELF_CORE})
    emits = frozenset({"DUMP.CRASH", "DUMP.EXTERNAL_SIGNAL", "DUMP.DEADLOCK", "DUMP.HANG", "dump.signal", "dump.pid",
                       "dump.process", "dump.threads", "dump.signature", "dump.bucket_id",
                       "dump.problem_class", "dump.cpu"})
    description = "Reads ELF core files: threads, registers, signal, modules; unwinds with CFI."

    def analyze(self, artifact: Artifact, ctx: AnalysisContext) -> Iterator[Output]:
        assert artifact.local_path is not None
        try:
            rep = load_core(artifact.local_path, ctx.binary_paths, ctx.symbol_paths)
        except FormatError as exc:
            exc.artifact = artifact.path
            raise
        for w in rep.warnings:
            ctx.warn(w)
        a = artifact.path
        yield Fact("dump.cpu", rep.cpu, a, self.name)
        yield Fact("dump.threads", len(rep.threads), a, self.name)
        if rep.pid is not None:
            yield Fact("dump.pid", rep.pid, a, self.name)
        if rep.process_name:
            yield Fact("dump.process", rep.process_name, a, self.name)
        t = rep.crashed_thread
        if rep.exception is not None and t is not None:
            ti = rep.crashing_thread
            fi = rep.blamed_frame or 0
            refs = [EvidenceRef.frame(a, 0, ti, t.frames[0].display() if t.frames else None)]
            if fi:
                refs.append(EvidenceRef.frame(a, fi, ti, t.frames[fi].display()))
            title = crash_title(rep)
            external = rep.problem_class == "EXTERNAL_SIGNAL"
            if external:
                title = (f"{rep.process_name or 'process'} was sent {rep.exception.message} "
                         f"(a dump taken from outside, e.g. of a hung process)")
            yield Finding(code="DUMP.EXTERNAL_SIGNAL" if external else "DUMP.CRASH", title=title,
                          severity=Severity.HIGH if external else Severity.CRITICAL, artifact=a,
                          evidence=tuple(refs), detail=rep.bucket_id or "", analyzer=self.name,
                          data={"signal": rep.exception.type, "si_code": rep.exception.subcode,
                                "address": rep.exception.address, "thread": t.id,
                                "problem_class": rep.problem_class, "bucket_id": rep.bucket_id,
                                "signature": rep.signature, "frames": len(t.frames),
                                "instruction": (rep.extra.get("crash_instruction") or {}).get("text")})
            yield Event(ts=None, artifact=a, kind="dump.crash", summary=title,
                        severity=Severity.CRITICAL, ref=refs[0], ts_quality=TsQuality.NONE,
                        analyzer=self.name)
            yield Fact("dump.signal", rep.exception.type, a, self.name)
            if rep.signature:
                yield Fact("dump.signature", rep.signature, a, self.name)
            if rep.bucket_id:
                yield Fact("dump.bucket_id", rep.bucket_id, a, self.name)
            if rep.problem_class:
                yield Fact("dump.problem_class", rep.problem_class, a, self.name)
        index = {th.id: k for k, th in enumerate(rep.threads)}
        for d in rep.deadlocks:
            refs = tuple(EvidenceRef.frame(a, 0, index[tid], rep.threads[index[tid]].frames[0].display()
                                           if rep.threads[index[tid]].frames else None)
                         for tid in d.threads if tid in index)
            yield Finding(code="DUMP.DEADLOCK",
                          title=f"deadlock: threads {', '.join(map(str, d.threads))} wait for each other "
                                f"({', '.join(d.resources)})",
                          severity=Severity.CRITICAL, artifact=a, evidence=refs, analyzer=self.name,
                          data={"threads": list(d.threads), "resources": list(d.resources)})
        if rep.exception is None and not rep.deadlocks:
            waiting = [th for th in rep.threads if th.wait is not None]
            yield Finding(code="DUMP.HANG",
                          title=f"snapshot of a running process: {len(waiting)} of {len(rep.threads)} "
                                "threads blocked", severity=Severity.MEDIUM, artifact=a,
                          evidence=tuple(EvidenceRef.frame(a, 0, index[th.id]) for th in waiting[:10]),
                          analyzer=self.name,
                          data={"waits": {str(th.id): th.wait.resource for th in waiting}})
