"""``backline case import``: past cases from a tracker export (JSON lines).

One JSON object a line with the fields ``id``, ``project``, ``title``,
``description``, ``status``, ``resolution``, ``created``, ``resolved``,
``affects_versions`` (Jira- and Bugzilla-like values are understood); every
field may be missing, and unknown fields are kept (the whole object is stored
in ``case_external.record``).  ``id`` becomes the case's external id: importing
the same file again changes nothing, and a record whose content changed
updates its case.  A line that is not a JSON object, or has no id, is reported
with its line number and the import goes on.

Imported cases skip the intake gate and notifications (they are history), but
get a status-history row and an audit entry like every case, and are indexed
for similar-case search (embedded in the same run unless ``embed=False``,
which leaves them in the durable queue for ``backline serve`` or
``backline case reindex``).

>>> map_status("Resolved", "Fixed"), map_status("UNCONFIRMED", None), map_status("Closed", "Won't Fix")
('resolved', 'new', 'closed')
>>> map_severity("Blocker"), map_severity("P3"), map_severity(None)
('S1', 'S3', 'S3')
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from sqlalchemy import bindparam, insert, select, text, update

from backline.cases.access import Action, require
from backline.cases.model import User
from backline.cases.service import KEY_BASE, KEY_PREFIX, MAX_TITLE, CaseService, reject_nul
from backline.errors import CaseError, UsageError
from backline.knowledge.similar.index import SimilarIndexer, enqueue
from backline.knowledge.similar.text import build_doc
from backline.model.core import utc
from backline.storage import tables as T

BATCH = 256
MAX_LINE = 8 * 1024 * 1024

_OPEN = {"open": "new", "new": "new", "unconfirmed": "new", "to do": "new", "triage": "new",
         "assigned": "investigating", "in progress": "investigating", "reopened": "investigating",
         "patch available": "fix_pending", "in review": "fix_pending"}
_DONE = {"resolved": "resolved", "verified": "resolved", "done": "resolved", "fixed": "resolved",
         "closed": "closed"}
_NOT_FIXED = {"won't fix", "wontfix", "invalid", "incomplete", "cannot reproduce", "worksforme",
              "not a problem", "duplicate", "expired"}
_SEVERITY = {"blocker": "S1", "critical": "S1", "p1": "S1", "major": "S2", "p2": "S2", "high": "S2",
             "p3": "S3", "normal": "S3", "medium": "S3", "minor": "S4", "trivial": "S4", "p4": "S4",
             "p5": "S4", "low": "S4"}


def map_status(status: Any, resolution: Any) -> str:
    """A tracker status (and resolution) as a Backline case status."""
    s = str(status or "").strip().lower()
    r = str(resolution or "").strip().lower()
    if s in _DONE:
        return "closed" if s == "closed" or r in _NOT_FIXED and s != "resolved" else "resolved"
    if s in _OPEN:
        return _OPEN[s]
    return "resolved" if r else "new"


def map_severity(priority: Any) -> str:
    return _SEVERITY.get(str(priority or "").strip().lower(), "S3")


def _time(value: Any, what: str) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError(f"{what} must be an ISO-8601 string")
    try:
        return utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        raise ValueError(f"{what} {value[:40]!r} is not an ISO-8601 time") from None


def _text(value: Any, what: str, limit: int) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        value = ", ".join(str(v) for v in value)
    if not isinstance(value, (str, int, float)):
        raise ValueError(f"{what} must be text")
    return str(value)[:limit]


@dataclass(frozen=True, slots=True)
class ImportedCase:
    external_id: str
    values: dict[str, Any]        # columns of ``cases``
    record: dict[str, Any]


def parse_record(obj: Any, *, org: str, product: str, now: datetime) -> ImportedCase:
    """One tracker record as case values; ``ValueError`` says what is wrong with it."""
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    ext = obj.get("id")
    if ext is None or (isinstance(ext, str) and not ext.strip()) or not isinstance(ext, (str, int)):
        raise ValueError("no id")
    ext = str(ext).strip()
    if len(ext) > 200:
        raise ValueError("id is longer than 200 characters")
    reject_nul(obj)
    title = " ".join(_text(obj.get("title"), "title", 4 * MAX_TITLE).split())[:MAX_TITLE] or f"(untitled {ext})"
    created = _time(obj.get("created"), "created") or now
    resolved = _time(obj.get("resolved"), "resolved")
    status = map_status(obj.get("status"), obj.get("resolution"))
    # the description is what the case says; the resolution stays in the record (a resolution
    # such as "Duplicate" is an outcome, not a symptom, and must not make cases look alike)
    intake = {"description": _text(obj.get("description"), "description", 1_000_000)} if obj.get("description") else {}
    values = {"title": title, "product": (_text(obj.get("project"), "project", 200) or product).strip() or product,
              "version": _text(obj.get("affects_versions"), "affects_versions", 100).strip() or "unknown",
              "org": (_text(obj.get("org"), "org", 200) or org).strip() or org,
              "severity": map_severity(obj.get("priority")), "status": status, "intake": intake,
              "created_at": created, "updated_at": resolved or created,
              "resolved_at": resolved if status in ("resolved", "closed") else None}
    return ImportedCase(ext, values, obj)


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    indexed: int = 0
    bad: list[tuple[int, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"added": self.added, "updated": self.updated, "unchanged": self.unchanged, "indexed": self.indexed,
                "bad_lines": [{"line": n, "error": e} for n, e in self.bad]}


def read_lines(path: Path) -> Iterator[tuple[int, int, Any | ValueError]]:
    """``(line number, bytes read so far, object or the ValueError saying why not)``; blank lines
    are skipped.  A line longer than ``MAX_LINE`` is reported without being held in memory."""
    done = 0
    with path.open("rb") as fh:
        n = 0
        while True:
            raw = fh.readline(MAX_LINE + 1)
            if not raw:
                return
            n += 1
            done += len(raw)
            if len(raw) > MAX_LINE:
                while raw and not raw.endswith(b"\n"):      # skip the rest of the long line
                    raw = fh.readline(MAX_LINE)
                    done += len(raw)
                yield n, done, ValueError(f"line is longer than {MAX_LINE} bytes")
                continue
            line = raw.strip()
            if not line:
                continue
            try:
                yield n, done, json.loads(line.decode("utf-8"))
            except UnicodeDecodeError:
                yield n, done, ValueError("not UTF-8")
            except json.JSONDecodeError as exc:
                yield n, done, ValueError(f"not JSON: {exc.msg} at column {exc.colno}")


def flush_fulltext_pending(engine) -> None:
    """PostgreSQL: merge the GIN indexes' pending lists after a bulk write.

    GIN indexes take new rows into a pending list (up to 4 MB) that every search reads whole
    until autovacuum merges it; after importing 100,000 cases that list made each term of a
    similar-case query cost 3-11 ms instead of 0.1 ms (measured, docs/benchmarks-similar.md).
    A no-op on SQLite."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        for index in ("ix_case_fts_tsv", "ix_case_fts_internal"):
            conn.execute(text("SELECT gin_clean_pending_list(to_regclass(:i))"), {"i": index})


class CaseImporter:
    """Writes imported cases in batches (one transaction per batch)."""

    def __init__(self, cases: CaseService, indexer: SimilarIndexer):
        self.cases = cases
        self.indexer = indexer

    def run(self, user: User, path: Path, *, org: str = "imported", product: str = "imported",
            embed: bool = True, progress: Callable[[int, int], None] | None = None) -> ImportReport:
        """Import ``path``; ``progress(bytes_done, bytes_total)`` is called after each batch."""
        require(user, Action.CREATE_CASE)
        try:
            total = path.stat().st_size
        except OSError as exc:
            raise UsageError(f"cannot read: {exc.strerror}", artifact=str(path)) from None
        report = ImportReport()
        batch: list[tuple[int, ImportedCase]] = []
        seen: set[str] = set()
        now = self.cases._now()
        try:
            for n, done_bytes, obj in read_lines(path):
                if isinstance(obj, ValueError):
                    report.bad.append((n, str(obj)))
                    continue
                try:
                    rec = parse_record(obj, org=org, product=product, now=now)
                except (ValueError, CaseError) as exc:
                    report.bad.append((n, str(exc)))
                    continue
                if rec.external_id in seen:
                    report.bad.append((n, f"id {rec.external_id!r} appears again (the first one is kept)"))
                    continue
                seen.add(rec.external_id)
                batch.append((n, rec))
                if len(batch) >= BATCH:
                    self._write(user, path, batch, report, embed)
                    batch = []
                    if progress:
                        progress(min(done_bytes, total), total)
            if batch:
                self._write(user, path, batch, report, embed)
        except OSError as exc:
            raise UsageError(f"cannot read: {exc.strerror}", artifact=str(path)) from None
        if progress:
            progress(total, total)
        if report.added or report.updated:
            flush_fulltext_pending(self.cases.engine)
        return report

    def _write(self, user: User, path: Path, batch: list[tuple[int, ImportedCase]], report: ImportReport,
               embed: bool) -> None:
        now = self.cases._now()
        E = T.case_external.c
        touched: dict[int, Any] = {}
        with self.cases.engine.begin() as conn:
            known = {ext: (cid, rec) for ext, cid, rec in conn.execute(
                select(E.external_id, E.case_id, E.record).where(E.external_id.in_([r.external_id for _, r in batch])))}
            new = [r for _, r in batch if r.external_id not in known]
            for _, r in batch:
                if r.external_id in known:
                    cid, old = known[r.external_id]
                    if old == r.record:
                        report.unchanged += 1
                        continue
                    v = r.values
                    conn.execute(update(T.cases).where(T.cases.c.id == cid).values(
                        title=v["title"], version=v["version"], severity=v["severity"], status=v["status"],
                        intake=v["intake"], updated_at=now, resolved_at=v["resolved_at"],
                        row_version=T.cases.c.row_version + 1))
                    conn.execute(update(T.case_external).where(E.case_id == cid).values(record=r.record, imported_at=now))
                    self.cases.audit(conn, user, "case", r.external_id, "reimport", {"record": old}, {"record": r.record}, cid)
                    touched[cid] = r
                    report.updated += 1
            if new:
                rows = [dict(r.values, key=f"tmp-{uuid.uuid4().hex[:24]}", owner_id=None, co_owners=[], team=None,
                             created_by=user.id, row_version=1, intake_score=1.0, intake_missing=[],
                             sla_policy="default", calendar=None, first_response_at=None,
                             last_customer_contact_at=r.values["created_at"], last_staff_contact_at=None,
                             returned_for_info=False) for r in new]
                ids = [row[0] for row in conn.execute(insert(T.cases).returning(T.cases.c.id, sort_by_parameter_order=True), rows)]
                conn.execute(update(T.cases).where(T.cases.c.id == bindparam("cid")).values(key=bindparam("k")),
                             [{"cid": cid, "k": f"{KEY_PREFIX}{KEY_BASE + cid}"} for cid in ids])
                conn.execute(insert(T.status_history), [
                    {"case_id": cid, "from_status": None, "to_status": r.values["status"], "at": r.values["created_at"],
                     "by_id": user.id} for cid, r in zip(ids, new)])
                conn.execute(insert(T.case_external), [
                    {"case_id": cid, "external_id": r.external_id, "source": str(path.name)[:500], "record": r.record,
                     "imported_at": now} for cid, r in zip(ids, new)])
                conn.execute(insert(T.audit_log), [
                    {"at": now, "actor_id": user.id, "actor": user.name, "case_id": cid, "entity": "case",
                     "entity_id": f"{KEY_PREFIX}{KEY_BASE + cid}", "action": "import", "before": None,
                     "after": {"external_id": r.external_id, "source": path.name, "status": r.values["status"]}}
                    for cid, r in zip(ids, new)])
                touched.update(zip(ids, new))
                report.added += len(new)
            if not embed:
                for cid in touched:
                    enqueue(conn, cid, "import", now)
        if touched:
            docs = {cid: build_doc(r.values["title"], r.values["intake"], (), ()) for cid, r in touched.items()}
            report.indexed += self.indexer.write(docs, embed=embed)
