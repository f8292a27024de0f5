"""Records: log lines grouped with their continuation lines, headers split off.

:func:`read_records` learns the header format and timestamp shape from a
sample of the file, then yields :class:`LogRecord` objects.  A line that does
not start with the file's header (a Java/Python/.NET stack trace line, an
indented continuation) is appended to the record before it.  Record text is
capped (:data:`MAX_RECORD`) so a runaway record never grows without bound.

>>> import tempfile, os
>>> p = os.path.join(tempfile.mkdtemp(), "app.log")
>>> _ = open(p, "w").write(
...     "2024-01-02 03:04:05,123 ERROR [main] a.B: boom\\n"
...     "java.lang.IllegalStateException: x\\n\\tat a.B.run(B.java:10)\\n"
...     "2024-01-02 03:04:06,000 INFO [main] a.B: ok\\n")
>>> recs = list(read_records(open_log(p)))
>>> [(r.line, r.end_line, r.level, r.message) for r in recs]
[(1, 3, 'ERROR', 'boom'), (4, 4, 'INFO', 'ok')]
>>> recs[0].ts.isoformat(), recs[0].ts_quality.value
('2024-01-02T03:04:05.123000+00:00', 'exact')
>>> stack_trace_kind(recs[0].text)
'java'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from datetime import datetime, timezone
from typing import Iterator
from zoneinfo import ZoneInfo

from backline.analyzers.logs.formats import LogFormat, detect_format
from backline.analyzers.logs.reader import LogSource, open_log  # noqa: F401  (doctest)
from backline.analyzers.logs.timestamps import TsParser, find_timestamp
from backline.model import Severity, TsQuality

#: Longest record text kept (head line plus continuation lines).
MAX_RECORD = 64 * 1024
#: Lines read to learn a file's format.
SAMPLE_LINES = 400

_CONT = re.compile(
    r"^(?:\s|at |Caused by:|Traceback \(most recent call last\)|\.\.\. \d+ (?:more|common)|"
    r"[\w$.]+(?:Exception|Error|Throwable)(?::|$)|--- End of|Exception in thread|\}|\))")

_JAVA = re.compile(r"^\s+at [\w$.<>/]+\(.*\)\s*$", re.M)
_PY = re.compile(r"^Traceback \(most recent call last\):\s*$", re.M)
_NET = re.compile(r"^\s+at [\w.`<>\[\],$]+ ?\(.*\)(?:\s+\[0x[0-9a-f]+\])?(?: in .+:(?:line )?\d+)?\s*$", re.M)
_NET_HINT = re.compile(r"\) \[0x[0-9a-f]+\] in |:line \d+\s*$", re.M)

_LEVEL_MAP = {
    "v": Severity.INFO, "d": Severity.INFO, "i": Severity.INFO, "w": Severity.MEDIUM,
    "e": Severity.HIGH, "f": Severity.CRITICAL, "a": Severity.CRITICAL,
    "trace": Severity.INFO, "debug": Severity.INFO, "dbg": Severity.INFO, "fine": Severity.INFO,
    "finer": Severity.INFO, "finest": Severity.INFO, "config": Severity.INFO, "verbose": Severity.INFO,
    "info": Severity.INFO, "information": Severity.INFO, "notice": Severity.LOW,
    "warn": Severity.MEDIUM, "warning": Severity.MEDIUM,
    "error": Severity.HIGH, "err": Severity.HIGH, "severe": Severity.HIGH, "failure": Severity.HIGH,
    "fatal": Severity.CRITICAL, "critical": Severity.CRITICAL, "crit": Severity.CRITICAL,
    "alert": Severity.CRITICAL, "emerg": Severity.CRITICAL, "emergency": Severity.CRITICAL,
    "failed": Severity.HIGH, "panic": Severity.CRITICAL,
}
_MSG_LEVEL = re.compile(r"\b(FATAL|CRITICAL|ERROR|SEVERE|WARN(?:ING)?|PANIC)\b|"
                        r"\b(?:error|fatal|failed|failure|exception|panic)\b", re.I)


def level_severity(level: str) -> Severity | None:
    """Severity of a header level word (``E``, ``WARN``, ``severe`` ...), or ``None``."""
    return _LEVEL_MAP.get(level.strip().lower()) if level else None


def message_severity(message: str) -> Severity:
    """Severity guessed from a message that has no level field."""
    m = _MSG_LEVEL.search(message)
    if not m:
        return Severity.INFO
    word = m.group().lower()
    if word in ("fatal", "critical", "panic"):
        return Severity.CRITICAL
    if word.startswith("warn"):
        return Severity.MEDIUM
    return Severity.HIGH


def stack_trace_kind(text: str) -> str:
    """'java', 'python', 'dotnet' when ``text`` holds a stack trace, else ''."""
    if "\n" not in text:
        return ""
    if _PY.search(text):
        return "python"
    if _NET_HINT.search(text) and _NET.search(text):
        return "dotnet"
    if _JAVA.search(text):
        return "java"
    if _NET.search(text):
        return "dotnet"
    return ""


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One log record: a head line and its continuation lines."""

    line: int                     # 1-based line number of the head line
    end_line: int                 # last line of the record
    ts: datetime | None
    ts_quality: TsQuality
    level: str
    severity: Severity
    component: str
    pid: str
    thread: str
    host: str
    message: str                  # message part of the head line (header removed)
    text: str                     # whole record: head line + continuation lines

    @property
    def multiline(self) -> bool:
        return self.end_line > self.line


_EMPTY = ("",)
_SEV_CACHE: dict[str, Severity | None] = {}


def _severity(level: str, message: str) -> Severity:
    if level:
        sev = _SEV_CACHE.get(level)
        if sev is None:
            sev = level_severity(level)
            if len(_SEV_CACHE) < 1000:
                _SEV_CACHE[level] = sev
        if sev is not None:
            return sev
    return message_severity(message)


#: A record as a plain tuple, in :class:`LogRecord` field order (the analyzer's fast path):
#: ``(line, end_line, ts, ts_quality, level, severity, component, pid, thread, host, message, text)``.
RecordRow = tuple
ROW_FIELDS = ("line", "end_line", "ts", "ts_quality", "level", "severity", "component", "pid", "thread",
              "host", "message", "text")


def read_records(source: LogSource, tz: ZoneInfo | timezone = timezone.utc,
                 fmt: LogFormat | None = None, default_year: int | None = None) -> Iterator[LogRecord]:
    """Yield the records of an opened log (see module docstring)."""
    for row in read_record_rows(source, tz, fmt, default_year):
        yield LogRecord(*row)


def read_record_rows(source: LogSource, tz: ZoneInfo | timezone = timezone.utc,
                     fmt: LogFormat | None = None, default_year: int | None = None) -> Iterator[RecordRow]:
    """Like :func:`read_records`, but each record is a plain tuple (:data:`ROW_FIELDS`).

    Building a frozen dataclass per line costs more than the rest of the
    record split; the analyzer works on these rows and makes a
    :class:`LogRecord` only for the few records it reports (``LogRecord(*row)``).
    """
    it = source.numbered()
    sample: list[tuple[int, str]] = []
    for ln in it:
        sample.append(ln)
        if len(sample) >= SAMPLE_LINES:
            break
    if fmt is None:
        fmt = detect_format([t for _, t in sample if t and not _CONT.match(t)])
    source.format_name = fmt.name
    has_header = fmt.name != "plain"
    parser = TsParser(tz, default_year=default_year)

    rx = fmt.regex
    plain_regex = fmt.name not in ("json-lines", "journald-json", "access-log")
    gi = rx.groupindex
    # the fields by position in m.groups("") + ("",): a missing group reads the final ""
    pick = itemgetter(*[gi[k] - 1 if k in gi else -1
                        for k in ("ts", "level", "component", "pid", "thread", "host", "msg")])
    kind = fmt.ts_kind
    parse = parser.parse
    # naive ISO stamps read in UTC: one C call (text + "+00:00"); off after a few misses
    fast_iso = kind == "iso" and parser.tz is timezone.utc and plain_regex
    fromiso = datetime.fromisoformat
    exact, no_ts = TsQuality.EXACT, TsQuality.NONE
    sev_cache = _SEV_CACHE
    misses = 0
    cur: tuple | None = None         # the pending record's row (see ROW_FIELDS)
    parts: list[str] | None = None   # its lines when it has continuation lines
    end = 0
    size = 0
    for n, text in chain(sample, it):
        if plain_regex:
            m = rx.match(text)
            fields = None if m is None else pick(m.groups("") + _EMPTY)
        else:
            h = fmt.split(text)
            fields = None if h is None else (h.ts_text, h.level, h.component, h.pid, h.thread, h.host,
                                              h.message)
        if cur is not None:
            if has_header:
                is_cont = fields is None and (not text or text[0] in " \t"
                                              or find_timestamp(text, 24) is None)
            else:
                is_cont = bool(text) and _CONT.match(text) is not None
            if is_cont:
                end = n
                if parts is None:
                    parts = [cur[11]]
                    size = len(cur[11])
                if size < MAX_RECORD:
                    parts.append(text)
                    size += len(text) + 1
                continue
            yield cur if parts is None else _finish(cur, end, parts)
            parts = None
        if fields is None:
            cur = (n, n, None, no_ts, "", message_severity(text), "", "", "", "", text, text)
            continue
        ts_text, level, comp, pid, thread, host, msg = fields
        if not ts_text:
            ts, q = None, no_ts
        elif fast_iso:
            try:
                ts, q = fromiso(ts_text + "+00:00"), exact
            except ValueError:
                misses += 1
                if misses > 16:
                    fast_iso = False
                ts, q = parse(kind, ts_text)
        elif plain_regex:
            ts, q = parse(kind, ts_text)
        else:
            ts, q = parse(h.ts_kind, ts_text)
        sev = sev_cache.get(level) if level else None
        if sev is None:
            sev = _severity(level, msg)
        cur = (n, n, ts, q, level, sev, comp.strip(), pid, thread, host, msg, text)
    if cur is not None:
        yield cur if parts is None else _finish(cur, end, parts)


def _finish(cur: RecordRow, end: int, parts: list[str]) -> RecordRow:
    """The pending record's row with its continuation lines joined."""
    text = "\n".join(parts)
    if len(text) > MAX_RECORD:
        text = text[:MAX_RECORD]
    return cur[:1] + (end,) + cur[2:11] + (text,)
