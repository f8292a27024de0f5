"""Driving the compiled per-line engine over a file (:mod:`._engine` is the compiled part).

:func:`line_engine` and :func:`record_engine` build the engine for a file of a
given header format; :func:`engine_blocks` streams the file's blocks through it
and learns another header format when the lines stop matching the known ones
(:data:`RUN_LINES` text lines in a row that match none: another application's
lines, a layout changed after a restart, logs joined into one file).
"""

from __future__ import annotations

from datetime import timezone
from pathlib import Path
from typing import Callable, Iterator

from backline.analyzers.logs._engine import LineEngine, RecordEngine
from backline.analyzers.logs.formats import _HTTP_STATUS, LogFormat, detect_format
from backline.analyzers.logs.timestamps import _FIND, FileClock

#: Lines read to learn a file's format (also the sample after a format change).
SAMPLE_LINES = 400
#: Consecutive text lines matching none of the header patterns before a format is
#: learned from them; at most this many failed attempts per file (free text, traces).
RUN_LINES = 32
MAX_ATTEMPTS = 16

#: Level words in a message without a level field (case-insensitive): the first one decides.
#: A type name ending in Error or Exception and followed by its message (``java.lang.OutOfMemoryError:
#: Java heap space``, ``KeyError: 'x'``) is an error too: a runtime's throwable printed bare.  Syslog's
#: short level names count only as a level is written (``crit:``, ``<err>``, ``[emerg]``), never as
#: a key (``err=nil``).
MESSAGE_LEVEL = (rb"\b(?:fatal|critical|error|severe|warn(?:ing)?|panic|failed|failure|exception)\b"
                 rb"|\b(?:crit|emerg|err)(?=[:>\]])"
                 rb"|(?-i:(?<=[a-z0-9])(?:Error|Exception))(?=:|\s*$)")


def _clock(path: str | Path | None, tz, collected=None) -> FileClock:
    return FileClock(str(path) if path else None, tz, collected)


def line_engine(fmt: LogFormat, keys, path: str | Path | None, *, keep_shapes: bool = False,
                on_new: Callable | None = None, tz=timezone.utc) -> LineEngine:
    """An engine that mines every physical line (``backline logs templates``)."""
    clock = _clock(path, tz)
    engine = LineEngine(keys, fmt.engine_patterns(), clock.year, clock.day, keep_shapes, on_new)
    engine.set_limit(clock.limit_us)
    return engine


def record_engine(fmt: LogFormat, keys, path: str | Path | None, *, cont: str,
                  severity_of: Callable[[str], int], tz=timezone.utc, collected=None) -> RecordEngine:
    """An engine that groups lines into records (the ``logs.text`` analyzer): a line of
    a header format that does not match it and has no time stamp near its start, or
    starts with a blank, continues the record before it; without a header format a line
    continues a record when ``cont`` matches it."""
    clock = _clock(path, tz, collected)
    engine = RecordEngine(keys, fmt.engine_patterns(), clock.year, clock.day, False, None,
                        has_header=fmt.name != "plain", cont=cont.encode(), anyts=_FIND.pattern.encode(),
                        msglevel=MESSAGE_LEVEL,
                        status=_HTTP_STATUS.pattern.encode() if fmt.name == "access-log" else b"",
                        severity_of=severity_of)
    engine.set_limit(clock.limit_us)
    return engine


def engine_blocks(src, engine: LineEngine, formats: list[LogFormat]) -> Iterator[None]:
    """Stream every block of ``src`` through ``engine``, yielding after each (the caller
    takes the engine's outputs); a format learned on the way is added to the engine and
    appended to ``formats``.  At the end the source's stats are filled."""
    tried: set[str] = {f.pattern for f in formats}
    attempts = 0
    for block in src.blocks():
        start = 0
        while True:
            watch = attempts < MAX_ATTEMPTS and engine.patterns_in_use < 8
            at = engine.feed(block, start, RUN_LINES if watch else 0)
            if at < 0:
                break
            attempts += 1
            sample = block[at: at + (1 << 16)].decode("utf-8", "replace").split("\n")[:SAMPLE_LINES]
            new = detect_format(sample)
            if new.compiled and new.pattern not in tried and new.name not in ("plain", "columns"):
                tried.add(new.pattern)
                engine.add_patterns(new.engine_patterns())
                formats.append(new)
                start = at                       # read the run again, with the new pattern
            else:
                engine.feed(block, at, 0)        # no format there: read the rest as it is
                break
        yield
    src.finish_engine(engine)
