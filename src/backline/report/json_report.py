"""The JSON report: a versioned document described by ``report.schema.json``
(JSON Schema draft 2020-12) and, field by field, in ``docs/report-json.md``.

Datetimes are ISO 8601 in UTC with a ``Z`` suffix.  Values analyzers put in
``Finding.data`` and ``Fact.value`` are made JSON-safe: datetimes become
ISO strings, paths and unknown objects their ``str``, bytes hex, sets and
tuples lists, non-finite floats strings (``"nan"``).

>>> from backline.model import AnalysisResult
>>> from backline.report.model import build_report
>>> empty = AnalysisResult(inputs=(), artifacts=(), runs=(), findings=(), events=(), facts=())
>>> import json
>>> doc = json.loads(render_json(build_report(empty)))
>>> doc["schema_version"], doc["summary"]["findings"]["total"]
('1.0', 0)
"""

from __future__ import annotations

import enum
import json
import math
import uuid
from datetime import date, datetime, timezone
from json.encoder import encode_basestring
from functools import lru_cache
from importlib import resources
from pathlib import PurePath
from typing import Any, Iterator, Mapping

from backline.model import (AnalyzerRun, Artifact, Diagnosis, Event, EvidenceRef, Fact, Finding, ProbableCause,
                            Severity, utc)
from backline.model.core import TsQuality
from backline.report.known_issues import known_issues_json
from backline.report.model import ArtifactSection, Report
from backline.report.timeline import Timeline

#: Name of the schema file shipped in this package.
SCHEMA_FILE = "report.schema.json"
#: Nesting depth beyond which analyzer-supplied values are cut (keeps output bounded).
MAX_DEPTH = 32
#: Events written per piece by :func:`iter_json` (bounded memory, few writes).
_EVENTS_PER_PIECE = 512


def iso(ts: datetime | None) -> str | None:
    """ISO 8601 UTC with ``Z``: ``2024-05-01T12:00:00Z`` (microseconds when present).

    >>> from datetime import datetime, timedelta, timezone
    >>> iso(datetime(2024, 5, 1, 14, 0, 0, 250000, tzinfo=timezone(timedelta(hours=2))))
    '2024-05-01T12:00:00.250000Z'
    """
    ts = utc(ts)
    if ts is None:
        return None
    return ts.replace(tzinfo=None).isoformat() + "Z"


def jsonable(value: Any, _depth: int = 0) -> Any:
    """Turn an analyzer-supplied value into plain JSON data (see module doc)."""
    if _depth > MAX_DEPTH:
        return "<nested too deep>"
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, enum.Enum):
        return jsonable(value.value, _depth + 1)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [jsonable(v, _depth + 1) for v in items]
    return str(value)


def _ref(ref: EvidenceRef) -> dict[str, Any]:
    return {"artifact": ref.artifact, "locator": ref.locator, "excerpt": ref.excerpt}


def _finding(f: Finding) -> dict[str, Any]:
    return {
        "code": f.code,
        "title": f.title,
        "severity": f.severity.label,
        "artifact": f.artifact,
        "count": f.count,
        "first_seen": iso(f.first_seen),
        "last_seen": iso(f.last_seen),
        "evidence": [_ref(r) for r in f.evidence],
        "detail": f.detail,
        "data": jsonable(f.data),
        "analyzer": f.analyzer,
    }


def _cause(c: ProbableCause) -> dict[str, Any]:
    return {
        "title": c.title,
        "confidence": c.confidence,
        "code": c.code,
        "finding": c.finding,
        "signal": c.signal,
        "evidence": [_ref(r) for r in c.evidence],
        "chain": [{"cause": link.cause, "effect": link.effect, "relation": link.relation,
                   "rationale": link.rationale,
                   "joined_on": [{"kind": k, "value": v} for k, v in link.joined_on],
                   "effect_title": link.effect_title, "effect_summary": link.effect_summary,
                   "weight": link.weight, "evidence": [_ref(r) for r in link.evidence]}
                  for link in c.chain],
        "next_steps": [{"kind": n.kind, "text": n.text} for n in c.next_steps],
        "reasons": list(c.reasons),
    }


def diagnosis_document(d: Diagnosis) -> dict[str, Any]:
    """The ``diagnosis`` object of the JSON report (its ``finding`` indices point into ``findings``)."""
    return {
        "version": d.version,
        "duration_s": d.duration_s,
        "incident": {"start": iso(d.incident_start), "end": iso(d.incident_end)},
        "clock_skews": [{"artifact": k.artifact, "reference": k.reference, "offset_s": k.offset_s,
                         "pairs": k.pairs} for k in d.skews],
        "probable_causes": [_cause(c) for c in d.causes],
    }


def _run(r: AnalyzerRun) -> dict[str, Any]:
    return {
        "analyzer": r.analyzer,
        "version": r.version,
        "artifact": r.artifact,
        "status": r.status.value,
        "reason": r.reason,
        "traceback": r.traceback,
        "duration_s": r.duration_s if math.isfinite(r.duration_s) else 0.0,
        "events": r.events,
        "findings": r.findings,
        "facts": r.facts,
        "warnings": list(r.warnings),
    }


def _event(e: Event) -> dict[str, Any]:
    return {
        "ts": iso(e.ts),
        "ts_quality": e.ts_quality.value,
        "artifact": e.artifact,
        "kind": e.kind,
        "summary": e.summary,
        "severity": e.severity.label,
        "ref": _ref(e.ref) if e.ref else None,
        "analyzer": e.analyzer,
    }


class _EventEncoder:
    """An event as the JSON text ``json.dumps(_event(e), ensure_ascii=False)`` gives, byte for byte,
    written directly: the text between the per-event fields is made once for each combination of
    the fields repeated across a report's events (time quality, artifact, kind, severity, analyzer,
    the reference's artifact), the times formatted without a copy (a report of 400,000 events:
    about 1.5 CPU s instead of 4.4).  Anything unusual (a subclass, a field that is not a string,
    a time zone other than UTC) goes the general way."""

    __slots__ = ("_parts", "_slow")

    def __init__(self, slow) -> None:
        self._parts: dict = {}
        self._slow = slow

    def _make(self, key: tuple) -> tuple[str, str, str, str] | None:
        quality, artifact, kind, severity, analyzer, ref_artifact = key
        if not all(type(x) is str for x in (artifact, kind, analyzer)) or \
                (ref_artifact is not None and type(ref_artifact) is not str):
            return None
        if len(self._parts) >= 50_000:
            self._parts.clear()
        enc = encode_basestring
        made = (f'"ts_quality": {enc(quality.value)}, "artifact": {enc(artifact)}, "kind": {enc(kind)}, '
                f'"summary": ',
                f', "severity": {enc(severity.label)}, "ref": ',
                f', "analyzer": {enc(analyzer)}}}',
                "" if ref_artifact is None else f'{{"artifact": {enc(ref_artifact)}, "locator": ')
        self._parts[key] = made
        return made

    def __call__(self, e: Event) -> str:
        ts, ref = e.ts, e.ref
        if (type(e) is not Event or type(e.summary) is not str
                or type(e.severity) is not Severity or type(e.ts_quality) is not TsQuality
                or (ts is not None and (type(ts) is not datetime or ts.tzinfo is not timezone.utc))
                or (ref is not None and (type(ref) is not EvidenceRef or type(ref.locator) is not str
                                         or (ref.excerpt is not None and type(ref.excerpt) is not str)))):
            return self._slow(_event(e))
        key = (e.ts_quality, e.artifact, e.kind, e.severity, e.analyzer, None if ref is None else ref.artifact)
        parts = self._parts.get(key)
        if parts is None:
            parts = self._make(key)
            if parts is None:
                return self._slow(_event(e))
        enc = encode_basestring
        if ref is None:
            r = "null"
        else:
            r = f'{parts[3]}{enc(ref.locator)}, "excerpt": {"null" if ref.excerpt is None else enc(ref.excerpt)}}}'
        return (f'{{"ts": {"null" if ts is None else chr(34) + ts.isoformat()[:-6] + "Z" + chr(34)}, '
                f'{parts[0]}{enc(e.summary)}{parts[1]}{r}{parts[2]}')


class EventTexts:
    """Events' JSON texts made ahead of the report, as the analysis's results arrive (while
    its other tasks still run in other processes or on a cluster), so that writing the
    report only joins them: :func:`iter_json` takes the text made here for every event of
    the report that was :meth:`add`-ed, and makes the others itself.  The texts are the ones
    :func:`iter_json` makes (the same encoder), so the report is the same byte for byte;
    which events were added, and in which order, changes nothing in it.

    The events added are held (an event is known by its identity), and so are their texts:
    about 450 bytes an event.  Past ``max_events`` events, no more are made ahead."""

    __slots__ = ("_encode", "_texts", "_held", "max_events")

    def __init__(self, max_events: int = 2_000_000) -> None:
        self._encode = _EventEncoder(json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode)
        self._texts: dict[int, str] = {}
        self._held: list[tuple[Event, ...]] = []
        self.max_events = max_events

    def __len__(self) -> int:
        return len(self._texts)

    def add(self, events) -> None:
        """Make the texts of ``events`` now (nothing when that would pass ``max_events``)."""
        events = tuple(events)
        if not events or len(self._texts) + len(events) > self.max_events:
            return
        self._held.append(events)
        self._texts.update(zip(map(id, events), map(self._encode, events)))

    def encoder(self):
        """``event -> text``: the text made ahead when there is one, else made now."""
        texts, encode = self._texts.get, self._encode
        if not self._texts:
            return encode

        def text(e: Event) -> str:
            t = texts(id(e))
            return encode(e) if t is None else t
        return text


def _fact(f: Fact) -> dict[str, Any]:
    return {"name": f.name, "value": jsonable(f.value), "artifact": f.artifact, "analyzer": f.analyzer}


def _artifact(section: ArtifactSection) -> dict[str, Any]:
    a: Artifact | None = section.artifact
    return {
        "path": section.path,
        "known": a is not None,
        "kind": a.kind.value if a else None,
        "format": a.format if a else "",
        "size": a.size if a else None,
        "sha256": a.sha256 if a else None,
        "compression": a.compression if a else "",
        "problems": list(a.problems) if a else [],
        "time_start": iso(a.time_start) if a else None,
        "time_end": iso(a.time_end) if a else None,
        "status": section.status,
        "events": section.events,
        "findings": len(section.findings),
        "finding_codes": sorted({f.code for f in section.findings}),
        "runs": [_run(r) for r in section.runs],
        "meta": jsonable(a.meta) if a else {},
    }


def _timeline(t: Timeline) -> dict[str, Any]:
    return {
        "start": iso(t.start),
        "end": iso(t.end),
        "bucket_seconds": t.bucket_seconds,
        "dated": t.dated,
        "undated": t.undated,
        "clipped_before": t.clipped_before,
        "clipped_after": t.clipped_after,
        "histogram": [list(h) for h in t.histogram],
        "lanes": [
            {"artifact": lane.artifact, "merged": lane.merged, "total": lane.total,
             "undated": lane.undated, "first": iso(lane.first), "last": iso(lane.last)}
            for lane in t.lanes
        ],
    }


def to_document(report: Report, *, include_events: bool = True) -> dict[str, Any]:
    """The report as plain JSON data (what :func:`render_json` serialises)."""
    s = report.summary
    return {
        "schema_version": report.schema_version,
        "backline_version": report.backline_version,
        "generated_at": iso(report.generated_at),
        "inputs": list(report.inputs),
        "options": jsonable(report.options),
        "summary": {
            "headline": s.headline(),
            "highest_severity": s.highest_severity.label if s.highest_severity is not None else None,
            "artifacts": {"total": s.artifacts, "by_kind": dict(s.artifacts_by_kind),
                          "unreadable": s.unreadable_artifacts, "analyzed": s.analyzed_artifacts},
            "findings": {"total": s.findings, "by_severity": dict(s.findings_by_severity),
                         "occurrences": s.occurrences},
            "runs": {"total": sum(s.runs_by_status.values()), "by_status": dict(s.runs_by_status)},
            "events": {"total": s.events, "undated": s.undated_events},
            "facts": s.facts,
            "refusals": s.refusals,
            "time_span": {"start": iso(s.time_start), "end": iso(s.time_end)},
            "analysis": {"started_at": iso(s.started_at), "finished_at": iso(s.finished_at),
                         "duration_s": s.duration_s},
        },
        "diagnosis": diagnosis_document(report.diagnosis) if report.diagnosis is not None else None,
        "artifacts": [_artifact(a) for a in report.artifacts],
        "findings": [_finding(f) for f in report.findings],
        "events": [_event(e) for e in report.events] if include_events else [],
        "events_included": include_events,
        "timeline": _timeline(report.timeline),
        "facts": [_fact(f) for f in report.facts],
        "refusals": [{"path": r.path, "reason": r.reason} for r in report.refusals],
        "known_issues": known_issues_json(report.known_issues),
    }


def iter_json(report: Report, *, indent: int | None = 2,
              include_events: bool = True) -> Iterator[str]:
    """The JSON report in pieces, a few hundred events at a time (for writing big
    reports to a file without holding the whole text in memory).  With ``indent`` each
    event is one line."""
    sentinel = f"__backline_events_{uuid.uuid4().hex}__"
    doc = to_document(report, include_events=False)
    doc["events"] = sentinel
    doc["events_included"] = include_events
    head, tail = json.dumps(doc, indent=indent, ensure_ascii=False, allow_nan=False).split(
        f'"{sentinel}"', 1)
    yield head
    if not include_events or not report.events:
        yield "[]"
    else:
        pad = "\n" + " " * (2 * indent) if indent else ""
        sep = "," + pad if indent else ","
        close = "\n" + " " * indent + "]" if indent else "]"
        made = report.event_texts
        encode = made.encoder() if isinstance(made, EventTexts) else \
            _EventEncoder(json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode)
        yield "[" + pad
        events = report.events
        for at in range(0, len(events), _EVENTS_PER_PIECE):     # a few hundred events per piece
            piece = sep.join(map(encode, events[at:at + _EVENTS_PER_PIECE]))
            yield piece if at == 0 else sep + piece
        yield close
    yield tail


def render_json(report: Report, *, indent: int | None = 2, include_events: bool = True) -> str:
    """The JSON report as text (valid against the schema)."""
    return "".join(iter_json(report, indent=indent, include_events=include_events))


@lru_cache(maxsize=1)
def _schema_text() -> str:
    return resources.files("backline.report").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")


def load_schema() -> dict[str, Any]:
    """The JSON Schema of the report (a fresh copy)."""
    return json.loads(_schema_text())

