"""The ``logs.evtx`` analyzer: Windows event logs through the Rust-backed ``evtx`` package.

Every chunk is read (also past a header chunk count that is too low, as in
dirty files); a chunk or record that does not parse is counted, skipped and
reported as a warning.  The native reader runs in a worker process, one chunk at a
time, so a damaged chunk on which it loops or allocates without end costs that
chunk only (:func:`read_evtx`, :mod:`.evtx_worker`).  Event data fields are kept.

Findings (codes documented in docs/logs.md):

``EVTX.SERVICE_CRASH``       7031 / 7034 from the Service Control Manager, per service
``EVTX.APP_CRASH``           1000 (crash), 1002 (hang), 1001 (WER report) per app + faulting module
``EVTX.UNEXPECTED_SHUTDOWN`` 6008 (EventLog), 41 (Kernel-Power)
``EVTX.DISK_ERROR``          7, 51, 153 (disk drivers), 55 (NTFS)
``EVTX.TOP_ERRORS``          critical/error events ranked by provider and event id

Facts include ``evtx.event_index``: every kind of event (provider + id) with its
count and status field values (:mod:`.evtx_index`), for rules over events that
have no finding of their own.
"""

from __future__ import annotations

import json
import os
import re
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from backline.analyzers.base import AnalysisContext, Analyzer, Output
from backline.analyzers.logs.evtx_index import EventIndex
from backline.errors import FormatError
from backline.model import Artifact, ArtifactKind, Event, EvidenceRef, Fact, Finding, Severity, TsQuality

NAME = "logs.evtx"
MAX_TOP_ERRORS = 10
EXAMPLES = 3

#: Windows event levels -> severity (0 = LogAlways / audit, taken as info).
LEVELS = {0: Severity.INFO, 1: Severity.CRITICAL, 2: Severity.HIGH, 3: Severity.MEDIUM,
          4: Severity.INFO, 5: Severity.INFO}
_DISK_PROVIDER = re.compile(r"disk|atapi|ahci|nvme|iastor|storport|scsi|stor", re.I)
_CHUNK = re.compile(r"chunk number (\d+)")
#: Wall-clock seconds the native reader may spend on one 64 KiB chunk (it takes milliseconds).
CHUNK_SECONDS = 10.0
_STARTUP_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class EvtxRecord:
    """One event, reduced to what the findings use; ``data`` keeps all event data fields."""

    record_id: int
    ts: datetime | None
    provider: str
    event_id: int
    level: int
    channel: str
    computer: str
    data: dict[str, Any] | list[Any]

    def values(self) -> list[str]:
        """Event data values in order (named or not)."""
        d = self.data
        if isinstance(d, dict):
            return [str(v) for v in d.values()]
        return [str(v) for v in d]

    def field(self, name: str, index: int) -> str:
        """A named event data field, or the ``index``-th unnamed one ('' when absent)."""
        d = self.data
        if isinstance(d, dict):
            v = d.get(name)
            if v is None:
                vals = list(d.values())
                v = vals[index] if index < len(vals) else ""
            return "" if v is None else str(v)
        return str(d[index]) if index < len(d) and d[index] is not None else ""


def _event_data(ev: dict[str, Any]) -> dict[str, Any] | list[Any]:
    ed = ev.get("EventData") or ev.get("UserData") or {}
    if not isinstance(ed, dict):
        return [ed]
    data = ed.get("Data", ed)
    if isinstance(data, dict) and "#text" in data and len(data) <= 2:
        t = data["#text"]
        return t if isinstance(t, list) else [t]
    if isinstance(data, dict):
        return {k: v for k, v in data.items() if not k.startswith("#")}
    if isinstance(data, list):
        out: dict[str, Any] = {}
        plain: list[Any] = []
        for item in data:
            if isinstance(item, dict) and "#attributes" in item:
                out[str(item["#attributes"].get("Name", len(out)))] = item.get("#text")
            else:
                plain.append(item)
        return out if out and not plain else plain or list(out.values())
    return [data]


def _parse(raw: dict[str, Any]) -> EvtxRecord:
    ev = json.loads(raw["data"])["Event"]
    sysd = ev.get("System", {})
    eid = sysd.get("EventID")
    eid = eid.get("#text") if isinstance(eid, dict) else eid
    prov = sysd.get("Provider", {}).get("#attributes", {})
    tc = sysd.get("TimeCreated", {}).get("#attributes", {}).get("SystemTime")
    ts = None
    if tc:
        try:
            ts = datetime.fromisoformat(tc.replace("Z", "+00:00"))
        except ValueError:
            ts = None
    return EvtxRecord(int(raw.get("event_record_id") or sysd.get("EventRecordID") or 0), ts,
                      str(prov.get("Name") or prov.get("EventSourceName") or ""), int(eid or 0),
                      int(sysd.get("Level") or 0), str(sysd.get("Channel") or ""),
                      str(sysd.get("Computer") or ""), _event_data(ev))


def read_evtx(path: str | Path, artifact: str, problems: list[str], *,
              chunk_seconds: float | None = None) -> Iterator[EvtxRecord]:
    """Every readable record of an .evtx file; unreadable chunks / records go to ``problems``.

    The native reader runs in a worker process (:mod:`.evtx_worker`), one chunk at a time: a
    chunk that it does not finish within ``chunk_seconds`` (the reader loops forever on some
    damaged chunks) or that kills the worker is recorded as a bad chunk and reading goes on
    with the next one in a fresh worker.  Raises :class:`FormatError` when the file header is
    unreadable.  ``chunk_seconds`` defaults to :data:`CHUNK_SECONDS`.
    """
    try:
        import evtx  # noqa: F401 - only to fail early and clearly when the package is missing
    except ImportError as exc:  # pragma: no cover - dependency is declared
        raise FormatError("the 'evtx' package is not installed", artifact=artifact) from exc
    if chunk_seconds is None:
        chunk_seconds = CHUNK_SECONDS
    start = 0
    while True:
        worker = _EvtxWorker.acquire()
        current, n_chunk, finished, fatal = None, 0, False, None
        try:
            for kind, payload in worker.request(Path(path), start, chunk_seconds):
                if kind == b"S":
                    current, n_chunk = int(payload), 0
                elif kind == b"R":
                    n_chunk += 1
                    rid = struct.unpack_from("<Q", payload)[0]
                    try:
                        yield _parse({"event_record_id": rid, "data": payload[8:].decode("utf-8", "replace")})
                    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
                        problems.append(f"record {rid}: {exc}")
                elif kind == b"P":
                    problems.append(payload.decode("utf-8", "replace"))
                    if len(problems) > 100_000:
                        return
                elif kind == b"F":
                    fatal = payload.decode("utf-8", "replace")
                elif kind == b"D":
                    finished = True
            _EvtxWorker.release(worker)
            if fatal is not None:
                raise FormatError(f"not a readable EVTX file: {fatal}", artifact=artifact, locator="offset:0")
        except _WorkerStuck as stuck:
            worker.kill()
            where = current if current is not None else start
            problems.append(f"chunk number {where}: {stuck} after {n_chunk} record(s); rest of the chunk skipped")
            start = where + 1
            continue
        finally:
            if not finished:
                worker.kill()
        return


class _WorkerStuck(Exception):
    """The worker did not answer in time, or died."""


class _EvtxWorker:
    """A live :mod:`.evtx_worker` process; idle ones are kept for the next file."""

    _idle: list["_EvtxWorker"] = []
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.pid = os.getpid()
        script = Path(__file__).with_name("evtx_worker.py")
        self.proc = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True)
        self.buf = bytearray()

    @classmethod
    def acquire(cls) -> "_EvtxWorker":
        with cls._lock:
            while cls._idle:
                w = cls._idle.pop()
                if w.pid == os.getpid() and w.proc.poll() is None:
                    return w
        return cls()

    @classmethod
    def release(cls, w: "_EvtxWorker") -> None:
        with cls._lock:
            if len(cls._idle) < 2 and w.proc.poll() is None:
                cls._idle.append(w)
                return
        w.kill()

    def kill(self) -> None:
        if self.pid != os.getpid():
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass

    def request(self, path: Path, start: int, chunk_seconds: float) -> Iterator[tuple[bytes, bytes]]:
        """Frames of one request; raises :class:`_WorkerStuck` when one chunk takes longer than
        ``chunk_seconds`` of waiting (time the caller spends between frames does not count)."""
        try:
            self.proc.stdin.write(f"{start}\t{os.fsencode(path).hex()}\n".encode())
            self.proc.stdin.flush()
        except OSError as exc:
            raise _WorkerStuck(f"the reader process could not be started ({exc})") from None
        fd = self.proc.stdout.fileno()
        waited = 0.0
        limit = chunk_seconds + _STARTUP_SECONDS
        while True:
            while len(self.buf) >= 5:
                size = struct.unpack_from("<I", self.buf, 1)[0]
                if len(self.buf) < 5 + size:
                    break
                kind, payload = bytes(self.buf[:1]), bytes(self.buf[5:5 + size])
                del self.buf[:5 + size]
                if kind == b"S":
                    waited, limit = 0.0, chunk_seconds
                yield kind, payload
                if kind == b"D":
                    return
            t0 = time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(0.0, limit - waited))
            waited += time.monotonic() - t0
            if not ready:
                raise _WorkerStuck(f"the reader did not finish within {chunk_seconds:g} s (damaged chunk)")
            data = os.read(fd, 1 << 20)
            if not data:
                rc = self.proc.wait()
                raise _WorkerStuck(f"the reader process ended (exit status {rc}; damaged chunk)")
            self.buf += data


@dataclass(slots=True)
class _Group:
    count: int = 0
    first: datetime | None = None
    last: datetime | None = None
    refs: list[EvidenceRef] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def add(self, rec: EvtxRecord, artifact: str, excerpt: str) -> None:
        self.count += 1
        if rec.ts and (self.first is None or rec.ts < self.first):
            self.first = rec.ts
        if rec.ts and (self.last is None or rec.ts > self.last):
            self.last = rec.ts
        if len(self.refs) < EXAMPLES:
            self.refs.append(EvidenceRef.record(artifact, rec.record_id, excerpt[:500]))


def _summary(rec: EvtxRecord) -> str:
    vals = [v for v in rec.values() if v and v != "None"][:8]
    return f"{rec.provider} {rec.event_id}: " + "; ".join(v[:80] for v in vals)


def _classify(rec: EvtxRecord) -> tuple[str, tuple[str, ...], dict[str, Any]] | None:
    """(code, group key, data) for events with a dedicated finding, else None."""
    p, e = rec.provider, rec.event_id
    pl = p.lower()
    if e in (7031, 7034) and "service control manager" in pl:
        svc = rec.field("param1", 0)
        return "EVTX.SERVICE_CRASH", (svc,), {"service": svc, "event_id": e}
    if e == 1000 and pl == "application error":
        d = {"app": rec.field("AppName", 0), "app_version": rec.field("AppVersion", 1),
             "module": rec.field("ModuleName", 3), "module_version": rec.field("ModuleVersion", 4),
             "exception_code": rec.field("ExceptionCode", 6), "offset": rec.field("FaultingOffset", 7),
             "kind": "crash", "event_id": e}
        return "EVTX.APP_CRASH", ("crash", d["app"], d["module"], d["module_version"]), d
    if e == 1002 and pl == "application hang":
        d = {"app": rec.field("AppName", 0), "app_version": rec.field("AppVersion", 1),
             "module": "", "module_version": "", "kind": "hang", "event_id": e}
        return "EVTX.APP_CRASH", ("hang", d["app"]), d
    if e == 1001 and pl == "windows error reporting":
        vals = rec.values()
        ev_name = vals[2] if len(vals) > 2 else ""
        if ev_name.upper() in ("APPCRASH", "BEX", "BEX64", "APPHANGB1", "APPHANGXPROC", "CLR20R3", "MOAPPCRASH"):
            d = {"app": vals[5] if len(vals) > 5 else "", "app_version": vals[6] if len(vals) > 6 else "",
                 "module": vals[8] if len(vals) > 8 else "", "module_version": vals[9] if len(vals) > 9 else "",
                 "kind": "wer:" + ev_name, "event_id": e}
            return "EVTX.APP_CRASH", ("wer", d["app"], d["module"]), d
        return None
    if e == 6008 and pl == "eventlog":
        return "EVTX.UNEXPECTED_SHUTDOWN", ("6008",), {"event_id": e}
    if e == 41 and "kernel-power" in pl:
        return "EVTX.UNEXPECTED_SHUTDOWN", ("41",), {"event_id": e}
    if (e in (7, 51, 153) and _DISK_PROVIDER.search(p)) or (e == 55 and "ntfs" in pl):
        return "EVTX.DISK_ERROR", (p, str(e)), {"provider": p, "event_id": e}
    return None


_TITLES = {
    "EVTX.SERVICE_CRASH": lambda d, n: f"service {d['service'] or '?'} terminated unexpectedly ({n}x)",
    "EVTX.APP_CRASH": lambda d, n: (f"{d['app'] or '?'} {d['app_version']} {d['kind']} ({n}x)"
                                    + (f" in {d['module']} {d['module_version']}" if d.get("module") else "")),
    "EVTX.UNEXPECTED_SHUTDOWN": lambda d, n: f"unexpected shutdown (event {d['event_id']}, {n}x)",
    "EVTX.DISK_ERROR": lambda d, n: f"disk/file system error: {d['provider']} event {d['event_id']} ({n}x)",
}
_SEVERITY = {"EVTX.SERVICE_CRASH": Severity.HIGH, "EVTX.APP_CRASH": Severity.HIGH,
             "EVTX.UNEXPECTED_SHUTDOWN": Severity.HIGH, "EVTX.DISK_ERROR": Severity.CRITICAL}


def analyze_evtx(path: str | Path, artifact: str, ctx: AnalysisContext) -> Iterator[Output]:
    """Analyze one .evtx file (see module docstring)."""
    problems: list[str] = []
    special: dict[tuple[str, tuple[str, ...]], _Group] = {}
    errors: dict[tuple[str, int], _Group] = {}
    events: list[Event] = []
    dropped = 0
    n = 0
    first = last = None
    providers: dict[str, int] = {}
    channels: dict[str, int] = {}
    computers: dict[str, int] = {}
    index = EventIndex()
    for rec in read_evtx(path, artifact, problems):
        n += 1
        providers[rec.provider] = providers.get(rec.provider, 0) + 1
        channels[rec.channel] = channels.get(rec.channel, 0) + 1
        computers[rec.computer] = computers.get(rec.computer, 0) + 1
        if rec.ts:
            first = rec.ts if first is None or rec.ts < first else first
            last = rec.ts if last is None or rec.ts > last else last
        sev = LEVELS.get(rec.level, Severity.INFO)
        summary = _summary(rec)
        index.add(rec.provider, rec.event_id, rec.level, rec.record_id, summary, rec.data)
        cls = _classify(rec)
        if cls is not None:
            code, key, data = cls
            g = special.setdefault((code, key), _Group(data=data))
            g.add(rec, artifact, summary)
            sev = max(sev, _SEVERITY[code])
        if rec.level in (1, 2):
            errors.setdefault((rec.provider, rec.event_id), _Group()).add(rec, artifact, summary)
        if sev >= Severity.MEDIUM:
            if len(events) < ctx.max_events:
                kind = cls[0].lower() if cls else ("evtx.critical" if sev >= Severity.CRITICAL else
                                                   "evtx.error" if sev >= Severity.HIGH else "evtx.warning")
                events.append(Event(rec.ts, artifact, kind, summary[:300], sev,
                                    EvidenceRef.record(artifact, rec.record_id, summary[:500]),
                                    TsQuality.EXACT if rec.ts else TsQuality.NONE, NAME))
            else:
                dropped += 1
    bad_chunks = sorted({int(m.group(1)) for p in problems if (m := _CHUNK.search(p))})
    if problems:
        ctx.warn(f"{artifact}: {len(bad_chunks)} bad chunk(s) and "
                 f"{len(problems) - len(bad_chunks)} bad record(s) skipped; first: {problems[0][:200]}")
    if index.other:
        ctx.warn(f"{artifact}: {index.other} event(s) of kinds past the first {len(index.kinds)} not indexed")
    yield from events
    for (code, _key), g in sorted(special.items(), key=lambda kv: (kv[0][0], -kv[1].count)):
        yield Finding(code=code, title=_TITLES[code](g.data, g.count), severity=_SEVERITY[code],
                      artifact=artifact, evidence=tuple(g.refs), count=g.count, first_seen=g.first,
                      last_seen=g.last, analyzer=NAME, data=dict(g.data),
                      detail=f"{g.count} event(s) from {g.first} to {g.last}")
    ranked = sorted(errors.items(), key=lambda kv: (-kv[1].count, kv[0]))
    for rank, ((prov, eid), g) in enumerate(ranked[:MAX_TOP_ERRORS], 1):
        yield Finding(code="EVTX.TOP_ERRORS", title=f"#{rank}: {prov} event {eid} ({g.count}x)",
                      severity=Severity.MEDIUM, artifact=artifact, evidence=tuple(g.refs), count=g.count,
                      first_seen=g.first, last_seen=g.last, analyzer=NAME,
                      data={"provider": prov, "event_id": eid, "rank": rank},
                      detail=f"error/critical events ranked by provider and event id; {len(errors)} kinds in all")
    yield Fact("evtx.records", n, artifact, NAME)
    yield Fact("evtx.bad_chunks", len(bad_chunks), artifact, NAME)
    yield Fact("evtx.bad_records", len(problems) - len(bad_chunks), artifact, NAME)
    yield Fact("evtx.time_range", {"start": first.isoformat() if first else None,
                                   "end": last.isoformat() if last else None}, artifact, NAME)
    yield Fact("evtx.providers", dict(sorted(providers.items(), key=lambda kv: -kv[1])[:20]), artifact, NAME)
    yield Fact("evtx.channels", channels, artifact, NAME)
    yield Fact("evtx.computers", computers, artifact, NAME)
    yield Fact("evtx.events_dropped", dropped, artifact, NAME)
    yield Fact("evtx.event_index", index.entries(), artifact, NAME)


class LogsEvtxAnalyzer(Analyzer):
    """Windows event logs (.evtx): crashes, shutdowns, disk errors, top errors."""

    name = NAME
    version = "1"
    consumes = frozenset({ArtifactKind.EVTX})
    emits = frozenset({"EVTX.SERVICE_CRASH", "EVTX.APP_CRASH", "EVTX.UNEXPECTED_SHUTDOWN", "EVTX.DISK_ERROR",
                       "EVTX.TOP_ERRORS", "evtx.records", "evtx.bad_chunks", "evtx.bad_records",
                       "evtx.time_range", "evtx.providers", "evtx.channels", "evtx.computers",
                       "evtx.events_dropped", "evtx.event_index"})
    description = "Windows event logs: service/app crashes, unexpected shutdowns, disk errors, top errors."

    def applies_to(self, artifact: Artifact) -> bool:
        """Readable artifacts of the right kind that hold at least one byte."""
        return super().applies_to(artifact) and artifact.size > 0

    def analyze(self, artifact: Artifact, ctx: AnalysisContext) -> Iterator[Output]:
        assert artifact.local_path is not None
        yield from analyze_evtx(artifact.local_path, artifact.path, ctx)
