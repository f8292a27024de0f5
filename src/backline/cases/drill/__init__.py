"""Drill-down: from an evidence reference on a finding to the evidence itself.

Every finding points into an artifact with a locator (``line:1234``,
``packet:5531``, ``record:88``, ``frame:0``, ``thread:3/frame:0``).
:meth:`DrillService.view` answers "show me" for one such reference of a
case's evidence, as plain data for the API and the pages:

=====================  ==============================================================
locator                view (``DrillView.kind``)
=====================  ==============================================================
``line:N``             ``log``: the log's records around the line, with level /
                       template filters and search (:mod:`.logs`, DuckDB over the
                       kept Parquet records); ``lines`` for text without records
``packet:N``           ``packet``: the connection the packet belongs to and its
                       decoded fields (:mod:`.net`)
``frame:N``,           ``frame``: the thread's stack and the code around the frame's
``thread:T/frame:N``   instruction (:mod:`.dumps`); text traces show the trace lines
``record:N``           ``record``: the event-log record's fields
anything else          ``raw``: the reference as it is, with the findings citing it
=====================  ==============================================================

``unavailable`` says why there is nothing to show (the evidence was a local
analysis attached without its files; the files are no longer in the store).
Reading failures become notes on the view, never exceptions.  Who may look is
the findings' rule (staff only); anyone else gets :class:`NotFound`, as for
a case they cannot see.
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from sqlalchemy import select

from backline.cases.access import Action, allowed
from backline.cases.drill.logs import LogQuery, evtx_record, log_view, record_lines, text_lines
from backline.cases.drill.store import DerivedStore
from backline.cases.model import User
from backline.cases.service import CaseService
from backline.errors import BacklineError, NotFound, StorageError
from backline.model.core import Severity
from backline.storage import tables as T
from backline.storage.blobs import BlobStore

_LOCATOR = re.compile(r"^(?:thread:(?P<thread>\d{1,9})/)?(?P<kind>line|packet|record|frame):(?P<n>\d{1,15})$")
#: Largest log re-read for the lines of a multi-line record (the records hold its message only).
MAX_REREAD = 64 * 1024 * 1024
_TEXT_KINDS = frozenset({"text_log", "crash_trace", "hs_err", "config", "data", "document", "source"})
_DUMP_KINDS = frozenset({"minidump", "elf_core", "crash_trace", "hs_err"})


@dataclass(frozen=True, slots=True)
class Locator:
    """A parsed evidence locator.

    >>> Locator.parse("thread:3/frame:0")
    Locator(kind='frame', number=0, thread=3, text='thread:3/frame:0')
    >>> Locator.parse("offset:0x1f0").kind
    'raw'
    """

    kind: str                  # line | packet | record | frame | raw
    number: int | None = None
    thread: int | None = None
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> "Locator":
        m = _LOCATOR.match(text.strip())
        if m is None or (m["thread"] is not None and m["kind"] != "frame"):
            return cls("raw", text=text)
        return cls(m["kind"], int(m["n"]), int(m["thread"]) if m["thread"] is not None else None, text.strip())


@dataclass(frozen=True, slots=True)
class DrillView:
    """One drill-down view: what ``body`` holds depends on ``kind`` (module docstring)."""

    kind: str
    case: str
    evidence_id: int
    evidence_file: str
    artifact: str
    locator: str
    title: str
    body: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    cited_by: tuple[Mapping[str, Any], ...] = ()
    artifact_kind: str | None = None
    origin: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "case": self.case, "evidence": {"id": self.evidence_id, "file": self.evidence_file,
                                                                   "origin": self.origin},
                "artifact": self.artifact, "artifact_kind": self.artifact_kind, "locator": self.locator,
                "title": self.title, "body": dict(self.body), "notes": list(self.notes),
                "cited_by": [dict(c) for c in self.cited_by]}


class DrillService:
    """Views behind evidence references (see the module docstring)."""

    def __init__(self, cases: CaseService, store: BlobStore, derived: DerivedStore):
        self.cases = cases
        self.store = store
        self.derived = derived

    def view(self, user: User, key: str, evidence_id: int, artifact: str, locator: str,
             query: LogQuery | None = None, debugger: str | None = None) -> DrillView:
        """``debugger``: a debugger command to run on a dump instead of the standard ones."""
        if not allowed(user, Action.READ_FINDINGS):
            raise NotFound(f"no case {key}", locator=f"case:{key}")     # as for a case they cannot see
        loc = Locator.parse(locator[:300])
        notes: tuple[str, ...] = ()
        with self.cases.engine.connect() as conn:
            case = self.cases._case_row(conn, user, key)
            ev = self._evidence(conn, case["id"], evidence_id)
            if ev is None:
                raise NotFound(f"evidence {evidence_id} is not (or no longer) part of {key}",
                               locator=f"evidence:{evidence_id}")
            arts = self._manifest(conn, ev["id"])
            art = next((a for a in arts if a["path"] == artifact), None)
            if art is None:
                # a finding made over the whole case (known-issue matches) cites files of other evidence
                other = conn.execute(select(T.evidence_artifacts).where(
                    T.evidence_artifacts.c.case_id == case["id"], T.evidence_artifacts.c.path == artifact)
                    .order_by(T.evidence_artifacts.c.evidence_id.desc()).limit(1)).mappings().first()
                if other is not None:
                    ev, art = self._evidence(conn, case["id"], other["evidence_id"]), other
                    arts = self._manifest(conn, ev["id"])
                    notes = (f"this file is part of evidence {ev['id']} ({ev['filename']})",)
            job = conn.execute(select(T.jobs.c.status).where(T.jobs.c.evidence_id == ev["id"])
                               .order_by(T.jobs.c.id.desc())).scalar()
            found = conn.execute(select(T.findings.c.id, T.findings.c.code, T.findings.c.title,
                                        T.findings.c.severity, T.findings.c.refs)
                                 .where(T.findings.c.case_id == case["id"])
                                 .order_by(T.findings.c.severity.desc(), T.findings.c.id).limit(5000)).mappings().all()
        cited = tuple({"id": f["id"], "code": f["code"], "title": f["title"],
                       "severity": Severity(f["severity"]).label, "excerpt": r.get("excerpt")}
                      for f in found for r in (f["refs"] or [])[:20]
                      if r.get("artifact") == artifact and r.get("locator") == locator)[:50]
        base = dict(case=key, evidence_id=ev["id"], evidence_file=ev["filename"], artifact=artifact,
                    locator=locator, cited_by=cited, origin=ev["origin"])
        if art is None:
            return self._no_artifact(base, ev, arts, job)
        base["artifact_kind"] = art["kind"]
        try:
            view = self._dispatch(base, art, loc, query or LogQuery(), arts, debugger)
            return dataclasses.replace(view, notes=notes + view.notes) if notes else view
        except (BacklineError, OSError, ValueError) as exc:
            msg = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            return DrillView("raw", title=f"{artifact} {locator}", body=_raw_body(art, loc),
                             notes=(f"the evidence could not be read at this reference: {msg}",), **base)

    @staticmethod
    def _evidence(conn, case_id: int, evidence_id: int):
        return conn.execute(select(T.evidence).where(T.evidence.c.id == evidence_id,
                                                     T.evidence.c.case_id == case_id)).mappings().first()

    @staticmethod
    def _manifest(conn, evidence_id: int):
        return conn.execute(select(T.evidence_artifacts).where(
            T.evidence_artifacts.c.evidence_id == evidence_id)).mappings().all()

    # ------------------------------------------------------------------ dispatch
    def _no_artifact(self, base: dict[str, Any], ev, arts, job: str | None) -> DrillView:
        why = _origin_note(base)
        if why:
            return DrillView("unavailable", title=f"{base['artifact']} {base['locator']}",
                             body={"reason": why}, notes=(why,), **base)
        if not arts:
            why = ("the analysis of this evidence has not finished" if job in ("queued", "running") else
                   "this evidence was analysed without keeping its artifact list; analyse it again to drill down")
            return DrillView("unavailable", title=f"{base['artifact']} {base['locator']}",
                             body={"reason": why, "job": job}, notes=(why,), **base)
        raise NotFound(f"no artifact {base['artifact']!r} in evidence {base['evidence_id']} "
                       f"({ev['filename']}; it holds {len(arts)} file(s))", locator=base["locator"])

    def _dispatch(self, base: dict[str, Any], art, loc: Locator, query: LogQuery, arts,
                  debugger: str | None = None) -> DrillView:
        artifact, kind = art["path"], art["kind"]
        title = f"{artifact} {loc.text or base['locator']}"
        if loc.kind == "line":
            path = self._records(art)
            if path is not None:
                body = log_view(path, loc.number, query)
                target, blob = body["target"], self._blob(art)
                if target and target["end_line"] > target["line"] and blob is not None and \
                        blob.stat().st_size <= MAX_REREAD:       # the record's own lines (a stack trace)
                    body["target_lines"] = record_lines(blob, target["line"], target["end_line"], loc.number)
                return DrillView("log", title=f"{artifact} line {loc.number}", body=body, **base)
        blob = self._blob(art)
        if blob is None and _origin_note(base):
            return DrillView("unavailable", title=title, body={"reason": _origin_note(base)},
                             notes=(_origin_note(base),), **base)
        if loc.kind == "raw" or blob is None:
            notes = () if blob is not None or loc.kind == "raw" else (
                art["note"] or "the bytes of this file are not in the evidence store (any more)",)
            return DrillView("raw", title=title, body=_raw_body(art, loc), notes=notes, **base)
        if loc.kind == "line" and kind in _TEXT_KINDS:
            body = text_lines(blob, loc.number)
            notes = () if body["found"] else (f"the file has no line {loc.number}",)
            if art["note"]:
                notes += (f"records of this log: {art['note']}",)
            return DrillView("lines", title=f"{artifact} line {loc.number}", body=body, notes=notes, **base)
        if loc.kind == "packet" and kind == "capture":
            return self._packet(base, art, blob, loc.number)
        if loc.kind == "frame" and kind in _DUMP_KINDS:
            return self._frame(base, art, blob, loc, arts, debugger)
        if loc.kind == "record" and kind == "evtx":
            rec = evtx_record(blob, loc.number, artifact)
            if rec is None:
                return DrillView("raw", title=title, body=_raw_body(art, loc),
                                 notes=(f"no record {loc.number} in this event log",), **base)
            return DrillView("record", title=f"{artifact} record {loc.number}", body=rec, **base)
        return DrillView("raw", title=title, body=_raw_body(art, loc),
                         notes=(f"a {loc.kind} reference into a {kind} file has no view",), **base)

    def _records(self, art) -> Path | None:
        """The kept records of this log, or of the same bytes analysed in other evidence of the
        case (an attached local analysis finds an upload of the same file)."""
        rows = [art] if art["records"] else []
        if art["sha256"]:
            with self.cases.engine.connect() as conn:
                rows += conn.execute(select(T.evidence_artifacts).where(
                    T.evidence_artifacts.c.case_id == art["case_id"], T.evidence_artifacts.c.sha256 == art["sha256"],
                    T.evidence_artifacts.c.records.is_not(None)).order_by(T.evidence_artifacts.c.id)).mappings().all()
        for r in rows:
            path = self.derived.path(r["evidence_id"], r["records"])
            if path.is_file():
                return path
        return None

    def _blob(self, art) -> Path | None:
        sha = art["sha256"]
        if not sha or not self.store.exists(sha):
            return None
        return self.store.path(sha)

    def prepare(self, evidence_id: int) -> int:
        """Build what the first views of this evidence would otherwise build while a person waits
        (the packet index of each capture); returns how many were built.  The job runner calls
        this after an analysis is stored."""
        with self.cases.engine.connect() as conn:
            arts = conn.execute(select(T.evidence_artifacts).where(
                T.evidence_artifacts.c.evidence_id == evidence_id,
                T.evidence_artifacts.c.kind == "capture")).mappings().all()
        built = 0
        for art in arts:
            blob = self._blob(art)
            if blob is not None:
                built += self._packet_index(art, blob)[0] is not None
        return built

    def _packet_index(self, art, blob: Path) -> tuple[Path | None, list[str]]:
        """The packet index of a capture artifact, built if missing: (path or None, notes)."""
        from backline.cases.drill.net import build_index

        eid = art["evidence_id"]
        index = self.derived.path(eid, f"packets-{art['id']}.parquet")
        notes: list[str] = []
        if not index.is_file():
            index.parent.mkdir(parents=True, exist_ok=True)
            try:
                built = build_index(blob, index, art["path"], self.derived.room(eid))
                if built["problem"]:
                    notes.append(f"the capture is damaged: {built['problem']} (packets before it are shown)")
            except StorageError as exc:
                notes.append(str(exc))
        return (index if index.is_file() else None), notes

    def _packet(self, base: dict[str, Any], art, blob: Path, number: int) -> DrillView:
        from backline.cases.drill.net import conversation, packet_fields

        index, notes = self._packet_index(art, blob)
        conv = conversation(index, number) if index is not None else {"packets": [], "conv": None}
        earlier = [p["number"] for p in conv["packets"] if p["number"] < number]
        fields = packet_fields(blob, number, art["path"], earlier,
                               partial=len(earlier) < conv.get("before_count", len(earlier)))
        if fields is None:
            return DrillView("raw", title=f"{art['path']} packet {number}", body=_raw_body(art, Locator("packet", number)),
                             notes=(f"the capture has no packet {number}",), **base)
        body = {"packet": fields, "conversation": conv}
        return DrillView("packet", title=f"{art['path']} packet {number}", body=body, notes=tuple(notes), **base)

    def _frame(self, base: dict[str, Any], art, blob: Path, loc: Locator, arts, commands: str | None = None
               ) -> DrillView:
        from backline.cases.drill.dumps import STANDARD_COMMANDS, debugger_output, frame_view, open_dump
        from backline.pipeline import provide_bundle_files
        from backline.model.core import Artifact, ArtifactKind

        helpers = [Artifact(a["path"], ArtifactKind(a["kind"]), a["size"], a["sha256"], self._blob(a), a["format"])
                   for a in arts if a["kind"] in ("executable", "symbols") and self._blob(a) is not None]
        with tempfile.TemporaryDirectory(prefix="drill-") as tmp:
            bins, syms = provide_bundle_files(helpers, Path(tmp))
            with open_dump(blob, art["kind"], art["format"], art["path"], bins, syms) as (rep, read, target):
                body = frame_view(rep, read, loc.thread, loc.number or 0)
                if target is not None:
                    wanted = [commands] if commands else list(STANDARD_COMMANDS)
                    body["debugger"] = debugger_output(target, wanted, loc.thread)
        notes = tuple(body.pop("notes", ()))
        if art["kind"] in ("crash_trace", "hs_err") and art["format"] != "microdump":
            body["trace"] = text_lines(blob, 1, context=400)["lines"]
        where = f"thread {loc.thread} frame {loc.number}" if loc.thread is not None else f"frame {loc.number}"
        return DrillView("frame", title=f"{art['path']} {where}", body=body, notes=notes, **base)


def _origin_note(base: Mapping[str, Any]) -> str | None:
    """Why the files of attached evidence are not here, in words (None for uploads)."""
    origin = base.get("origin") or {}
    if origin.get("kind") != "local_analysis":
        return None
    return (f"This finding came from a local analysis attached by {origin.get('attached_by', '?')} on "
            f"{origin.get('host', '?')}; the files it points into stayed there. Upload them "
            f"(backline case evidence {base['case']} FILE) to look inside.")


def _raw_body(art, loc: Locator) -> dict[str, Any]:
    return {"reference": loc.text, "artifact": {"path": art["path"], "kind": art["kind"], "format": art["format"],
                                                "size": art["size"], "sha256": art["sha256"]}}


__all__ = ["DrillService", "DrillView", "Locator", "LogQuery"]
