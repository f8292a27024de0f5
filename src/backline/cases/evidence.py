"""Evidence uploads and the durable analysis job table.

An upload is streamed into the content-addressed :class:`BlobStore` (never
held in memory), recorded against the case, and a ``queued`` job is written
in the same transaction.  :class:`JobRunner` claims queued jobs one at a time,
runs the analysis pipeline on the blob, and stores the findings with the
case (with the analysis' diagnosis, :mod:`backline.cases.diagnosis`).  On start
it puts jobs left ``running`` by a stopped server back in the queue, so nothing is
lost across restarts.

The analysis function is passed in (``analyze(paths, options) ->
AnalysisResult``, :func:`backline.pipeline.analyze` by default).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import tempfile
import threading
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Callable, Mapping, Sequence

from sqlalchemy import insert, select, update

from backline.cases.access import Action, require
from backline.cases.diagnosis import store_job_diagnosis
from backline.cases.drill.store import DerivedStore, keep_derived
from backline.cases.model import JobStatus, User
from backline.cases.service import CaseService
from backline.cases.signatures import record_signatures
from backline.errors import BacklineError, CaseError, NotFound, StorageError
from backline.model.core import AnalysisResult, utc
from backline.storage import tables as T
from backline.storage.blobs import BlobStore, StoredBlob

log = logging.getLogger(__name__)

MAX_UPLOAD = 20 * 1024 ** 3          # 20 GiB
MAX_ATTEMPTS = 3
MAX_FACTS = 2000                      # per job; the rest are dropped (counted in the audit entry)
MAX_EVENTS = 5000                     # timeline events kept per job: the most severe first
_UNSAFE = re.compile(r"[^A-Za-z0-9._ +()\[\]-]")

AnalyzeFn = Callable[[Sequence[Path], Any], AnalysisResult]


def safe_filename(name: str | None) -> str:
    """A display name that cannot walk out of a folder or hide control characters.

    >>> safe_filename("../../etc/passwd")
    'passwd'
    >>> safe_filename("C:\\\\logs\\\\app.log")
    'app.log'
    >>> safe_filename("..")
    'upload.bin'
    """
    raw = unicodedata.normalize("NFC", name or "")
    raw = raw.replace("\\", "/").split("/")[-1]
    raw = "".join(ch for ch in raw if unicodedata.category(ch)[0] != "C")
    raw = _UNSAFE.sub("_", raw).strip(" .")
    return raw[:200] if raw else "upload.bin"


@dataclass(frozen=True, slots=True)
class EvidenceItem:
    id: int
    case_key: str
    filename: str
    sha256: str
    size: int
    uploaded_by: str
    uploaded_at: datetime
    job_id: int | None = None
    job_status: str | None = None
    job_error: str | None = None
    origin: Mapping[str, Any] | None = None      # None for uploads; see cases/analyses.py

    @property
    def source(self) -> str | None:
        """How this evidence came, in words, when it was not an upload."""
        return origin_text(self.origin)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "case": self.case_key, "filename": self.filename, "sha256": self.sha256,
                "size": self.size, "uploaded_by": self.uploaded_by, "uploaded_at": self.uploaded_at.isoformat(),
                "job": {"id": self.job_id, "status": self.job_status, "error": self.job_error},
                "origin": dict(self.origin) if self.origin else None, "source": self.source}


class EvidenceService:
    def __init__(self, cases: CaseService, store: BlobStore, *, max_bytes: int = MAX_UPLOAD):
        self.cases = cases
        self.store = store
        self.max_bytes = max_bytes

    def upload(self, user: User, key: str, filename: str | None, stream: BinaryIO) -> EvidenceItem:
        """Store the bytes of ``stream`` as evidence of case ``key`` and queue its analysis."""
        self.check_upload(user, key)                        # refuse before reading any bytes
        blob = self.store.put_stream(stream, max_bytes=self.max_bytes)
        return self.record_upload(user, key, filename, blob)

    def check_upload(self, user: User, key: str) -> None:
        """Refuse an upload to case ``key`` (not allowed, no such case) before any byte is read."""
        require(user, Action.UPLOAD_EVIDENCE)
        with self.cases.engine.connect() as conn:
            self.cases._case_row(conn, user, key)

    def record_upload(self, user: User, key: str, filename: str | None, blob: StoredBlob) -> EvidenceItem:
        """Record ``blob`` (already in the store, e.g. streamed there by the web API) as evidence of
        case ``key`` and queue its analysis: the evidence row, its job and the audit entry are one
        transaction, so after a crash the upload is either complete or absent."""
        require(user, Action.UPLOAD_EVIDENCE)
        name = safe_filename(filename)
        if blob.size == 0:
            raise CaseError(f"upload {name!r} is empty")
        now = self.cases._now()
        with self.cases.engine.begin() as conn:
            row = self.cases._case_row(conn, user, key)
            eid = conn.execute(insert(T.evidence).values(case_id=row["id"], filename=name, sha256=blob.sha256,
                                                         size=blob.size, uploaded_by=user.id, uploaded_at=now)
                               ).inserted_primary_key[0]
            jid = conn.execute(insert(T.jobs).values(case_id=row["id"], evidence_id=eid, status=JobStatus.QUEUED.value,
                                                     attempts=0, created_at=now)).inserted_primary_key[0]
            self.cases.audit(conn, user, "evidence", eid, "upload", None,
                             {"filename": name, "sha256": blob.sha256, "size": blob.size}, row["id"])
        return EvidenceItem(eid, key, name, blob.sha256, blob.size, user.name, now, jid, JobStatus.QUEUED.value)

    def job_state(self, user: User, key: str, evidence_id: int) -> EvidenceItem:
        """One piece of evidence of case ``key`` with its job's state."""
        for item in self.list(user, key):
            if item.id == evidence_id:
                return item
        raise NotFound(f"evidence {evidence_id} is not part of {key}", locator=f"evidence:{evidence_id}")

    def list(self, user: User, key: str) -> list[EvidenceItem]:
        with self.cases.reader.connect() as conn:
            row = self.cases._case_row(conn, user, key)
            rows = conn.execute(
                select(T.evidence, T.users.c.name.label("uploader"), T.jobs.c.id.label("job_id"),
                       T.jobs.c.status.label("job_status"), T.jobs.c.error.label("job_error"))
                .join(T.users, T.users.c.id == T.evidence.c.uploaded_by)
                .join(T.jobs, T.jobs.c.evidence_id == T.evidence.c.id, isouter=True)
                .where(T.evidence.c.case_id == row["id"]).order_by(T.evidence.c.id)).mappings().all()
        return [EvidenceItem(r["id"], key, r["filename"], r["sha256"], r["size"], r["uploader"],
                             utc(r["uploaded_at"]), r["job_id"], r["job_status"],
                             r["job_error"] if user.role.is_staff else None, r["origin"]) for r in rows]

    def findings(self, user: User, key: str) -> list[dict[str, Any]]:
        require(user, Action.READ_FINDINGS)
        with self.cases.reader.connect() as conn:
            row = self.cases._case_row(conn, user, key)
            rows = conn.execute(select(T.findings, T.evidence.c.filename, T.evidence.c.origin)
                                .join(T.evidence, T.evidence.c.id == T.findings.c.evidence_id)
                                .where(T.findings.c.case_id == row["id"])
                                .order_by(T.findings.c.severity.desc(), T.findings.c.id)).mappings().all()
        return [finding_json(r) for r in rows]


    def facts(self, user: User, key: str) -> list[dict[str, Any]]:
        """Facts the analysis learned from the case's evidence (``dump.os``, ``net.packets``, ...)."""
        require(user, Action.READ_FINDINGS)
        with self.cases.reader.connect() as conn:
            row = self.cases._case_row(conn, user, key)
            rows = conn.execute(select(T.case_facts, T.evidence.c.filename)
                                .join(T.evidence, T.evidence.c.id == T.case_facts.c.evidence_id)
                                .where(T.case_facts.c.case_id == row["id"]).order_by(T.case_facts.c.id)).mappings().all()
        return [{"name": r["name"], "value": r["value"], "artifact": r["artifact"], "evidence_file": r["filename"],
                 "analyzer": r["analyzer"]} for r in rows]


    def events(self, user: User, key: str, limit: int = MAX_EVENTS) -> list[dict[str, Any]]:
        """Timeline events of the case's evidence, dated ones by time, then undated ones."""
        require(user, Action.READ_FINDINGS)
        E = T.case_events.c
        with self.cases.reader.connect() as conn:
            row = self.cases._case_row(conn, user, key)
            rows = conn.execute(select(T.case_events, T.evidence.c.filename)
                                .join(T.evidence, T.evidence.c.id == E.evidence_id)
                                .where(E.case_id == row["id"])
                                .order_by(E.ts.is_(None), E.ts, E.id).limit(limit)).mappings().all()
        return [{"id": r["id"], "evidence_id": r["evidence_id"], "evidence_file": r["filename"], "ts": utc(r["ts"]),
                 "artifact": r["artifact"], "kind": r["kind"], "summary": r["summary"], "severity": r["severity"],
                 "locator": r["locator"], "excerpt": r["excerpt"], "analyzer": r["analyzer"]} for r in rows]


def origin_text(origin: Mapping[str, Any] | None) -> str | None:
    """How evidence that was not uploaded came to the case, in words (None for uploads).

    >>> origin_text({"kind": "local_analysis", "attached_by": "erin", "host": "lap-7"})
    'attached by erin from a local analysis on lap-7'
    """
    if not origin:
        return None
    if origin.get("kind") == "local_analysis":
        return f"attached by {origin.get('attached_by', '?')} from a local analysis on {origin.get('host') or '?'}"
    return str(origin.get("kind"))


def _notable(events, limit: int):
    """At most ``limit`` events, the most severe first (ties: as they came), back in their order."""
    if len(events) <= limit:
        return list(events)
    keep = sorted(range(len(events)), key=lambda i: -int(events[i].severity))[:limit]
    return [events[i] for i in sorted(keep)]


def finding_json(r) -> dict[str, Any]:
    """One stored finding as the API shows it; ``evidence_id`` and the ``refs`` (artifact,
    locator) are what ``GET /api/cases/{key}/ref?e=&a=&l=`` takes; ``source`` says how
    evidence that was not an upload came (``attached by erin from a local analysis on lap-7``)."""
    from backline.model.core import Severity
    return {"id": r["id"], "code": r["code"], "title": r["title"], "severity": Severity(r["severity"]).label,
            "artifact": r["artifact"], "evidence_id": r["evidence_id"], "evidence_file": r["filename"],
            "detail": r["detail"], "count": r["count"], "refs": r["refs"], "data": r["data"],
            "analyzer": r["analyzer"], "source": origin_text(r.get("origin"))}


def _default_analyze(paths: Sequence[Path], options: Any) -> AnalysisResult:
    from backline.pipeline import analyze
    return analyze(paths, options)


def _default_options(work_dir: Path, store: BlobStore) -> Any:
    """Every analyzer task in a worker process with the hard limits of the environment
    (``BACKLINE_ANALYZER_TIMEOUT``, ``BACKLINE_ANALYZER_MEMORY_MB``): the job runner is a thread
    of the server, where a stuck or exploding analyzer must not take the server with it."""
    from backline.config import analyzer_memory_mb, analyzer_timeout_s
    from backline.pipeline import AnalyzeOptions
    return AnalyzeOptions(work_dir=work_dir, store=store, isolate=True, timeout_s=analyzer_timeout_s(),
                          memory_mb=analyzer_memory_mb())


class JobRunner:
    """Runs queued analysis jobs; durable across restarts (state lives in the ``jobs`` table)."""

    def __init__(self, cases: CaseService, store: BlobStore, *, analyze: AnalyzeFn = _default_analyze,
                 options_factory: Callable[[Path, BlobStore], Any] = _default_options,
                 worker: str = "worker", work_root: Path | None = None, derived: DerivedStore | None = None,
                 knowledge: Any = None, scheduler: str | None = None):
        """``scheduler``: the address of a Dask scheduler (``tcp://HOST:8786``) whose cluster runs the
        jobs' analyzer tasks (:mod:`backline.analyzers.cluster`); their work folders are then made in
        the evidence store's folder (``work`` beside the blobs, unless ``work_root`` is given), which
        every worker must see under the same path.  None: the tasks run in processes of this server."""
        from backline.cases.knowledge import KnowledgeService

        self.cases = cases
        self.scheduler = scheduler or None
        #: matches the published known issues after every job (None: a service with the starter pack)
        self.knowledge = knowledge if knowledge is not None else KnowledgeService(cases)
        self.engine = cases.engine
        self.store = store
        self.analyze = analyze
        self.options_factory = options_factory
        self.worker = worker
        self.work_root = work_root
        self.derived = derived if derived is not None else DerivedStore(store.root / "derived")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def recover(self) -> int:
        """Put jobs a stopped server left ``running`` back in the queue; returns how many."""
        with self.engine.begin() as conn:
            return conn.execute(update(T.jobs).where(T.jobs.c.status == JobStatus.RUNNING.value)
                                .values(status=JobStatus.QUEUED.value, worker=None)).rowcount

    def claim(self) -> dict[str, Any] | None:
        """Take the oldest queued job (compare-and-set, so two runners never share one)."""
        with self.engine.begin() as conn:
            for row in conn.execute(select(T.jobs).where(T.jobs.c.status == JobStatus.QUEUED.value)
                                    .order_by(T.jobs.c.id).limit(5)).mappings().all():
                n = conn.execute(update(T.jobs).where(T.jobs.c.id == row["id"],
                                                      T.jobs.c.status == JobStatus.QUEUED.value)
                                 .values(status=JobStatus.RUNNING.value, worker=self.worker,
                                         attempts=row["attempts"] + 1, started_at=self.cases._now())).rowcount
                if n == 1:
                    return dict(row, attempts=row["attempts"] + 1)
        return None

    def claim_job(self, job_id: int) -> dict[str, Any] | None:
        """Take job ``job_id`` if it is still queued (None when another runner has it)."""
        with self.engine.begin() as conn:
            row = conn.execute(select(T.jobs).where(T.jobs.c.id == job_id)).mappings().first()
            if row is None or row["status"] != JobStatus.QUEUED.value:
                return None
            n = conn.execute(update(T.jobs).where(T.jobs.c.id == job_id, T.jobs.c.status == JobStatus.QUEUED.value)
                             .values(status=JobStatus.RUNNING.value, worker=self.worker,
                                     attempts=row["attempts"] + 1, started_at=self.cases._now())).rowcount
            return dict(row, attempts=row["attempts"] + 1) if n == 1 else None

    def run_job(self, job_id: int) -> bool:
        """Run job ``job_id`` here if no other runner has taken it; returns whether it ran here."""
        job = self.claim_job(job_id)
        if job is None:
            return False
        self._run(job)
        return True

    def run_one(self) -> bool:
        """Run one queued job, if any.  Returns whether there was one."""
        job = self.claim()
        if job is None:
            return False
        self._run(job)
        return True

    def _run(self, job: dict[str, Any]) -> None:
        with self.engine.connect() as conn:
            ev = conn.execute(select(T.evidence).where(T.evidence.c.id == job["evidence_id"])).mappings().one()
        work_root = self.work_root
        if work_root is None and self.scheduler:       # a folder the cluster's workers see too
            work_root = self.store.root / "work"
            work_root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"job{job['id']}-", dir=work_root))
        try:
            src = work / "in" / ev["filename"]
            src.parent.mkdir(parents=True)
            self.store.copy_out(ev["sha256"], src)
            options = self.options_factory(work / "work", self.store)
            if self.scheduler and getattr(options, "scheduler", False) is None:
                options = dataclasses.replace(options, scheduler=self.scheduler)
            result = self.analyze([src], options)
            kept = keep_derived(self.derived, self.store, ev["id"], result)   # before the scratch goes
            self._store_result(job, ev, result, kept)
            self._prepare_views(ev["id"])
        except (BacklineError, OSError, ValueError) as exc:
            self._fail(job, f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001 - a crashing analysis must not kill the runner
            log.exception("job %s crashed", job["id"])
            self._fail(job, f"internal error: {type(exc).__name__}: {exc}")
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _prepare_views(self, evidence_id: int) -> None:
        """After the findings are stored (the job is done): build what the drill-down views of
        this evidence need, so the first click does not wait for it.  Failures only cost that."""
        from backline.cases.drill import DrillService
        try:
            DrillService(self.cases, self.store, self.derived).prepare(evidence_id)
        except Exception:  # noqa: BLE001 - the analysis is stored; a view builds what is missing later
            log.exception("preparing the views of evidence %s failed", evidence_id)

    def _store_result(self, job, ev, result: AnalysisResult, kept: list[dict[str, Any]]) -> None:
        prefix = f"in/{ev['filename']}"
        records = {r["path"]: r["records"] for r in kept}
        with self.engine.begin() as conn:
            rows = store_outputs(conn, job, ev["id"], result, prefix, records, now=self.cases._now())
            conn.execute(T.evidence_artifacts.delete().where(T.evidence_artifacts.c.evidence_id == ev["id"]))
            if kept:
                conn.execute(insert(T.evidence_artifacts),
                             [dict(r, path=_rel(r["path"], prefix)[:1000], case_id=job["case_id"],
                                   evidence_id=ev["id"], job_id=job["id"]) for r in kept])
            record_signatures(conn, job["case_id"], job["id"], result.findings, lambda a: _rel(a, prefix))
            kb_matched = self._match_known_issues(conn, job, ev)
            conn.execute(update(T.jobs).where(T.jobs.c.id == job["id"]).values(
                status=JobStatus.DONE.value, finished_at=self.cases._now(), error=None))
            self.cases.changed(conn, job["case_id"], "findings")
            self.cases.audit(conn, None, "job", job["id"], "done", None,
                             {"findings": rows, "artifacts": len(result.artifacts), "facts": len(result.facts),
                              "known_issues": kb_matched},
                             job["case_id"])

    def _match_known_issues(self, conn, job, ev) -> list[str] | str:
        """Match the published known issues against the case's evidence (KB.* findings); a failure here
        is logged and leaves the analysis stored (its own savepoint)."""
        try:
            with conn.begin_nested():
                results = self.knowledge.match_case(conn, job["case_id"], job["id"], ev["id"])
            return [r.issue.key for r in results if r.verdict == "match"]
        except Exception as exc:  # noqa: BLE001 - known-issue matching must not lose the analysis
            log.exception("known-issue matching failed for job %s", job["id"])
            return f"failed: {type(exc).__name__}: {exc}"[:500]

    def _fail(self, job, message: str) -> None:
        status = JobStatus.QUEUED if job["attempts"] < MAX_ATTEMPTS and message.startswith("internal") \
            else JobStatus.FAILED
        with self.engine.begin() as conn:
            conn.execute(update(T.jobs).where(T.jobs.c.id == job["id"]).values(
                status=status.value, error=message[:4000], finished_at=self.cases._now()))

    def run_pending(self, limit: int = 1000) -> int:
        """Run queued jobs until none is left (or ``limit``); returns how many ran."""
        n = 0
        while n < limit and self.run_one():
            n += 1
        return n

    # --- background thread used by ``backline serve``
    def start(self, poll_seconds: float = 1.0) -> None:
        self.recover()

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    if not self.run_one():
                        self._stop.wait(poll_seconds)
                except Exception:  # noqa: BLE001 - keep serving; the job row says what failed
                    log.exception("job runner error")
                    self._stop.wait(poll_seconds)

        self._thread = threading.Thread(target=loop, name="backline-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


def store_outputs(conn, job: Mapping[str, Any], evidence_id: int, result: AnalysisResult, prefix: str = "",
                  records: Mapping[str, str | None] | None = None, now: datetime | None = None) -> int:
    """Write the findings (with their times), facts, timeline events and diagnosis of ``result`` for ``job``
    (replacing earlier ones); returns the number of findings.  ``log.parquet`` facts name the kept records file (``records``:
    artifact path -> file name in the derived folder), never the scratch folder."""
    conn.execute(T.findings.delete().where(T.findings.c.job_id == job["id"]))
    rows = [{"case_id": job["case_id"], "job_id": job["id"], "evidence_id": evidence_id, "code": f.code,
             "title": f.title[:500], "severity": int(f.severity), "artifact": _rel(f.artifact, prefix)[:1000],
             "detail": f.detail, "count": f.count,
             "refs": [{"artifact": _rel(r.artifact, prefix), "locator": r.locator, "excerpt": r.excerpt}
                      for r in f.evidence[:20]],
             "data": _plain(f.data), "analyzer": f.analyzer,
             "first_seen": f.first_seen, "last_seen": f.last_seen}
            for f in result.findings]
    if rows:
        conn.execute(insert(T.findings), rows)
    ids = conn.execute(select(T.findings.c.id).where(T.findings.c.job_id == job["id"])
                       .order_by(T.findings.c.id)).scalars().all()        # in result.findings order
    store_job_diagnosis(conn, job, evidence_id, result.diagnosis, ids, lambda a: _rel(a, prefix),
                        now or datetime.now(timezone.utc))
    conn.execute(T.case_facts.delete().where(T.case_facts.c.job_id == job["id"]))
    facts = []
    for x in result.facts[:MAX_FACTS]:
        value = x.value
        if x.name == "log.parquet":
            value = (records or {}).get(x.artifact)
        facts.append({"case_id": job["case_id"], "job_id": job["id"], "evidence_id": evidence_id,
                      "name": x.name[:200], "value": _plain(value), "artifact": _rel(x.artifact, prefix)[:1000],
                      "analyzer": x.analyzer})
    if facts:
        conn.execute(insert(T.case_facts), facts)
    conn.execute(T.case_events.delete().where(T.case_events.c.job_id == job["id"]))
    events = [{"case_id": job["case_id"], "job_id": job["id"], "evidence_id": evidence_id, "ts": e.ts,
               "artifact": _rel(e.artifact, prefix)[:1000], "kind": e.kind[:100], "summary": e.summary[:2000],
               "severity": int(e.severity), "locator": e.ref.locator[:200] if e.ref else None,
               "excerpt": (e.ref.excerpt or "")[:2000] if e.ref else None, "analyzer": e.analyzer[:100]}
              for e in _notable(result.events, MAX_EVENTS)]
    if events:
        conn.execute(insert(T.case_events), events)
    return len(rows)


def _rel(artifact: str, prefix: str) -> str:
    """Artifact paths relative to the upload (drop the job's scratch folder)."""
    if not prefix:
        return artifact
    i = artifact.find(prefix)
    return artifact[i + 3:] if i >= 0 else artifact


def _plain(value: Any) -> Any:
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


__all__ = ["EvidenceService", "JobRunner", "EvidenceItem", "safe_filename", "StorageError"]
