"""Analyses made elsewhere, attached to a case.

An engineer who ran ``backline analyze`` on a laptop attaches the result
(the ``report.json`` it writes) to the case: the document is checked against
``report/report.schema.json``, kept in the blob store, and recorded as a
piece of evidence whose ``origin`` says who attached it from which host; its
findings and facts are stored like those of an upload (with their evidence
references as the report has them), so they appear in the case's findings
listing beside the uploaded ones.  The job of such evidence is ``done`` from
the start: there is nothing to analyse on the server.
"""

from __future__ import annotations

import io
import json

from sqlalchemy import insert

from backline.cases.access import Action, require
from backline.cases.evidence import EvidenceItem, EvidenceService, origin_text, safe_filename, store_outputs
from backline.cases.model import JobStatus, User
from backline.errors import BacklineError, CaseError
from backline.storage import tables as T

#: Largest report.json accepted for attaching.
MAX_ATTACHED_REPORT = 64 * 1024 * 1024
_HOST_MAX = 255


class AnalysisService:
    """Attach analyses made elsewhere (see the module docstring)."""

    def __init__(self, evidence: EvidenceService, *, max_bytes: int = MAX_ATTACHED_REPORT):
        self.evidence = evidence
        self.cases = evidence.cases
        self.store = evidence.store
        self.max_bytes = max_bytes

    def attach(self, user: User, key: str, data: bytes, *, host: str | None) -> EvidenceItem:
        """Attach the report document ``data`` (JSON bytes) to case ``key``."""
        from backline.report.load import load_result

        require(user, Action.ATTACH_ANALYSIS)
        with self.cases.engine.connect() as conn:              # refuse before reading the document
            self.cases._case_row(conn, user, key)
        if len(data) > self.max_bytes:
            raise CaseError(f"report.json is larger than the limit of {self.max_bytes} bytes")
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CaseError(f"report.json is not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise CaseError("report.json must hold a JSON object (as written by backline analyze --format json)")
        try:
            result = load_result(doc, source="report.json")
        except BacklineError as exc:
            raise CaseError(str(exc)) from None
        host = " ".join(str(host or "").split())[:_HOST_MAX] or "an unnamed host"
        origin = {"kind": "local_analysis", "attached_by": user.name, "host": host,
                  "inputs": [str(i)[:300] for i in result.inputs[:50]],
                  "backline_version": str(doc.get("backline_version", ""))[:50],
                  "generated_at": doc.get("generated_at")}
        name = safe_filename(f"analysis-{host}.json")
        blob = self.store.put_stream(io.BytesIO(data), max_bytes=self.max_bytes)
        now = self.cases._now()
        with self.cases.engine.begin() as conn:
            row = self.cases._case_row(conn, user, key)
            eid = conn.execute(insert(T.evidence).values(
                case_id=row["id"], filename=name, sha256=blob.sha256, size=blob.size, uploaded_by=user.id,
                uploaded_at=now, origin=origin)).inserted_primary_key[0]
            jid = conn.execute(insert(T.jobs).values(
                case_id=row["id"], evidence_id=eid, status=JobStatus.DONE.value, attempts=0, worker="attached",
                created_at=now, started_at=now, finished_at=now)).inserted_primary_key[0]
            n = store_outputs(conn, {"id": jid, "case_id": row["id"]}, eid, result, now=now)
            if result.artifacts:        # the files stayed on the host; the same bytes uploaded elsewhere open
                conn.execute(insert(T.evidence_artifacts), [
                    {"case_id": row["id"], "evidence_id": eid, "job_id": jid, "path": a.path[:1000],
                     "kind": a.kind.value, "format": (a.format or "")[:100], "sha256": a.sha256 or None,
                     "size": int(a.size), "records": None, "note": None} for a in result.artifacts])
            self.cases.audit(conn, user, "evidence", eid, "attach_analysis", None,
                             {"filename": name, "sha256": blob.sha256, "host": host, "findings": n,
                              "facts": len(result.facts), "inputs": origin["inputs"][:10]}, row["id"])
        return EvidenceItem(eid, key, name, blob.sha256, blob.size, user.name, now, jid, JobStatus.DONE.value,
                            origin=origin)



__all__ = ["AnalysisService", "MAX_ATTACHED_REPORT", "origin_text"]
