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
from itertools import islice
from datetime import datetime, timezone
from typing import Iterator
from zoneinfo import ZoneInfo

from backline.analyzers.logs.engine import SAMPLE_LINES
from backline.analyzers.logs.formats import LogFormat, detect_format
from backline.analyzers.logs.reader import LogSource, open_log  # noqa: F401  (doctest)
from backline.analyzers.logs.timestamps import FileClock, TsParser
from backline.model import Severity, TsQuality

#: Longest record text kept (head line plus continuation lines).
MAX_RECORD = 64 * 1024

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
    "vrb": Severity.INFO, "inf": Severity.INFO, "wrn": Severity.MEDIUM, "ftl": Severity.CRITICAL,
    "info": Severity.INFO, "information": Severity.INFO, "notice": Severity.LOW,
    "warn": Severity.MEDIUM, "warning": Severity.MEDIUM,
    "error": Severity.HIGH, "err": Severity.HIGH, "severe": Severity.HIGH, "failure": Severity.HIGH,
    "fatal": Severity.CRITICAL, "critical": Severity.CRITICAL, "crit": Severity.CRITICAL,
    "alert": Severity.CRITICAL, "emerg": Severity.CRITICAL, "emergency": Severity.CRITICAL,
    "failed": Severity.HIGH, "panic": Severity.CRITICAL,
}
_MSG_LEVEL = re.compile(r"\b(FATAL|CRITICAL|ERROR|SEVERE|WARN(?:ING)?|PANIC)\b|"
                        r"\b(?:error|fatal|failed|failure|exception|panic)\b|"
                        r"\b(?:crit|emerg|err)(?=[:>\]])|"
                        r"(?-i:(?<=[a-z0-9])(?:Error|Exception))(?=:|\s*$)", re.I)


def level_severity(level: str) -> Severity | None:
    """Severity of a header level word (``E``, ``WARN``, ``severe`` ...), or ``None``."""
    return _LEVEL_MAP.get(level.strip().lower()) if level else None


def message_severity(message: str) -> Severity:
    """Severity guessed from a message that has no level field."""
    m = _MSG_LEVEL.search(message)
    if not m:
        return Severity.INFO
    word = m.group().lower()
    if word in ("fatal", "critical", "crit", "panic"):
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
                 fmt: LogFormat | None = None) -> Iterator[LogRecord]:
    """Yield the records of an opened log (see module docstring)."""
    for row in read_record_rows(source, tz, fmt):
        yield LogRecord(*row)


class _NoMiner:
    """A stand-in miner for reading records without templates: every message is shape 0."""

    def __init__(self) -> None:
        from backline.analyzers.logs._engine import KeyTable

        self.keys = KeyTable(lambda _m: (0, 0))

    @staticmethod
    def add_block(messages: list[str]) -> list[int]:
        return [0] * len(messages)


def read_record_rows(source: LogSource, tz: ZoneInfo | timezone = timezone.utc,
                     fmt: LogFormat | None = None) -> Iterator[RecordRow]:
    """Like :func:`read_records`, but each record is a plain tuple (:data:`ROW_FIELDS`):
    the rows of :func:`read_record_blocks` (no templates mined)."""
    for block in read_record_blocks(source, _NoMiner(), tz, fmt):
        for i in range(block.n):
            yield block.row(i)


def _json_record_rows(source: LogSource, fmt: LogFormat, tz: ZoneInfo | timezone) -> Iterator[RecordRow]:
    """The records of a JSON-lines log: each line is parsed by :meth:`.formats.LogFormat.split`
    (JSON), lines that are not JSON join the record before them when they look like
    continuations (:data:`_CONT`).  The one format the compiled engine does not split."""
    parser = TsParser(tz, clock=FileClock(str(source.path), tz, getattr(source, "collected", None)))
    cur: tuple | None = None         # the pending record's row (see ROW_FIELDS)
    parts: list[str] | None = None   # its lines when it has continuation lines
    end = size = 0
    for n, text in source.numbered():
        h = fmt.split(text)
        if cur is not None and h is None and text and _CONT.match(text):
            end = n
            if parts is None:
                parts = [cur[11]]
                size = len(cur[11])
            if size < MAX_RECORD:
                parts.append(text)
                size += len(text) + 1
            continue
        if cur is not None:
            yield cur if parts is None else _finish(cur, end, parts)
            parts = None
        if h is None:
            cur = (n, n, None, TsQuality.NONE, "", message_severity(text), "", "", "", "", text, text)
            continue
        ts, q = parser.parse(h.ts_kind, h.ts_text) if h.ts_text else (None, TsQuality.NONE)
        cur = (n, n, ts, q, h.level, _severity(h.level, h.message), h.component.strip(), h.pid, h.thread,
               h.host, h.message, text)
    if cur is not None:
        yield cur if parts is None else _finish(cur, end, parts)


def _finish(cur: RecordRow, end: int, parts: list[str]) -> RecordRow:
    """The pending record's row with its continuation lines joined."""
    text = "\n".join(parts)
    if len(text) > MAX_RECORD:
        text = text[:MAX_RECORD]
    return cur[:1] + (end,) + cur[2:11] + (text,)


#: Records per block on the Python path (JSON-lines logs).
ROW_BLOCK = 4096


def learn_format(source: LogSource) -> tuple[LogFormat, list[tuple[int, str]]]:
    """The header format of an opened log, from its first lines (which are returned)."""
    it = source.numbered()
    sample: list[tuple[int, str]] = []
    for ln in it:
        sample.append(ln)
        if len(sample) >= SAMPLE_LINES:
            break
    fmt = detect_format([t for _, t in sample if t and not _CONT.match(t)])
    source.format_name = fmt.name
    return fmt, sample


def _severity_code(level: str) -> int:
    sev = level_severity(level)
    return -1 if sev is None else int(sev)


def read_record_blocks(source: LogSource, miner, tz: ZoneInfo | timezone = timezone.utc,
                       fmt: LogFormat | None = None, *, first_line: int = 1,
                       formats: list[LogFormat] | None = None) -> "Iterator[RecordBlock]":
    """The records of an opened log as column blocks (:class:`.blocks.RecordBlock`), their
    messages learned by ``miner`` (a :class:`.miner.TemplateMiner`).

    The compiled engine reads every format but JSON lines (split in Python, line by
    line, by :func:`read_record_rows`).  ``first_line`` numbers the first line read (a
    byte range of a file); ``formats``, when given, receives the header formats used
    (the first, and any learned further on).  Grouping, severities and time stamps are as
    :func:`read_records` describes.
    """
    from backline.analyzers.logs.blocks import RecordBlock
    from backline.analyzers.logs.engine import engine_blocks, record_engine

    if fmt is None:
        fmt, _ = learn_format(source)
    source.format_name = fmt.name
    if not fmt.compiled:
        rows = _json_record_rows(source, fmt, tz)
        while True:
            batch = list(islice(rows, ROW_BLOCK))
            if not batch:
                return
            yield RecordBlock.from_rows(batch, miner.add_block([r[10].replace("\n", " ") for r in batch]))
    engine = record_engine(fmt, miner.keys, source.path, cont=_CONT.pattern, severity_of=_severity_code,
                           tz=tz, collected=getattr(source, "collected", None))
    engine.lines = first_line - 1              # a byte range of the file: its lines' numbers
    if formats is None:
        formats = []
    formats[:] = [fmt]                         # the formats in use (more when learned on the way)
    for _ in engine_blocks(source, engine, formats):
        d = engine.take_records()
        if d["n"]:
            yield RecordBlock.from_engine(d, tz)
    engine.finish()
    d = engine.take_records()
    if d["n"]:
        yield RecordBlock.from_engine(d, tz)
