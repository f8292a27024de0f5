"""The diagnosis of a case: stored per analysis job, and recomputed over all its evidence.

Each analysis job stores its own diagnosis (``case_diagnoses``: the JSON report's
probable causes, with the stored findings' row ids).  :meth:`DiagnosisService.current`
gives the case's diagnosis over *all* its analysed evidence: the stored findings
(with their first/last times), timeline events and facts of every finished job go
through the same :func:`backline.knowledge.diagnosis.diagnose`, so a capture uploaded
on Monday and the application log uploaded on Tuesday are reasoned about together.
:func:`proposal` turns the top cause into the text a bug report's root cause is
pre-filled with - marked as a proposal.

The case-wide diagnosis is cached per database (engine) and case, keyed by the case's analysis
version (:func:`analysis_version`: the finished jobs, and the count and highest row id of the
case's stored findings, timeline events and facts - rows are only ever inserted or deleted, so
any change to the evidence, an analysis or the findings changes the key), and by the
diagnosis' own version.  A page view then costs the access checks and one small query; the
diagnosis runs again only when the evidence has changed.
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections import OrderedDict
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

from sqlalchemy import func, insert, select

from backline.cases.access import Action, require
from backline.cases.model import JobStatus, User
from backline.cases.service import CaseService
from backline.knowledge.diagnosis import diagnose
from backline.model import Diagnosis, Event, EvidenceRef, Fact, Finding, Severity
from backline.model.diagnosis import DIAGNOSIS_VERSION
from backline.model.core import utc
from backline.report.json_report import diagnosis_document, iso
from backline.storage import tables as T

#: Events read back per case for the case-wide diagnosis (most severe kept by the job runner).
MAX_CASE_EVENTS = 20_000
#: Case-wide diagnoses kept per database (the most recently used).
CACHE_CASES = 128

_cache: "weakref.WeakKeyDictionary[Any, OrderedDict]" = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()
#: How the case-wide diagnosis was answered, for tests and benchmarks: computed / cached.
stats = {"computed": 0, "cached": 0}


def analysis_version(conn, case_id: int) -> tuple:
    """What the case-wide diagnosis depends on, in one query: the finished jobs (count, highest
    id) and the count and highest row id of the case's findings, timeline events and facts."""
    cols = []
    for tbl, extra in ((T.jobs, (T.jobs.c.status == JobStatus.DONE.value,)), (T.findings, ()),
                       (T.case_events, ()), (T.case_facts, ())):
        where = (tbl.c.case_id == case_id, *extra)
        cols += [select(func.count(tbl.c.id)).where(*where).scalar_subquery(),
                 select(func.max(tbl.c.id)).where(*where).scalar_subquery()]
    values = conn.execute(select(*cols)).one()
    rows = [(values[i], values[i + 1]) for i in range(0, len(values), 2)]
    return tuple((int(n or 0), int(m or 0)) for n, m in rows)


def _cache_get(engine, key: tuple) -> dict[str, Any] | None:
    with _cache_lock:
        per = _cache.get(engine)
        if per is None or key not in per:
            return None
        per.move_to_end(key)
        return per[key]


def _cache_put(engine, key: tuple, value: dict[str, Any]) -> None:
    with _cache_lock:
        per = _cache.setdefault(engine, OrderedDict())
        # an older version of the same case is of no use any more
        for old in [k for k in per if k[:2] == key[:2] and k != key]:
            del per[old]
        per[key] = value
        while len(per) > CACHE_CASES:
            per.popitem(last=False)


def _with_ids(doc: Mapping[str, Any], ids: Sequence[int], files: Sequence[str] | None = None,
              rel: Callable[[str], str] = lambda a: a) -> list[dict[str, Any]]:
    """The report's probable causes with ``finding_id`` (and ``evidence_file``) for every finding index."""
    out = []

    def fix_refs(refs):
        return [dict(r, artifact=rel(r["artifact"])) for r in refs]

    for c in doc["probable_causes"]:
        i = c["finding"]
        item = dict(c, finding_id=ids[i] if 0 <= i < len(ids) else None, evidence=fix_refs(c["evidence"]),
                    chain=[dict(link, cause_id=ids[link["cause"]], effect_id=ids[link["effect"]],
                                evidence=fix_refs(link["evidence"])) for link in c["chain"]])
        if files is not None and 0 <= i < len(files):
            item["evidence_file"] = files[i]
        out.append(item)
    return out


def store_job_diagnosis(conn, job: Mapping[str, Any], evidence_id: int, diagnosis: Diagnosis | None,
                        finding_ids: Sequence[int], rel: Callable[[str], str], now: datetime) -> None:
    """Store one job's diagnosis (replacing an earlier one of the same job)."""
    conn.execute(T.case_diagnoses.delete().where(T.case_diagnoses.c.job_id == job["id"]))
    if diagnosis is None:
        return
    doc = diagnosis_document(diagnosis)
    conn.execute(insert(T.case_diagnoses).values(
        case_id=job["case_id"], job_id=job["id"], evidence_id=evidence_id, version=diagnosis.version,
        duration_s=diagnosis.duration_s, incident_start=diagnosis.incident_start,
        incident_end=diagnosis.incident_end, causes=_with_ids(doc, finding_ids, rel=rel), created_at=now))


class DiagnosisService:
    def __init__(self, cases: CaseService):
        self.cases = cases

    def stored(self, user: User, key: str) -> list[dict[str, Any]]:
        """Each analysed upload's own diagnosis, as stored by its job (newest job first)."""
        require(user, Action.READ_FINDINGS)
        D = T.case_diagnoses.c
        with self.cases.engine.connect() as conn:
            row = self.cases._case_row(conn, user, key)
            rows = conn.execute(select(T.case_diagnoses, T.evidence.c.filename)
                                .join(T.evidence, T.evidence.c.id == D.evidence_id)
                                .where(D.case_id == row["id"]).order_by(D.job_id.desc())).mappings().all()
        return [{"job_id": r["job_id"], "evidence_id": r["evidence_id"], "evidence_file": r["filename"],
                 "version": r["version"], "duration_s": r["duration_s"],
                 "incident": {"start": iso(utc(r["incident_start"])), "end": iso(utc(r["incident_end"]))},
                 "probable_causes": r["causes"]} for r in rows]

    def current(self, user: User, key: str) -> dict[str, Any]:
        """The case's diagnosis over all its analysed evidence (see the module docstring), from the
        cache while the case's analysis version is unchanged."""
        require(user, Action.READ_FINDINGS)
        engine = self.cases.engine
        with engine.connect() as conn:
            row = self.cases._case_row(conn, user, key)
            ckey = (row["id"], str(row["created_at"]), analysis_version(conn, row["id"]), DIAGNOSIS_VERSION)
            hit = _cache_get(engine, ckey)
            if hit is not None and hit["case"] == key:
                stats["cached"] += 1
                return copy.deepcopy(hit)
            done = select(T.jobs.c.id).where(T.jobs.c.case_id == row["id"], T.jobs.c.status == JobStatus.DONE.value)
            frows = conn.execute(select(T.findings, T.evidence.c.filename)
                                 .join(T.evidence, T.evidence.c.id == T.findings.c.evidence_id)
                                 .where(T.findings.c.job_id.in_(done)).order_by(T.findings.c.id)).mappings().all()
            erows = conn.execute(select(T.case_events).where(T.case_events.c.job_id.in_(done))
                                 .order_by(T.case_events.c.id).limit(MAX_CASE_EVENTS)).mappings().all()
            xrows = conn.execute(select(T.case_facts).where(T.case_facts.c.job_id.in_(done))
                                 .order_by(T.case_facts.c.id)).mappings().all()
        findings = [Finding(
            code=r["code"], title=r["title"], severity=Severity(r["severity"]), artifact=r["artifact"],
            evidence=tuple(EvidenceRef(x.get("artifact") or r["artifact"], x.get("locator") or "", x.get("excerpt"))
                           for x in (r["refs"] or [])),
            detail=r["detail"], count=r["count"], first_seen=utc(r["first_seen"]), last_seen=utc(r["last_seen"]),
            analyzer=r["analyzer"], data=r["data"] or {}) for r in frows]
        events = [Event(ts=utc(r["ts"]), artifact=r["artifact"], kind=r["kind"], summary=r["summary"],
                        severity=Severity(r["severity"]),
                        ref=EvidenceRef(r["artifact"], r["locator"], r["excerpt"]) if r["locator"] else None,
                        analyzer=r["analyzer"]) for r in erows]
        facts = [Fact(r["name"], r["value"], r["artifact"], r["analyzer"]) for r in xrows]
        d = diagnose(findings, sorted(events, key=lambda e: (e.ts is None, e.ts or datetime.min)), facts)
        doc = diagnosis_document(d)
        out = {"case": key, "findings": len(findings), "evidence_files": sorted({r["filename"] for r in frows}),
               "version": doc["version"], "duration_s": doc["duration_s"], "incident": doc["incident"],
               "clock_skews": doc["clock_skews"],
               "probable_causes": _with_ids(doc, [r["id"] for r in frows], [r["filename"] for r in frows])}
        stats["computed"] += 1
        _cache_put(engine, ckey, copy.deepcopy(out))
        return out


def proposal(cause: Mapping[str, Any], max_links: int = 6) -> str:
    """The text a bug report's root cause is pre-filled with: the top probable cause, marked as a
    proposal, with the evidence it rests on, its chain and what would confirm it.

    >>> print(proposal({"title": "Disk full: write failed", "confidence": 0.9, "code": "LOG.ERROR_TEMPLATE",
    ...                 "evidence": [{"artifact": "app.log", "locator": "line:7", "excerpt": "ENOSPC"}],
    ...                 "chain": [{"effect_summary": "errors in app.log", "evidence": [
    ...                     {"artifact": "app.log", "locator": "line:9", "excerpt": None}]}],
    ...                 "next_steps": [{"kind": "confirm", "text": "Check df -h."}]}))
    Proposed by Backline's diagnosis (confidence 0.90): Disk full: write failed
    Rests on: LOG.ERROR_TEMPLATE, app.log line:7
    Chain: -> errors in app.log (app.log line:9)
    To confirm: Check df -h.
    (A proposal from the automatic diagnosis: check it, then edit or replace this text.)

    Below 0.5 the diagnosis has no confident cause, and the text says so:

    >>> print(proposal({"title": "NXDOMAIN for wpad.corp", "confidence": 0.37, "code": "NET.DNS.NXDOMAIN"}))
    No confident root cause from Backline's diagnosis; its strongest candidate (confidence 0.37): NXDOMAIN for wpad.corp
    Rests on: NET.DNS.NXDOMAIN
    (A proposal from the automatic diagnosis: check it, then edit or replace this text.)
    """
    from backline.report.diagnosis import PROBABLE

    conf = float(cause["confidence"])
    lines = [(f"Proposed by Backline's diagnosis (confidence {conf:.2f}): " if conf >= PROBABLE else
              f"No confident root cause from Backline's diagnosis; its strongest candidate (confidence {conf:.2f}): ")
             + cause["title"]]
    ev = (cause.get("evidence") or [None])[0]
    lines.append(f"Rests on: {cause['code']}" + (f", {ev['artifact']} {ev['locator']}" if ev else ""))
    steps = []
    for link in (cause.get("chain") or [])[:max_links]:
        where = (link.get("evidence") or [None])[0]
        steps.append(f"-> {link.get('effect_summary') or link.get('effect_title', '')}"
                     + (f" ({where['artifact']} {where['locator']})" if where else ""))
    if steps:
        lines.append("Chain: " + " ".join(steps))
    confirm = next((s["text"] for s in cause.get("next_steps") or [] if s["kind"] == "confirm"), "")
    if confirm:
        lines.append(f"To confirm: {confirm}")
    lines.append("(A proposal from the automatic diagnosis: check it, then edit or replace this text.)")
    return "\n".join(lines)
