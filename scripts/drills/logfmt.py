"""Log layouts the drills' programs write with Python's ``logging``, and a clock that can backdate.

The drills' services are real processes that log through ``logging``; the hours before an
incident (chronic warnings, routine lines, an old crash) are written by the same loggers and
layouts with the record time set from a replayed clock (:func:`at`), so a log covers a working
day without the drill lasting one.  Only the standard library is used: service programs import
this module in their own process.

>>> import io, logging
>>> log, stream = logging.getLogger("doc.example"), io.StringIO()
>>> h = logging.StreamHandler(stream); h.addFilter(Backdate()); h.setFormatter(layout("log4j"))
>>> log.addHandler(h); log.propagate = False
>>> with at(1773496923.25): log.warning("pool %s low", "db")
>>> stream.getvalue()
'2026-03-14 14:02:03,250 [MainThread] WARN  doc.example - pool db low\\n'
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from contextlib import contextmanager
from datetime import datetime, timezone

_REPLAY: list[float | None] = [None]


@contextmanager
def at(ts: float):
    """Records logged inside this block carry the time ``ts`` (epoch seconds)."""
    old = _REPLAY[0]
    _REPLAY[0] = ts
    try:
        yield
    finally:
        _REPLAY[0] = old


class Backdate(logging.Filter):
    """Handler filter: give a record the replayed time when one is set."""

    def filter(self, record: logging.LogRecord) -> bool:
        ts = _REPLAY[0]
        if ts is not None:
            record.created = ts
            record.msecs = (ts - int(ts)) * 1000
        return True


class _Utc(logging.Formatter):
    converter = time.gmtime


class Log4j(_Utc):
    """``2026-03-14 14:02:03,250 [worker-2] WARN  com.x.Y - text`` (log4j's common pattern)."""

    LEVELS = {"WARNING": "WARN", "CRITICAL": "FATAL"}

    def format(self, record: logging.LogRecord) -> str:
        record.level4j = self.LEVELS.get(record.levelname, record.levelname)
        return super().format(record)


class Syslog(_Utc):
    """``Mar 14 14:02:03 host prog[pid]: <warning> text``: each traceback line a record of its own."""

    def __init__(self, program: str, host: str = "") -> None:
        super().__init__()
        self.program = program
        self.host = host or socket.gethostname().split(".")[0]

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%b %d %H:%M:%S", time.gmtime(record.created))
        head = f"{stamp} {self.host} {self.program}[{record.process}]: "
        text = record.getMessage()
        lines = [f"<{record.levelname.lower()}> {text}"]
        if record.exc_info:
            lines += self.formatException(record.exc_info).splitlines()
        return "\n".join(head + line for line in lines)


class JsonLines(_Utc):
    """One JSON object a line: ``{"ts": ..., "level": ..., "logger": ..., "msg": ...}``."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, timezone.utc)
        doc = {"ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
               "level": record.levelname.lower(), "service": self.service,
               "logger": record.name, "msg": record.getMessage()}
        doc.update(getattr(record, "fields", {}) or {})
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, sort_keys=False)


def layout(kind: str, program: str = "app") -> logging.Formatter:
    """A formatter by name: ``python`` (logging's usual layout), ``python-threads``, ``log4j``,
    ``iso`` (ISO 8601 with ``Z``), ``syslog``, ``json``."""
    if kind == "python":
        return _Utc("%(asctime)s %(levelname)s %(name)s: %(message)s")
    if kind == "python-threads":
        return _Utc("%(asctime)s %(levelname)-8s [%(threadName)s] %(name)s %(message)s")
    if kind == "log4j":
        return Log4j("%(asctime)s [%(threadName)s] %(level4j)-5s %(name)s - %(message)s")
    if kind == "iso":
        f = _Utc("%(asctime)s.%(msecs)03dZ %(levelname)s %(process)d --- [%(threadName)s] %(name)s : %(message)s",
                 datefmt="%Y-%m-%dT%H:%M:%S")
        return f
    if kind == "syslog":
        return Syslog(program)
    if kind == "json":
        return JsonLines(program)
    raise ValueError(f"unknown layout {kind!r}")


def setup(path: str | os.PathLike, kind: str, *names: str, program: str = "app",
          level: int = logging.DEBUG) -> logging.Logger:
    """Loggers ``names`` append to ``path`` in layout ``kind``; returns the first logger."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.addFilter(Backdate())
    handler.setFormatter(layout(kind, program))
    for name in names:
        lg = logging.getLogger(name)
        lg.addHandler(handler)
        lg.setLevel(level)
        lg.propagate = False
    return logging.getLogger(names[0])


def close(*loggers: logging.Logger) -> None:
    """Close and remove the handlers :func:`setup` gave ``loggers`` (the file is complete)."""
    for lg in loggers:
        for h in lg.handlers[:]:
            h.close()
            lg.removeHandler(h)


def access_line(client: str, ts: float, method: str, path: str, status: int, size: int,
                agent: str, took_s: float | None = None, upstream: str = "") -> str:
    """An access-log line in nginx's ``combined`` layout (plus request time when given)."""
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(ts))
    line = f'{client} - - [{stamp}] "{method} {path} HTTP/1.1" {status} {size} "-" "{agent}"'
    if took_s is not None:
        line += f" rt={took_s:.3f}"
        if upstream:
            line += f' upstream="{upstream}"'
    return line
