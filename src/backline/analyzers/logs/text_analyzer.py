"""The ``logs.text`` analyzer: any text log in, findings, timeline events and facts out.

One streaming pass: records are read (:mod:`.records`), their messages mined
in blocks (:mod:`.miner`), accounted (:mod:`.stats`) and, when the context
has a work folder, written to ``<work_dir>/records.parquet``.  Findings come
from :mod:`.anomalies`; stack traces inside records become crash findings
(``DUMP.JAVA_EXCEPTION`` ... grouped by signature, :mod:`.crashes`).  Facts:

``log.lines`` ``log.records`` ``log.encoding`` ``log.format`` ``log.templates``
``log.time_range`` ``log.levels`` ``log.binary_lines`` ``log.long_lines``
``log.ts_backwards`` ``log.events_dropped`` ``log.stack_trace`` ``log.parquet``
``log.template_index`` (every template with count and first line, :mod:`.template_index`)
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from zoneinfo import ZoneInfo

from backline.analyzers.base import AnalysisContext, Analyzer, Output
from backline.analyzers.logs import anomalies, deaths
from backline.analyzers.logs.crashes import LogCrashes
from backline.analyzers.logs.miner import CLUSTER_MAX, TemplateMiner, template_id
from backline.analyzers.logs.reader import open_log
from backline.analyzers.logs.blocks import QUALITY, RecordBlock
from backline.analyzers.logs.records import LogRecord, read_record_blocks, stack_trace_kind
from backline.analyzers.logs.stats import LogStats, TemplateStats
from backline.analyzers.logs.trace_join import JoinedTrace, TraceJoiner
from backline.analyzers.logs.store import RecordWriter
from backline.analyzers.logs.template_index import template_index
from backline.model import Artifact, ArtifactKind, Event, EvidenceRef, Fact, Severity, TsQuality

NAME = "logs.text"
BLOCK = 4096
MAX_STACK_TRACES = 200
MAX_TRACE_TEXT = 64 * 1024

FINDING_CODES = frozenset({"LOG.ERROR_TEMPLATE", "LOG.FIRST_ERROR", "LOG.BURST", "LOG.RARE_TEMPLATE",
                           "LOG.NEW_TEMPLATE", "LOG.SILENCE", "LOG.PROCESS_EXIT",
                           # stack traces inside the log, as the dumps area reports them
                           "DUMP.PYTHON_EXCEPTION", "DUMP.JAVA_EXCEPTION", "DUMP.DOTNET_EXCEPTION",
                           "DUMP.JVM_FATAL", "DUMP.PYTHON_FATAL", "DUMP.DEADLOCK", "DUMP.HANG",
                           "DUMP.CRASH"})
FACT_NAMES = frozenset({"log.lines", "log.records", "log.encoding", "log.format", "log.templates",
                        "log.time_range", "log.levels", "log.binary_lines", "log.long_lines",
                        "log.ts_backwards", "log.events_dropped", "log.stack_trace", "log.parquet",
                        "log.template_index"})


def _event(artifact: str, rec: LogRecord) -> Event:
    sev = rec.severity
    kind = "log.critical" if sev >= Severity.CRITICAL else "log.error" if sev >= Severity.HIGH else "log.warning"
    head = rec.text.split("\n", 1)[0]
    return Event(ts=rec.ts, artifact=artifact, kind=kind, summary=rec.message[:300] or head[:300],
                 severity=sev, ref=EvidenceRef.line(artifact, rec.line, head[:500]),
                 ts_quality=rec.ts_quality, analyzer=NAME)


def analyze_text_log(path: str | Path, artifact: str, ctx: AnalysisContext,
                     collected: datetime | None = None) -> Iterator[Output]:
    """Analyze one text log file; yields Events, Findings and Facts (see module docstring).

    ``collected``: when the evidence was written, if the bundle says (an archive member's
    time); year-less stamps are never inferred after it."""
    src = open_log(path, display=artifact)
    src.collected = collected
    tz = ctx.tz if isinstance(ctx.tz, ZoneInfo) else ZoneInfo("UTC")
    miner = TemplateMiner()
    stats = LogStats()
    writer = RecordWriter(Path(ctx.work_dir) / "records.parquet", artifact) if ctx.work_dir else None
    events: list[Event] = []
    dropped = 0
    traces: list[Fact] = []
    crashes = LogCrashes(artifact)
    ends = deaths.Deaths(artifact)
    joiner = TraceJoiner()
    size = Path(path).stat().st_size or 1

    medium = Severity.MEDIUM

    def flush(b: RecordBlock) -> None:
        nonlocal dropped
        stats.add_block(b)
        ends.add_block(b)
        idx = np.flatnonzero(b.severity >= medium)
        room = max(0, ctx.max_events - len(events))
        for i in idx[:room].tolist():
            events.append(_event(artifact, LogRecord(*b.row(i))))
        dropped += max(0, len(idx) - room)
        for i, text in b.texts:                     # records with continuation lines
            kind = stack_trace_kind(text)
            if kind:
                crashes.add(text, int(b.line[i]), b.dt(i), b.strings["message"][i].as_py(),
                            QUALITY[b.ts_quality[i]])
                if len(traces) < MAX_STACK_TRACES:
                    traces.append(Fact("log.stack_trace", {"line": int(b.line[i]), "kind": kind,
                                                           "text": text[:MAX_TRACE_TEXT]}, artifact, NAME))
        for jt in joiner.feed_block(b):
            add_joined(jt)
        if writer is not None:
            writer.add_block(b)
        if ctx.progress is not None:
            ctx.progress(min(1.0, src.stats.bytes_read / size))

    def add_joined(jt: JoinedTrace) -> None:
        crashes.add(jt.text, jt.lines[0], jt.ts, None, jt.ts_quality, line_map=jt.lines)
        if len(traces) < MAX_STACK_TRACES:
            traces.append(Fact("log.stack_trace", {"line": jt.lines[0], "kind": stack_trace_kind(jt.text),
                                                   "text": jt.text[:MAX_TRACE_TEXT], "joined": True},
                               artifact, NAME))

    for block in read_record_blocks(src, miner, tz=tz):
        flush(block)
    for jt in joiner.finish():
        add_joined(jt)
    fmt_name = src.format_name

    # final templates: shapes that ended in the same template are joined
    by_tpl: dict[str, TemplateStats] = {}
    shape_map: dict[int, tuple[str, str]] = {}
    for shape, st in stats.shapes.items():
        tpl = miner.template_of_shape(shape)
        tid = template_id(tpl)
        shape_map[shape] = (tid, tpl)
        agg = by_tpl.get(tpl)
        if agg is None:
            agg = by_tpl[tpl] = TemplateStats(tpl, tid, first_line=st.first_line)
        agg.merge(st)
    tpls = list(by_tpl.values())
    if miner.overflow_templates:
        n_over = sum(st.count for shape, st in stats.shapes.items() if miner.is_overflow_shape(shape))
        ctx.warn(f"{artifact}: more than {CLUSTER_MAX:,} distinct templates (free text?): {n_over} record(s) "
                 f"counted under {miner.overflow_templates} all-<*> template(s) by word count")

    for w in src.stats.warnings:
        ctx.warn(f"{artifact}: {w}")
    if stats.ts_backwards:
        ctx.warn(f"{artifact}: time went backwards {stats.ts_backwards} time(s)")
    if src.stats.lines == 0:
        ctx.warn(f"{artifact}: empty file")
    elif src.stats.binary_lines * 2 > src.stats.lines:
        ctx.warn(f"{artifact}: mostly binary ({src.stats.binary_lines} of {src.stats.lines} lines)"
                 " - is this really a text log?")

    yield from events
    yield from anomalies.error_templates(artifact, tpls, NAME)
    yield from anomalies.first_error(artifact, stats, NAME)
    yield from anomalies.bursts(artifact, tpls, stats, NAME)
    yield from anomalies.rare_templates(artifact, tpls, stats, NAME)
    yield from anomalies.new_templates(artifact, tpls, stats, NAME)
    yield from anomalies.silences(artifact, stats, NAME)
    yield from anomalies.logging_stops(artifact, stats, NAME)
    yield from ends.events
    yield from ends.findings(NAME)
    yield from crashes.findings(NAME)
    yield from crashes.events(NAME)
    if crashes.skipped:
        ctx.warn(f"{artifact}: {crashes.skipped} stack trace(s) past the first {crashes.parsed} not parsed")
    if crashes.failed:
        ctx.warn(f"{artifact}: {crashes.failed} stack trace(s) could not be parsed "
                 f"({crashes.first_failure})")
    if crashes.dropped:
        ctx.warn(f"{artifact}: {crashes.dropped} stack trace(s) of signatures past the first "
                 f"{len(crashes.groups)} not reported")
    yield from traces

    rs = src.stats
    yield Fact("log.lines", rs.lines, artifact, NAME)
    yield Fact("log.records", stats.records, artifact, NAME)
    yield Fact("log.encoding", rs.encoding, artifact, NAME)
    yield Fact("log.format", fmt_name, artifact, NAME)
    yield Fact("log.templates", len(tpls), artifact, NAME)
    yield Fact("log.levels", {s.label: c for s, c in sorted(stats.severity_counts.items())}, artifact, NAME)
    yield Fact("log.time_range", {"start": stats.first_ts.isoformat() if stats.first_ts else None,
                                  "end": stats.last_ts.isoformat() if stats.last_ts else None,
                                  "records_with_ts": stats.with_ts}, artifact, NAME)
    yield Fact("log.binary_lines", rs.binary_lines, artifact, NAME)
    yield Fact("log.long_lines", rs.long_lines, artifact, NAME)
    yield Fact("log.ts_backwards", stats.ts_backwards, artifact, NAME)
    yield Fact("log.events_dropped", dropped, artifact, NAME)
    yield Fact("log.template_index", template_index(tpls), artifact, NAME)
    if writer is not None:
        out = writer.close(shape_map)
        yield Fact("log.parquet", str(out), artifact, NAME)


class LogsTextAnalyzer(Analyzer):
    """Text logs: records, templates, timeline events and findings."""

    name = NAME
    version = "1"
    consumes = frozenset({ArtifactKind.TEXT_LOG})
    emits = FINDING_CODES | FACT_NAMES
    description = "Reads any text log: records, templates, error/burst/rare/new/silence findings."

    def applies_to(self, artifact: Artifact) -> bool:
        """Readable artifacts of the right kind that hold at least one byte."""
        return super().applies_to(artifact) and artifact.size > 0

    def analyze(self, artifact: Artifact, ctx: AnalysisContext) -> Iterator[Output]:
        assert artifact.local_path is not None
        yield from analyze_text_log(artifact.local_path, artifact.path, ctx, _member_time(artifact))


def _member_time(artifact: Artifact) -> datetime | None:
    """The modification time intake recorded for the artifact (``meta["mtime"]``)."""
    raw = (artifact.meta or {}).get("mtime")
    if not raw:
        return None
    try:
        t = datetime.fromisoformat(str(raw))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)

