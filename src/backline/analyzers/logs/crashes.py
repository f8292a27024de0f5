"""Stack traces inside logs as crash findings.

:class:`LogCrashes` is fed the multi-line records of a log that hold a stack
trace (Java, Python, .NET).  Each record's text goes through the dumps area's
text crash-trace parser (:func:`backline.analyzers.dumps.text.parse_text_crash_text`),
and every trace it finds is grouped by its crash signature.  :meth:`LogCrashes.findings`
yields one crash finding per signature, built by the dumps text analyzer's own
:func:`~backline.analyzers.dumps.text.analyzer.crash_finding` (same codes:
``DUMP.PYTHON_EXCEPTION``, ``DUMP.JAVA_EXCEPTION``, ``DUMP.DOTNET_EXCEPTION`` ...),
with the number of occurrences, first and last seen, and ``line:N`` references
to the trace's first line in the log file.

Memory is bounded: at most :data:`MAX_GROUPS` signatures are kept (further
ones are counted in :attr:`LogCrashes.dropped`), at most :data:`MAX_PARSED`
traces and :data:`MAX_PARSED_CHARS` characters of trace text are parsed per
file, and parses are cached (2,000 texts, 16 Mi characters) by the record's
continuation lines when the head line's message plays no part in the trace, so
the same trace logged again at another time is parsed once.

>>> from datetime import datetime, timezone
>>> c = LogCrashes("app.log")
>>> text = ("ERROR worker died\\nTraceback (most recent call last):\\n"
...         '  File "w.py", line 3, in run\\n    go()\\nKeyError: 42')
>>> c.add(text, 40, datetime(2024, 1, 1, tzinfo=timezone.utc))
1
>>> [(f.code, f.title, f.evidence[0].locator, f.count) for f in c.findings("logs.text")]
[('DUMP.PYTHON_EXCEPTION', 'KeyError: 42', 'line:41', 1)]
>>> [(e.kind, e.ref.locator, e.ts.year) for e in c.events("logs.text")]
[('dump.exception', 'line:41', 2024)]
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from backline.analyzers.dumps.model import CrashReport
from backline.analyzers.dumps.text import parse_text_crash_text
from backline.analyzers.dumps.text.analyzer import crash_finding, finding_code
from backline.model import Event, Finding, TsQuality

#: Distinct crash signatures kept per file.
MAX_GROUPS = 500
#: Traces parsed per file, and characters of trace text parsed per file (the parser reads
#: about 5 MB/s: this bounds a trace-dense log to seconds); more are counted and warned about.
MAX_PARSED = 20_000
MAX_PARSED_CHARS = 64 * 1024 * 1024
#: Lines referenced per finding (the first occurrences, plus the last one).
MAX_REFS = 5
_CACHE = 2_000
_CACHE_CHARS = 16 * 1024 * 1024
#: A head-line message that may itself start or belong to a trace (then no caching by the rest).
_HEAD_HINT = re.compile(r"exception|error|throwable|traceback|fatal|panic|unhandled|thread|deadlock|"
                        r"\bat |^\s|caused by", re.I)


@dataclass(slots=True)
class CrashGroup:
    """Occurrences of one crash signature in a log."""

    report: CrashReport            # the first occurrence
    lines: list[int] = field(default_factory=list)
    count: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    last_line: int = 0
    first_ts: datetime | None = None          # time stamp of the first occurrence (file order)
    first_quality: TsQuality = TsQuality.NONE


class LogCrashes:
    """Collects the stack traces of one log file, grouped by signature."""

    def __init__(self, artifact: str) -> None:
        self.artifact = artifact
        self.groups: dict[tuple[str, str], CrashGroup] = {}
        self.parsed = 0
        self.parsed_chars = 0
        self.skipped = 0           # traces not parsed (MAX_PARSED reached)
        self.dropped = 0           # traces of signatures past MAX_GROUPS
        self.failed = 0            # records whose trace parser raised (a bug there, counted)
        self.first_failure = ""
        self._cache: dict[str, list[tuple[int, CrashReport]]] = {}
        self._cached_chars = 0

    def _parse(self, text: str) -> list[tuple[int, CrashReport]]:
        try:
            return [(int(r.extra.get("line") or 1), r) for r in parse_text_crash_text(text)]
        except Exception as exc:  # noqa: BLE001 - one bad trace must not cost the log's other findings
            self.failed += 1
            if not self.first_failure:
                self.first_failure = f"{type(exc).__name__}: {exc}"[:200]
            return []

    def add(self, text: str, line: int, ts: datetime | None, message: str | None = None,
            ts_quality: TsQuality | None = None, line_map: Sequence[int] | None = None) -> int:
        """Parse a record's ``text`` (its head line is log line ``line``); returns traces found.

        ``message`` is the head line's message (header removed).  When it does
        not look like part of a trace, the parse is cached by the record's
        continuation lines alone, so the same trace logged again under another
        head line (another time stamp) is not parsed again.  ``line_map`` gives
        the log line of each line of ``text`` when they are not consecutive (a
        trace joined from records with their own headers, :mod:`.trace_join`).
        """
        nl = text.find("\n")
        key = text
        if message is not None and nl > 0 and not _HEAD_HINT.search(message):
            key = "\n" + text[nl + 1:]            # the head line plays no part: key on the rest
        reps = self._cache.get(key)
        if reps is None:
            if self.parsed >= MAX_PARSED or self.parsed_chars >= MAX_PARSED_CHARS:
                self.skipped += 1
                return 0
            self.parsed += 1
            self.parsed_chars += len(text)
            reps = self._parse(text)
            if key is not text and any(rel < 2 for rel, _ in reps):
                key = text                           # the head line was part of a trace after all
            if len(self._cache) < _CACHE and self._cached_chars + len(key) <= _CACHE_CHARS:
                self._cache[key] = reps
                self._cached_chars += len(key)
        for rel, rep in reps:
            gkey = (finding_code(rep), rep.signature or _fallback_key(rep))
            g = self.groups.get(gkey)
            if g is None:
                if len(self.groups) >= MAX_GROUPS:
                    self.dropped += 1
                    continue
                g = self.groups[gkey] = CrashGroup(rep)
            at = line + rel - 1 if line_map is None else line_map[min(rel, len(line_map)) - 1]
            if g.count == 0:
                g.first_ts = ts
                g.first_quality = (ts_quality or TsQuality.EXACT) if ts is not None else TsQuality.NONE
            g.count += 1
            if len(g.lines) < MAX_REFS - 1:
                g.lines.append(at)
            g.last_line = at
            if ts is not None:
                if g.first_seen is None or ts < g.first_seen:
                    g.first_seen = ts
                if g.last_seen is None or ts > g.last_seen:
                    g.last_seen = ts
        return len(reps)

    def _finding(self, g: CrashGroup, analyzer: str) -> Finding:
        lines = g.lines if g.last_line in g.lines else g.lines + [g.last_line]
        return crash_finding(g.report, self.artifact, lines, analyzer, count=g.count,
                             first_seen=g.first_seen, last_seen=g.last_seen,
                             extra={"count": g.count, "first_line": g.lines[0],
                                    "last_line": g.last_line, "source": "log"})

    def findings(self, analyzer: str) -> Iterator[Finding]:
        """One crash finding per signature, most frequent first (then by first line)."""
        groups = sorted(self.groups.values(), key=lambda g: (-g.count, g.lines[0]))
        for g in groups:
            yield self._finding(g, analyzer)

    def events(self, analyzer: str) -> Iterator[Event]:
        """One timeline event per signature, at its first occurrence in the file.

        Kind ``dump.exception`` (``dump.hang`` for a thread dump without an
        exception), the crash finding's severity and title, and the
        ``line:N`` of the trace's first line: the case-wide correlation links
        it with the other evidence of the same moment.
        """
        for g in sorted(self.groups.values(), key=lambda g: g.lines[0]):
            f = self._finding(g, analyzer)
            kind = "dump.exception" if g.report.exception is not None else "dump.hang"
            yield Event(ts=g.first_ts, artifact=self.artifact, kind=kind, summary=f.title[:300],
                        severity=f.severity, ref=f.evidence[0], ts_quality=g.first_quality,
                        analyzer=analyzer)


def _fallback_key(rep: CrashReport) -> str:
    """Grouping key of a report without a signature: exception type and top frame."""
    e = rep.exception
    if e is None:
        return rep.source_format
    top = e.frames[0].function if e.frames else ""
    return f"{e.type}|{top}"
