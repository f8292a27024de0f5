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

import os
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
from backline.analyzers.logs.formats import LogFormat
from backline.analyzers.logs.ranges import (SPLIT_MIN_BYTES, ByteRange, RangePart, count_newlines, number_ranges,
                                              plan_ranges, splittable)
from backline.analyzers.logs.records import LogRecord, learn_format, read_record_blocks, stack_trace_kind
from backline.analyzers.logs.stats import LogStats, TemplateStats
from backline.analyzers.logs.trace_join import JoinedTrace, TraceJoiner
from backline.analyzers.logs.store import RawJoiner, RecordWriter, join_raw_parts
from backline.analyzers.logs.template_index import template_index
from backline.model import Artifact, ArtifactKind, Event, EvidenceRef, Fact, Severity, TsQuality

NAME = "logs.text"
#: Byte ranges per process of the local pool (when the file is large enough): one - each
#: range costs about a second of CPU (its process's events, look-ahead, pickling).
RANGES_PER_JOB = 1
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


def _event_row(b: RecordBlock, i: int) -> tuple:
    """What the timeline event of record ``i`` needs, as a plain tuple (cheap to make and to
    send back from a byte range; most are never reported): time stamp (µs), its quality
    code, severity, line, message and head line, both cut."""
    head = b.text(i).split("\n", 1)[0]
    return (int(b.ts[i]), int(b.ts_quality[i]), int(b.severity[i]), int(b.line[i]),
            (b.strings["message"][i].as_py() or "")[:300], head[:500])


_SEVERITY = tuple(Severity)


def _event(artifact: str, row: tuple) -> Event:
    us, q, sev, line, message, head = row
    sev = _SEVERITY[sev]
    kind = "log.critical" if sev >= Severity.CRITICAL else "log.error" if sev >= Severity.HIGH else "log.warning"
    return Event(ts=RecordBlock.dt_of(us), artifact=artifact, kind=kind, summary=message or head[:300],
                 severity=sev, ref=EvidenceRef.line(artifact, line, head), ts_quality=QUALITY[q], analyzer=NAME)


class _CrashCalls:
    """Stands in for :class:`.crashes.LogCrashes` in a byte range: the calls are kept, in
    order, and made on the one :class:`LogCrashes` of the merge."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def add(self, text, line, ts, message=None, ts_quality=None, line_map=None) -> None:
        self.calls.append((text, line, ts, message, ts_quality, list(line_map) if line_map else None))


class _Scan:
    """One pass over the records of a file, or of one byte range of it: templates,
    statistics, events, stack traces, the records table.

    Stack traces (inside a record, or joined from one-record-per-line traces) are handed
    on in the order of their first line, whatever the blocks and ranges: a trace is held
    back while a joined trace that began before it may still be open."""

    def __init__(self, artifact: str, max_events: int, records: Path | None, crashes,
                 progress=None, size: int = 1, max_traces: int = MAX_STACK_TRACES, raw: bool = False) -> None:
        self.artifact = artifact
        self.max_events = max_events
        self.miner = TemplateMiner()
        self.stats = LogStats()
        self.writer = RecordWriter(records, artifact, raw=raw) if records is not None else None
        self.events: list[tuple] = []           # :func:`_event_row` tuples, made Events when reported
        self.dropped = 0
        self.traces: list[Fact] = []
        self.max_traces = max_traces
        self.crashes = crashes
        self.joiner = TraceJoiner()
        self.ends = deaths.Deaths(artifact)
        self.progress = progress
        self.size = size or 1
        self._pending: list[tuple] = []          # (first line, crash call, fact or None)

    def run(self, src, tz: ZoneInfo, *, fmt=None, first_line: int = 1, formats: list | None = None) -> None:
        for block in read_record_blocks(src, self.miner, tz=tz, fmt=fmt, first_line=first_line, formats=formats):
            self.flush(block, src)

    def flush(self, b: RecordBlock, src) -> None:
        artifact = self.artifact
        self.stats.add_block(b)
        self.ends.add_block(b)
        idx = np.flatnonzero(b.severity >= Severity.MEDIUM)
        room = max(0, self.max_events - len(self.events))
        for i in idx[:room].tolist():
            self.events.append(_event_row(b, i))
        self.dropped += max(0, len(idx) - room)
        for i, text in b.texts:                     # records with continuation lines
            kind = stack_trace_kind(text)
            if kind:
                line = int(b.line[i])
                self._pending.append((line, (text, line, b.dt(i), b.strings["message"][i].as_py(),
                                             QUALITY[b.ts_quality[i]], None),
                                      {"line": line, "kind": kind, "text": text[:MAX_TRACE_TEXT]}))
        for jt in self.joiner.feed_block(b):
            self.add_joined(jt)
        self.release()
        if self.writer is not None:
            self.writer.add_block(b)
        if self.progress is not None:
            self.progress(min(1.0, src.stats.bytes_read / self.size))

    def add_joined(self, jt: JoinedTrace) -> None:
        self._pending.append((jt.lines[0], (jt.text, jt.lines[0], jt.ts, None, jt.ts_quality, jt.lines),
                              {"line": jt.lines[0], "kind": stack_trace_kind(jt.text),
                               "text": jt.text[:MAX_TRACE_TEXT], "joined": True}))

    def release(self, everything: bool = False) -> None:
        """Hand on the held traces that begin before every open joined trace."""
        if not self._pending:
            return
        below = None if everything or not self.joiner.open else min(g.lines[0] for g in self.joiner.open.values())
        self._pending.sort(key=lambda p: p[0])
        n = len(self._pending) if below is None else next(
            (k for k, p in enumerate(self._pending) if p[0] >= below), len(self._pending))
        for line, call, fact in self._pending[:n]:
            self.crashes.add(*call[:5], line_map=call[5])
            if len(self.traces) < self.max_traces:
                self.traces.append(Fact("log.stack_trace", fact, self.artifact, NAME))
        del self._pending[:n]

    def finish_traces(self) -> None:
        for jt in self.joiner.finish():
            self.add_joined(jt)
        self.release(everything=True)

    def look_ahead(self, path: str, fmt, tz: ZoneInfo, start: int, end: int, first_line: int,
                   collected=None) -> set[int]:
        """A byte range's end: the joined traces still open there are completed from the
        records after it (bytes ``[start, end)``, first line ``first_line``), as one pass
        would; traces that begin after it are left to the next range.  Returns the lines
        after the range taken into this range's traces (the next range drops its traces
        that hold them)."""
        from backline.analyzers.logs.records import _NoMiner

        taken: set[int] = set()

        def ours() -> bool:
            return any(g.lines[0] < first_line for g in self.joiner.open.values())

        if ours() and end > start:
            nxt = open_log(path, byte_range=(start, end))
            nxt.collected = collected
            for b in read_record_blocks(nxt, _NoMiner(), tz=tz, fmt=fmt, first_line=first_line):
                for jt in self.joiner.feed_block(b):
                    if jt.lines[0] < first_line:
                        self.add_joined(jt)
                        taken.update(x for x in jt.lines if x >= first_line)
                if not ours():
                    break
            else:
                for jt in self.joiner.finish():
                    if jt.lines[0] < first_line:
                        self.add_joined(jt)
                        taken.update(x for x in jt.lines if x >= first_line)
        self.joiner.open.clear()
        self.release(everything=True)
        return taken


def analyze_text_log(path: str | Path, artifact: str, ctx: AnalysisContext,
                     collected: datetime | None = None) -> Iterator[Output]:
    """Analyze one text log file; yields Events, Findings and Facts (see module docstring).

    ``collected``: when the evidence was written, if the bundle says (an archive member's
    time); year-less stamps are never inferred after it.

    With ``ctx.options["logs.text"]["jobs"]`` > 1 (``backline analyze --jobs N``), a large
    uncompressed file is read in byte ranges by that many processes and merged into the
    same result (:mod:`.ranges`)."""
    opts = ctx.options.get(NAME) or {}
    jobs = int(opts.get("jobs", 1) or 1)
    if jobs > 1 or opts.get("executor") is not None:
        out = analyze_in_ranges(path, artifact, ctx, jobs, opts, collected)
        if out is not None:
            yield from out
            return
    src = open_log(path, display=artifact)
    src.collected = collected
    tz = ctx.tz if isinstance(ctx.tz, ZoneInfo) else ZoneInfo("UTC")
    scan = _Scan(artifact, ctx.max_events, Path(ctx.work_dir) / "records.parquet" if ctx.work_dir else None,
                 LogCrashes(artifact), ctx.progress, Path(path).stat().st_size)
    scan.run(src, tz)
    scan.finish_traces()
    yield from _report(artifact, ctx, scan.miner, scan.stats, scan.events, scan.dropped, scan.crashes,
                       scan.ends, scan.traces, src.stats, src.format_name,
                       (lambda shape_map: scan.writer.close(shape_map)) if scan.writer is not None else None)


def _report(artifact: str, ctx: AnalysisContext, miner: TemplateMiner, stats: LogStats, events: list[tuple],
            dropped: int, crashes: LogCrashes, ends: deaths.Deaths, traces: list[Fact], rs, fmt_name: str,
            close_records) -> Iterator[Output]:
    """The findings, events and facts of one file from its scan (or merged ranges)."""
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

    for w in rs.warnings:
        ctx.warn(f"{artifact}: {w}")
    if stats.ts_backwards:
        ctx.warn(f"{artifact}: time went backwards {stats.ts_backwards} time(s)")
    if rs.lines == 0:
        ctx.warn(f"{artifact}: empty file")
    elif rs.binary_lines * 2 > rs.lines:
        ctx.warn(f"{artifact}: mostly binary ({rs.binary_lines} of {rs.lines} lines)"
                 " - is this really a text log?")

    yield from (_event(artifact, r) for r in events)
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
    if close_records is not None:
        out = close_records(shape_map)
        yield Fact("log.parquet", str(out), artifact, NAME)


# -- byte ranges (one large file, several processes) ------------------------------------

_READ_COUNTS = ("lines", "binary_lines", "long_lines", "decode_errors", "crlf_lines", "nul_bytes")


def scan_range(path: str, artifact: str, rng: ByteRange, fmt: LogFormat, tz: str, max_events: int,
               records: str | None, collected: datetime | None = None) -> RangePart:
    """Read one byte range of a file (a task of its own: a process of a pool or a Dask worker)."""
    src = open_log(path, display=artifact, byte_range=(rng.start, rng.end))
    src.collected = collected
    calls = _CrashCalls()
    # more trace facts than kept: the merge may drop a few (see look_ahead)
    scan = _Scan(artifact, max_events, Path(records) if records else None, calls,
                 max_traces=MAX_STACK_TRACES + 64, raw=True)
    formats: list[LogFormat] = []
    scan.run(src, ZoneInfo(tz), fmt=fmt, first_line=rng.first_line, formats=formats)
    part = RangePart(rng.index)
    if len(formats) > 1:
        part.inexact = f"another header format begins near line {rng.first_line} or later"
    if scan.miner.shapes_dropped or scan.miner.overflow_templates:
        part.inexact = part.inexact or "the miner's shape or template cap was reached"
    if len(scan.ends.groups) >= scan.ends.MAX_GROUPS:
        part.inexact = part.inexact or "the cap of process-exit groups was reached"
    if rng.last:
        scan.finish_traces()
    else:
        part.taken = scan.look_ahead(path, fmt, ZoneInfo(tz), rng.end, os.path.getsize(path), src.stats.lines + 1,
                                     collected)
    part.shapes = [scan.miner.shape_text(i) for i in range(scan.miner.shapes)]
    part.stats = scan.stats
    part.events = scan.events
    part.events_total = len(scan.events) + scan.dropped
    part.traces = scan.traces
    part.crash_calls = calls.calls
    part.ends = scan.ends
    part.read = {k: getattr(src.stats, k) for k in _READ_COUNTS}
    if scan.writer is not None:
        part.records_file = str(scan.writer.close_raw())
    return part


def _local_map():
    """The executor used when none is given: a local process pool (``jobs`` processes) whose
    workers die with the process that started them (a task killed at its limit leaves none)."""
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial

    from backline.analyzers.isolation import die_with_parent

    return partial(ProcessPoolExecutor, initializer=die_with_parent)


def analyze_in_ranges(path: str | Path, artifact: str, ctx: AnalysisContext, jobs: int,
                      opts: dict, collected: datetime | None = None) -> list[Output] | None:
    """The analysis of a large file read in byte ranges by ``jobs`` processes (or by the
    executor in ``opts["executor"]``: anything with ``map(fn, *iterables)``), merged;
    ``None`` when the file is small or cannot be split (then it is read in one pass)."""
    size = Path(path).stat().st_size
    least = opts.get("split_min_bytes", os.environ.get("BACKLINE_LOGS_SPLIT_MIN_BYTES") or SPLIT_MIN_BYTES)
    if size < int(least):
        return None
    src = open_log(path, display=artifact)
    src.collected = collected
    fmt, _ = learn_format(src)
    why = splittable(fmt, src.stats.compression, src.stats.encoding, src.stats.cr_only)
    if why:
        return None
    parts = max(jobs, int(opts.get("ranges", 0) or 0))
    if not opts.get("ranges") and opts.get("executor") is None:
        # a few ranges per process: the records of the first ones are joined while the
        # last ones are still being read
        parts = max(parts, min(RANGES_PER_JOB * jobs, size // int(least)))
    ranges = plan_ranges(path, fmt, parts)
    if len(ranges) < 2:
        return None
    tz = getattr(ctx.tz, "key", "UTC")
    executor = opts.get("executor")
    own = None
    if executor is None:
        own = executor = _local_map()(max_workers=min(jobs, len(ranges)))
    try:
        return _run_ranges(path, artifact, ctx, src, fmt, ranges, executor, tz, collected)
    except Exception as exc:  # noqa: BLE001 - a range task that failed (a worker died): one pass instead
        ctx.warn(f"{artifact}: read in one pass, not in byte ranges: a range failed "
                 f"({type(exc).__name__}: {str(exc)[:200]})")
        return None
    finally:
        if own is not None:
            own.shutdown()


def _run_ranges(path, artifact: str, ctx: AnalysisContext, src, fmt: LogFormat, ranges: list[ByteRange],
                executor, tz: str, collected: datetime | None) -> list[Output] | None:
    """Read the ranges (tasks of ``executor``) and merge them.  Parts are taken in file order
    as they come: each one's shapes go into the merged miner and its records into the one
    records file while later ranges are still being read, so the join is not a serial step
    at the end."""
    got: list[RangePart] = []
    maps: list[dict[int, int]] = []
    miner = TemplateMiner()
    work = Path(ctx.work_dir) if ctx.work_dir else None
    joiner = None
    bad = ""
    try:
        counts = list(executor.map(count_newlines, [str(path)] * len(ranges), [r.start for r in ranges],
                                   [r.end for r in ranges]))
        ranges = number_ranges(ranges, counts)
        recs = [str(work / f"records.part{r.index:04d}.parquet") if work else None for r in ranges]
        if work is not None:
            joiner = RawJoiner(work / "records.parquet")
        for part in executor.map(scan_range, [str(path)] * len(ranges), [artifact] * len(ranges), ranges,
                                 [fmt] * len(ranges), [tz] * len(ranges), [ctx.max_events] * len(ranges), recs,
                                 [collected] * len(ranges)):
            got.append(part)
            bad = bad or part.inexact
            if bad:
                continue                          # one pass instead: the rest is only cleaned up
            maps.append({si: miner.learn_shape(text) for si, text in enumerate(part.shapes)})
            if miner.shapes_dropped or miner.overflow_templates:
                bad = "the miner shape or template cap was reached"
            elif joiner is not None and part.records_file:
                joiner.add(part.records_file, maps[-1])
    except BaseException:
        if joiner is not None:
            joiner.abort()
        if work is not None:
            for p in work.glob("records.part*.raw.*"):
                p.unlink(missing_ok=True)
        raise
    out = None if bad else merge_ranges(path, artifact, ctx, src, fmt, got, miner=miner, maps=maps, joiner=joiner)
    if out is None:
        if joiner is not None:
            joiner.abort()
        for p in got:
            if p.records_file:
                Path(p.records_file).unlink(missing_ok=True)
        ctx.warn(f"{artifact}: read in one pass, not in byte ranges: "
                 f"{bad or 'the miner shape or template cap was reached'}")
    return out


def merge_ranges(path, artifact: str, ctx: AnalysisContext, src, fmt: LogFormat,
                 parts: list[RangePart], *, miner: TemplateMiner | None = None,
                 maps: list[dict[int, int]] | None = None, joiner: RawJoiner | None = None) -> list[Output] | None:
    """One file's result from its ranges' parts (in file order), see :mod:`.ranges`;
    ``None`` when the merged miner reached a cap (then one pass is exact, not the merge).
    ``miner`` and ``maps``: the parts' shapes already placed (in order); ``joiner``: their
    records already joined (else the part files are joined here)."""
    if miner is None or maps is None:
        miner = TemplateMiner()
        maps = [{si: miner.learn_shape(text) for si, text in enumerate(part.shapes)} for part in parts]
    if miner.shapes_dropped or miner.overflow_templates:
        return None
    stats = LogStats()
    events: list[tuple] = []
    total = 0
    traces: list[Fact] = []
    crashes = LogCrashes(artifact)
    ends = deaths.Deaths(artifact)
    taken: set[int] = set()
    for part, shape_map in zip(parts, maps):
        stats.absorb(part.stats, shape_map)
        ends.absorb(part.ends)
        events.extend(part.events[: max(0, ctx.max_events - len(events))])
        total += part.events_total
        # joined traces of lines the range before took into its own traces: not traces here
        drop = {c[1] for c in part.crash_calls if c[5] and taken.intersection(c[5])}
        traces.extend([f for f in part.traces if not (f.value.get("joined") and f.value["line"] in drop)]
                      [: max(0, MAX_STACK_TRACES - len(traces))])
        for call in part.crash_calls:
            if not (call[5] and call[1] in drop):
                crashes.add(*call[:5], line_map=call[5])
        taken = part.taken
    rs = src.stats
    last = parts[-1].read
    rs.lines = last["lines"]
    for k in _READ_COUNTS[1:]:
        setattr(rs, k, sum(p.read[k] for p in parts))
    rs.warnings = []
    src._finish_warnings()
    close = None
    if joiner is not None:
        close = joiner.close
    elif ctx.work_dir:
        out = Path(ctx.work_dir) / "records.parquet"

        def close(templates):
            return join_raw_parts(out, artifact, [(p.records_file, m) for p, m in zip(parts, maps)], templates)
    return list(_report(artifact, ctx, miner, stats, events, total - len(events), crashes, ends, traces, rs,
                        fmt.name, close))


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
