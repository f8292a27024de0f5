"""The ``dumps.text`` analyzer: crash traces and JVM fatal error logs as findings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Iterator

from backline.analyzers.base import AnalysisContext, Analyzer, Output
from backline.analyzers.dumps.model import CrashReport
from backline.analyzers.dumps.text import parse_text_crash
from backline.analyzers.dumps.text.common import parse_text_time
from backline.model import Artifact, ArtifactKind, Event, EvidenceRef, Fact, Finding, Severity, TsQuality

CODES = {
    "python": "DUMP.PYTHON_EXCEPTION",
    "java": "DUMP.JAVA_EXCEPTION",
    "dotnet": "DUMP.DOTNET_EXCEPTION",
    "hs_err": "DUMP.JVM_FATAL",
}


def finding_code(rep: CrashReport) -> str:
    """The stable finding code for one text report."""
    if rep.deadlocks:
        return "DUMP.DEADLOCK"
    if rep.source_format == "faulthandler":
        return "DUMP.PYTHON_FATAL" if rep.exception else "DUMP.HANG"
    if rep.source_format == "jstack":
        return "DUMP.HANG"
    return CODES.get(rep.source_format, "DUMP.CRASH")


def describe(rep: CrashReport) -> str:
    e = rep.exception
    if rep.deadlocks:
        names = {t.id: t.name or str(t.id) for t in rep.threads}
        d = rep.deadlocks[0]
        return "deadlock between " + " and ".join(str(names.get(t, t)) for t in d.threads)
    if e is None:
        return f"{rep.source_format} thread dump of {len(rep.threads)} threads"
    root = [c for c in e.causes if c.relation in ("cause", "inner", "context")]
    text = f"{e.type}: {_one_line(e.message)}" if e.message else e.type
    if root:
        text += f" (root cause {root[-1].type}: {_one_line(root[-1].message)})"
    return text[:500]


def crash_severity(code: str) -> Severity:
    """Severity of a crash finding with ``code`` (fatal errors, deadlocks: critical)."""
    return Severity.CRITICAL if code in ("DUMP.JVM_FATAL", "DUMP.PYTHON_FATAL", "DUMP.DEADLOCK") \
        else Severity.HIGH


def _one_line(message: str) -> str:
    """A multi-line exception message on one line (`` / `` between its lines; caret lines,
    which point into a quoted source line, left out)."""
    return " / ".join(x.strip() for x in message.splitlines() if x.strip() and not set(x.strip()) <= {"^", "~"})


def crash_finding(rep: CrashReport, artifact: str, lines: Sequence[int], analyzer: str, *,
                  count: int = 1, first_seen: datetime | None = None,
                  last_seen: datetime | None = None, extra: Mapping[str, Any] | None = None) -> Finding:
    """The crash :class:`Finding` for one text report (or ``count`` reports of one signature).

    ``lines`` are the 1-based lines in ``artifact`` where the trace (or its
    occurrences) start; each becomes a ``line:N`` reference whose excerpt is
    ``type: message``.  ``extra`` is merged into ``data``.  Used by this
    analyzer and by ``logs.text`` for traces found inside logs.
    """
    e = rep.exception
    excerpt = (f"{e.type}: {e.message}" if e else None)
    refs = tuple(EvidenceRef.line(artifact, n, excerpt) for n in lines)
    code = finding_code(rep)
    data: dict[str, Any] = {"format": rep.source_format, "signature": rep.signature,
                            "problem_class": rep.problem_class,
                            "exception_type": e.type if e else None,
                            "causes": [c.type for c in e.causes] if e else [],
                            "threads": len(rep.threads),
                            "deadlocks": [[str(t) for t in d.threads] for d in rep.deadlocks]}
    if rep.source_format == "hs_err":
        data.update({k: rep.extra.get(k) for k in ("problematic_frame", "jre_version",
                                                   "error_location", "detail")})
    if extra:
        data.update(extra)
    return Finding(code=code, title=describe(rep), severity=crash_severity(code), artifact=artifact,
                   evidence=refs, detail=rep.signature or "", count=count, analyzer=analyzer,
                   data=data, first_seen=first_seen, last_seen=last_seen)


#: Lines referenced per grouped finding (the first occurrences and the last), and
#: timeline events kept per trace signature.
MAX_REFS = 5
MAX_EVENTS_PER_TRACE = 200


class TextCrashAnalyzer(Analyzer):
    """Python/Java/.NET traces, faulthandler and jstack dumps, JVM hs_err logs."""

    name = "dumps.text"
    version = "1"
    consumes = frozenset({ArtifactKind.CRASH_TRACE, ArtifactKind.HS_ERR})
    emits = frozenset({"DUMP.PYTHON_EXCEPTION", "DUMP.JAVA_EXCEPTION", "DUMP.DOTNET_EXCEPTION",
                       "DUMP.JVM_FATAL", "DUMP.PYTHON_FATAL", "DUMP.DEADLOCK", "DUMP.HANG",
                       "dump.signature", "dump.exception_type", "dump.format", "jvm.version",
                       "dump.problem_class"})
    description = "Parses text crash artifacts into the crash model and reports each trace."

    def applies_to(self, artifact: Artifact) -> bool:
        # Breakpad microdumps are text but belong to the minidump analyzer.
        return artifact.readable and artifact.kind in self.consumes and artifact.format != "microdump"

    def analyze(self, artifact: Artifact, ctx: AnalysisContext) -> Iterator[Output]:
        assert artifact.local_path is not None
        reports = parse_text_crash(artifact.local_path)
        if not reports:
            ctx.warn(f"{artifact.path}: no crash trace found")
        # the same trace printed again and again (a retry loop, a worker respawned) is one
        # finding with a count: reports grouped by signature and title, in first-seen order
        groups: dict[tuple, list] = {}
        for rep in reports:
            key = (rep.signature, describe(rep), rep.source_format) if rep.signature else (id(rep),)
            groups.setdefault(key, []).append(rep)
        seen_facts: set[tuple[str, str]] = set()
        for reps in groups.values():
            rep = reps[0]
            e = rep.exception
            times = []
            for r in reps:
                t = None
                if r.extra.get("time_text"):
                    t, _exact = parse_text_time(r.extra["time_text"], r.extra.get("timezone_text"), ctx.tz)
                times.append(t)
            known = [t for t in times if t is not None]
            lines = [int(r.extra.get("line") or 1) for r in reps]
            if len(lines) > MAX_REFS:
                lines = lines[:MAX_REFS - 1] + lines[-1:]
            finding = crash_finding(rep, artifact.path, lines, self.name, count=len(reps),
                                    first_seen=min(known) if known else None,
                                    last_seen=max(known) if known else None)
            refs, severity = finding.evidence, finding.severity
            yield finding
            for r, t in list(zip(reps, times))[:MAX_EVENTS_PER_TRACE]:
                quality = TsQuality.NONE
                if t is not None:
                    _t, exact = parse_text_time(r.extra["time_text"], r.extra.get("timezone_text"), ctx.tz)
                    quality = TsQuality.EXACT if exact else TsQuality.INFERRED
                line = int(r.extra.get("line") or 1)
                yield Event(ts=t, artifact=artifact.path, kind="dump.crash" if e else "dump.hang",
                            summary=describe(r), severity=severity,
                            ref=EvidenceRef.line(artifact.path, line, refs[0].excerpt),
                            ts_quality=quality, analyzer=self.name)
            facts = []
            if rep.signature:
                facts.append(("dump.signature", rep.signature))
            if e is not None:
                facts.append(("dump.exception_type", e.type))
            if rep.problem_class:
                facts.append(("dump.problem_class", rep.problem_class))
            if rep.extra.get("jre_version"):
                facts.append(("jvm.version", rep.extra["jre_version"]))
            facts.append(("dump.format", rep.source_format))
            for name, value in facts:
                if (name, value) not in seen_facts:
                    seen_facts.add((name, value))
                    yield Fact(name, value, artifact.path, self.name)
