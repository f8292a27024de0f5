"""What is unusual in a log: findings computed from :mod:`~backline.analyzers.logs.stats`.

Every finding carries :class:`EvidenceRef` objects pointing at lines.  Codes
(stable, documented in docs/logs.md):

``LOG.ERROR_TEMPLATE``  error / fatal / exception templates ranked by count
``LOG.FIRST_ERROR``     the first error record of the file
``LOG.BURST``           a template whose rate jumps (start and end given)
``LOG.RARE_TEMPLATE``   a template seen a handful of times among frequent ones
``LOG.NEW_TEMPLATE``    a template that first appears late in the file
``LOG.SILENCE``         a gap far longer than the file's usual rhythm, or logging
                        that stops right after an error that ends a program
                        (fatal, with a stack trace, or worded so: the file's last records)
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Iterator

from backline.analyzers.logs.records import LogRecord, stack_trace_kind
from backline.analyzers.logs.stats import LogStats, TemplateStats
from backline.model import EvidenceRef, Finding, Severity

MAX_ERROR_TEMPLATES = 10
MAX_BURSTS = 5
MAX_RARE = 10
MAX_NEW = 10
MAX_SILENCES = 3

_EXC = re.compile(r"(?:Exception|Error|Traceback|exception|panic|fatal|FATAL)")


def _refs(artifact: str, st: TemplateStats) -> tuple[EvidenceRef, ...]:
    return tuple(EvidenceRef.line(artifact, ln, text) for ln, text in st.examples)


#: Templates that are a line of a stack trace (a frame, "... N more"): part of a trace
#: that the crash findings report, not an error of their own (logcat prints each at E).
#: Python's trace head and chain separators are trace lines too (syslog forwards a traceback
#: one record per line: the head line alone says nothing the crash finding does not).
_TRACE_LINE = re.compile(r"(?:at [\w$<>.*/]+ ?\(|\.\.\. <\*> (?:more|common frames omitted)$|File \"<\*>\", line <\*>"
                         r"|Traceback \(most recent call last\):$|During handling of the above exception, another "
                         r"exception occurred:$|The above exception was the direct cause of the following exception:$"
                         r"|[\^~]+$)")


def _by_wording(st: TemplateStats) -> bool:
    """An error by its constant words, in a log without levels."""
    return st.level == "" and bool(_EXC.search(st.template))


def _is_error(st: TemplateStats) -> bool:
    return st.severity >= Severity.HIGH or _by_wording(st)


def error_templates(artifact: str, tpls: list[TemplateStats], analyzer: str) -> Iterator[Finding]:
    """Error, fatal and exception templates ranked by their number of error records.

    A template can hold records of several levels (an access-log request
    template holds 200 and 500 answers, an Apache template notices and
    errors): only the records at error level or above are counted and shown
    as evidence.  A template that is an error by its wording (no level in
    the log, an exception word among its constant words) counts all its
    records, since every one of them holds that wording.  Templates of stack
    trace lines (``at pkg.Cls.m(<*>)``, ``... <*> more``: a trace logged one
    record per line) are left to the crash findings.
    """
    picked: list[tuple[int, int, TemplateStats, bool]] = []
    for t in tpls:
        if _TRACE_LINE.match(t.template):
            continue
        if _by_wording(t):
            picked.append((t.count, t.first_line, t, False))
        elif t.err_count:
            picked.append((t.err_count, t.err_first_line, t, True))
    picked.sort(key=lambda p: (-p[0], p[1]))
    for rank, (n, first_line, t, by_level) in enumerate(picked[:MAX_ERROR_TEMPLATES], 1):
        sev = Severity.CRITICAL if t.severity >= Severity.CRITICAL else Severity.HIGH
        examples = t.err_examples if by_level else t.examples
        first_ts, last_ts = (t.err_first_ts, t.err_last_ts) if by_level else (t.first_ts, t.last_ts)
        of_all = f" (of {t.count} records of this template)" if n != t.count else ""
        yield Finding(
            code="LOG.ERROR_TEMPLATE", title=f"{n}x {t.template[:200]}", severity=sev,
            artifact=artifact,
            evidence=tuple(EvidenceRef.line(artifact, ln, text) for ln, text in examples),
            detail=f"error template #{rank} by count: {n} error records{of_all}; first at line {first_line}",
            count=n, first_seen=first_ts, last_seen=last_ts, analyzer=analyzer,
            data={"template_id": t.template_id, "template": t.template, "rank": rank,
                  "level": t.level, "first_line": first_line, "error_records": n,
                  "template_records": t.count})


def first_error(artifact: str, stats: LogStats, analyzer: str) -> Iterator[Finding]:
    """The first error record of the file."""
    rec = stats.first_error
    if rec is None:
        return
    head = rec.text.split("\n", 1)[0]
    yield Finding(
        code="LOG.FIRST_ERROR", title=f"first error: {rec.message[:200]}", severity=rec.severity,
        artifact=artifact, evidence=(EvidenceRef.line(artifact, rec.line, head[:500]),),
        detail=f"line {rec.line}" + (f" at {rec.ts.isoformat()}" if rec.ts else ""),
        first_seen=rec.ts, last_seen=rec.ts, analyzer=analyzer,
        data={"line": rec.line, "level": rec.level})


def bursts(artifact: str, tpls: list[TemplateStats], stats: LogStats, analyzer: str) -> Iterator[Finding]:
    """Templates whose per-minute rate jumps far above their own average."""
    if stats.first_ts is None or stats.last_ts is None:
        return
    width = stats.bucket_s
    span_buckets = max(1, int(stats.last_ts.timestamp()) // width
                       - int(stats.first_ts.timestamp()) // width + 1)
    if span_buckets < 10:
        return
    found: list[tuple[int, Finding]] = []
    for t in tpls:
        if t.count < 20 or len(t.buckets) < 2 or _TRACE_LINE.match(t.template):
            continue
        mean = t.count / span_buckets
        thresh = max(10.0, 5.0 * mean)
        hot = sorted(b for b, c in t.buckets.items() if c >= thresh)
        if not hot:
            continue
        runs: list[list[int]] = [[hot[0], hot[0]]]
        for b in hot[1:]:
            if b <= runs[-1][1] + 1:
                runs[-1][1] = b
            else:
                runs.append([b, b])
        for start, end in runs:
            n = sum(t.buckets.get(b, 0) for b in range(start, end + 1))
            if n > 0.9 * t.count and len(runs) == 1 and end - start + 1 >= span_buckets // 2:
                continue            # the template is simply always busy
            peak = max(t.buckets.get(b, 0) for b in range(start, end + 1))
            t0 = datetime.fromtimestamp(start * width, tz=timezone.utc)
            t1 = datetime.fromtimestamp((end + 1) * width, tz=timezone.utc)
            sev = Severity.HIGH if _is_error(t) else Severity.MEDIUM
            found.append((n, Finding(
                code="LOG.BURST", title=f"burst of {n}x {t.template[:160]}", severity=sev,
                artifact=artifact, evidence=_refs(artifact, t),
                detail=(f"{n} records from {t0:%Y-%m-%d %H:%M} to {t1:%Y-%m-%d %H:%M} UTC "
                        f"(peak {peak} per {width}s, average {mean:.2f})"),
                count=n, first_seen=t0, last_seen=t1, analyzer=analyzer,
                data={"template_id": t.template_id, "template": t.template, "start": t0.isoformat(),
                      "end": t1.isoformat(), "bucket_s": width, "peak": peak, "mean": round(mean, 3)})))
    found.sort(key=lambda x: -x[0])
    for _, f in found[:MAX_BURSTS]:
        yield f


def rare_templates(artifact: str, tpls: list[TemplateStats], stats: LogStats,
                   analyzer: str) -> Iterator[Finding]:
    """Templates seen at most a few times in a file dominated by frequent ones."""
    if stats.records < 500 or len(tpls) < 3:
        return
    limit = max(2, int(stats.records * 0.001))
    frequent = sum(t.count for t in tpls if t.count > 10 * limit)
    if frequent < stats.records * 0.5:
        return                       # no frequent backbone: everything is "rare"
    rare = [t for t in tpls if t.count <= limit]
    rare.sort(key=lambda t: (-t.severity, t.count, t.first_line))
    for t in rare[:MAX_RARE]:
        yield Finding(
            code="LOG.RARE_TEMPLATE", title=f"rare: {t.template[:200]}",
            severity=Severity.MEDIUM if t.severity >= Severity.MEDIUM else Severity.LOW,
            artifact=artifact, evidence=_refs(artifact, t),
            detail=f"seen {t.count}x among {stats.records} records", count=t.count,
            first_seen=t.first_ts, last_seen=t.last_ts, analyzer=analyzer,
            data={"template_id": t.template_id, "template": t.template})


def new_templates(artifact: str, tpls: list[TemplateStats], stats: LogStats,
                  analyzer: str) -> Iterator[Finding]:
    """Templates that first appear in the last part of the file (new behaviour)."""
    if stats.records < 200:
        return
    use_ts = stats.first_ts is not None and stats.last_ts is not None and stats.with_ts > stats.records // 2
    if use_ts:
        t0, t1 = stats.first_ts.timestamp(), stats.last_ts.timestamp()  # type: ignore[union-attr]
        if t1 - t0 < 60:
            return
        cut = t0 + 0.6 * (t1 - t0)
        late = [t for t in tpls if t.first_ts is not None and t.first_ts.timestamp() > cut]
    else:
        cut_line = max(t.first_line for t in tpls) * 0.6 if tpls else 0
        late = [t for t in tpls if t.first_line > cut_line]
    late_ids = {id(t) for t in late}         # identity, not dataclass equality (quadratic)
    established = sum(t.count for t in tpls if id(t) not in late_ids)
    if not late or established < stats.records * 0.5:
        return
    late.sort(key=lambda t: (-t.severity, -t.count, t.first_line))
    for t in late[:MAX_NEW]:
        yield Finding(
            code="LOG.NEW_TEMPLATE", title=f"new after line {t.first_line}: {t.template[:180]}",
            severity=Severity.MEDIUM if t.severity >= Severity.MEDIUM else Severity.LOW,
            artifact=artifact, evidence=_refs(artifact, t),
            detail=f"first seen at line {t.first_line}" + (f", {t.first_ts.isoformat()}" if t.first_ts else "")
            + f"; {t.count}x from then on", count=t.count,
            first_seen=t.first_ts, last_seen=t.last_ts, analyzer=analyzer,
            data={"template_id": t.template_id, "template": t.template, "first_line": t.first_line})


def silences(artifact: str, stats: LogStats, analyzer: str) -> Iterator[Finding]:
    """Gaps far longer than the usual rhythm (>= 60 s, >= 50x median, >= 5x p99)."""
    if stats.with_ts < 50:
        return
    med = stats.gap_quantile(0.5) or 0.0
    p99 = stats.gap_quantile(0.99) or 0.0
    floor = max(60.0, 50.0 * med, 5.0 * p99)
    n = 0
    for g in stats.largest_gaps():
        if g.seconds < floor or n >= MAX_SILENCES:
            break
        n += 1
        yield Finding(
            code="LOG.SILENCE", title=f"no records for {_human(g.seconds)}", severity=Severity.MEDIUM,
            artifact=artifact,
            evidence=(EvidenceRef.line(artifact, g.line_before), EvidenceRef.line(artifact, g.line_after)),
            detail=(f"from {g.ts_before.isoformat()} (line {g.line_before}) to {g.ts_after.isoformat()} "
                    f"(line {g.line_after}); usual gap {med:.3g}s, 99th percentile {p99:.3g}s"),
            first_seen=g.ts_before, last_seen=g.ts_after, analyzer=analyzer,
            data={"kind": "gap", "seconds": g.seconds, "median_gap_s": med, "p99_gap_s": p99})


#: Wording of a program that is ending because of the error it logs.
_ENDING = re.compile(r"\b(?:shut(?:ting)?\s?down|exiting|terminating|abort(?:ing|ed)?|crash(?:ing|ed)?|"
                     r"giving up|gave up|unhandled|uncaught|core dumped|out of memory)\b", re.I)


def stop_reason(rec: LogRecord) -> str:
    """Why an error record is evidence that its program ended there, or ''.

    A log that simply ends after an error (a test that finished, a sample cut
    out of a longer log, a web server's last request answered 500) says
    nothing: the program that wrote an error line and went on serving is
    alive.  Evidence is an error that ends a program by itself: a record at
    fatal / critical level (``fatal``), one that holds a stack trace
    (``stack_trace``: an exception the program logged on its way out), or an
    error worded as the end of the program (``wording``: "shutting down",
    "unhandled", "exiting", "aborted" ...).

    >>> from backline.model import TsQuality
    >>> r = LogRecord(9, 9, None, TsQuality.NONE, "ERROR", Severity.HIGH, "", "", "", "",
    ...               "unhandled error, shutting down", "... unhandled error, shutting down")
    >>> stop_reason(r)
    'wording'
    """
    if rec.severity >= Severity.CRITICAL:
        return "fatal"
    if rec.end_line > rec.line and stack_trace_kind(rec.text):
        return "stack_trace"
    if _ENDING.search(rec.message):
        return "wording"
    return ""


def logging_stops(artifact: str, stats: LogStats, analyzer: str) -> Iterator[Finding]:
    """The file ends right after an error that ends a program (:func:`stop_reason`):
    the program likely stopped (crashed, was killed, or shut down on that error) -
    its last words are the evidence.

    The last error must be among the file's last 5 records and within 60 s
    of the last record.  The file's modification time is not used: a log's
    last write is its last record, and archive members carry local times of
    2 s resolution, so it cannot show a silence after the last record.
    """
    last, err = stats.last, stats.last_error
    if last is None or err is None or stats.records < 5:
        return
    # the error is the last record, or only a few records follow within seconds
    after = stats.records_after_last_error
    if after is None or after >= 5:
        return
    if last.ts is not None and err.ts is not None and (last.ts - err.ts).total_seconds() > 60:
        return
    reason = stop_reason(err)
    if not reason:
        return
    head = err.text.split("\n", 1)[0]
    refs = [EvidenceRef.line(artifact, err.line, head[:500])]
    if last.line != err.line:
        refs.append(EvidenceRef.line(artifact, last.line, last.text.split("\n", 1)[0][:500]))
    why = {"fatal": "a fatal error", "stack_trace": "an error with a stack trace",
           "wording": "an error that says the program ends"}[reason]
    yield Finding(
        code="LOG.SILENCE", title=f"logging stops after an error: {err.message[:160]}",
        severity=Severity.HIGH, artifact=artifact, evidence=tuple(refs),
        detail=(f"the file ends after {why}: the last error is at line {err.line}"
                + (f" ({err.ts.isoformat()})" if err.ts else "")
                + f"; the file ends at line {last.end_line}"),
        first_seen=err.ts, last_seen=last.ts, analyzer=analyzer,
        data={"kind": "stops", "line": err.line, "last_line": last.end_line, "reason": reason})


def _human(sec: float) -> str:
    if sec < 120:
        return f"{sec:.0f} s"
    if sec < 7200:
        return f"{sec / 60:.0f} min"
    if sec < 172800:
        return f"{sec / 3600:.1f} h"
    return f"{sec / 86400:.1f} days"


#: A log that ends this close to the latest time the bundle knows ends because the evidence was
#: collected then, not because its program stopped (``LOG.SILENCE`` "logging stops" is dropped).
COLLECTED_AFTER_S = 30.0


def stops_at_collection(findings, latest: datetime | None) -> list:
    """``findings`` without the "logging stops after an error" ones whose log ends within
    :data:`COLLECTED_AFTER_S` of ``latest`` (the latest time stamp of the whole bundle: its
    artifacts' ends, its findings' last times): nothing in the bundle goes on past that
    log's end, so its end says when the evidence was taken, not that logging stopped.

    >>> from datetime import timezone
    >>> t = datetime(2026, 1, 1, 10, 0, 0, tzinfo=timezone.utc)
    >>> f = Finding(code="LOG.SILENCE", title="logging stops after an error: x", severity=Severity.HIGH,
    ...             artifact="a.log", last_seen=t, data={"kind": "stops"})
    >>> len(stops_at_collection([f], t + timedelta(seconds=5))), len(stops_at_collection([f], t + timedelta(minutes=5)))
    (0, 1)
    """
    if latest is None:
        return list(findings)
    out = []
    for f in findings:
        if (f.code == "LOG.SILENCE" and (f.data or {}).get("kind") == "stops" and f.last_seen is not None
                and f.last_seen.tzinfo is not None
                and (latest - f.last_seen).total_seconds() <= COLLECTED_AFTER_S):
            continue
        out.append(f)
    return out

