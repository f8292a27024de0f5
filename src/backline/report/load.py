"""Read a ``report.json`` back, to check it or to render it again.

:func:`validate_document` checks a document against the shipped schema and
names the first problems by their JSON path; :func:`load_result` turns a
valid document into an :class:`AnalysisResult`, so every renderer can run
on an old report (``backline report render report.json --format html``).

What a report does not hold cannot come back: an artifact's bytes
(``local_path`` is ``None``; artifacts that were readable get their display
path there instead so their status survives), and events left out with
``include_events=False``.

>>> from backline.model import AnalysisResult
>>> from backline.report import build_report, render_json
>>> import json
>>> doc = json.loads(render_json(build_report(AnalysisResult(("b.zip",), (), (), (), (), ()))))
>>> load_result(doc).inputs
('b.zip',)
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from backline.errors import FormatError
from backline.model import (
    AnalysisResult,
    AnalyzerRun,
    Artifact,
    ArtifactKind,
    ChainLink,
    ClockSkew,
    Diagnosis,
    Event,
    EvidenceRef,
    Fact,
    Finding,
    NextStep,
    ProbableCause,
    Refusal,
    RunStatus,
    Severity,
    TsQuality,
)
from backline.report.json_report import load_schema

#: Largest report.json read back (a million events is about 180 MiB).
MAX_REPORT_BYTES = 1 << 30


def _dt(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _ref(d: dict[str, Any] | None) -> EvidenceRef | None:
    if d is None:
        return None
    return EvidenceRef(d["artifact"], d["locator"], d.get("excerpt"))


def read_document(path: Path) -> dict[str, Any]:
    """Parse ``path`` as JSON; unreadable or non-JSON input is a :class:`FormatError`."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror or exc}", artifact=str(path)) from exc
    if size > MAX_REPORT_BYTES:
        raise FormatError(f"{size:,} bytes is larger than the {MAX_REPORT_BYTES:,}-byte limit for a report",
                          artifact=str(path))
    try:
        with open(path, "rb") as fh:
            doc = json.load(fh)
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror or exc}", artifact=str(path)) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f"line:{exc.lineno}" if isinstance(exc, json.JSONDecodeError) else f"offset:{exc.start}"
        msg = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        raise FormatError(f"not JSON: {msg}", artifact=str(path), locator=where) from exc
    if not isinstance(doc, dict):
        raise FormatError("not a Backline report (top level is not an object)", artifact=str(path))
    return doc


def validate_document(doc: Any, *, limit: int = 20) -> list[str]:
    """Schema problems of ``doc`` as ``$.findings[0].severity: 'x' is not one of ...`` lines."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(load_schema(), format_checker=jsonschema.FormatChecker())
    problems = []
    for err in sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path]):
        where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        message = err.message if len(err.message) <= 200 else err.message[:197] + "..."
        problems.append(f"{where}: {message}")
        if len(problems) >= limit:
            break
    return problems


def _diagnosis(d: dict[str, Any] | None) -> Diagnosis | None:
    """The diagnosis of a report (None for reports written without one, or before it existed)."""
    if not d:
        return None
    causes = tuple(
        ProbableCause(
            title=c["title"], confidence=float(c["confidence"]), code=c["code"], finding=c["finding"],
            signal=c.get("signal", ""), evidence=tuple(_ref(r) for r in c["evidence"]),  # type: ignore[misc]
            chain=tuple(ChainLink(
                cause=link["cause"], effect=link["effect"], relation=link["relation"],
                rationale=link["rationale"], joined_on=tuple((j["kind"], j["value"]) for j in link["joined_on"]),
                evidence=tuple(_ref(r) for r in link["evidence"]),  # type: ignore[misc]
                effect_title=link.get("effect_title", ""), effect_summary=link.get("effect_summary", ""),
                weight=float(link.get("weight", 0.0)))
                for link in c["chain"]),
            next_steps=tuple(NextStep(n["kind"], n["text"]) for n in c["next_steps"]),
            reasons=tuple(c.get("reasons", ())))
        for c in d["probable_causes"])
    incident = d.get("incident") or {}
    return Diagnosis(
        causes=causes, incident_start=_dt(incident.get("start")), incident_end=_dt(incident.get("end")),
        skews=tuple(ClockSkew(k["artifact"], k["reference"], float(k["offset_s"]), int(k["pairs"]))
                    for k in d.get("clock_skews", ())),
        duration_s=float(d.get("duration_s") or 0.0), version=str(d.get("version", "1")))


def load_result(doc: dict[str, Any], *, source: str = "report.json") -> AnalysisResult:
    """Rebuild the :class:`AnalysisResult` a report was made from.

    The document must be valid (see :func:`validate_document`); otherwise a
    :class:`FormatError` names ``source`` and the first problem.
    """
    major = str(doc.get("schema_version", "")).split(".")[0]
    if major != "1":
        raise FormatError(f"schema_version {doc.get('schema_version')!r} is not supported (this reads 1.x)",
                          artifact=source, locator="$.schema_version")
    problems = validate_document(doc, limit=1)
    if problems:
        where, _, message = problems[0].partition(": ")
        raise FormatError(f"not a valid report: {message}", artifact=source, locator=where)

    artifacts: list[Artifact] = []
    runs: list[AnalyzerRun] = []
    for a in doc["artifacts"]:
        for r in a["runs"]:
            runs.append(AnalyzerRun(
                analyzer=r["analyzer"], version=r["version"], artifact=r["artifact"],
                status=RunStatus(r["status"]), reason=r["reason"], traceback=r["traceback"],
                duration_s=float(r["duration_s"]), events=r["events"], findings=r["findings"],
                facts=r["facts"], warnings=tuple(r["warnings"])))
        if not a["known"]:
            continue
        artifacts.append(Artifact(
            path=a["path"], kind=ArtifactKind(a["kind"]), size=a["size"] or 0, sha256=a["sha256"] or "",
            local_path=None if a["status"] == "unreadable" else Path(PurePosixPath(a["path"] or ".")),
            format=a["format"], compression=a["compression"], problems=tuple(a["problems"]),
            time_start=_dt(a["time_start"]), time_end=_dt(a["time_end"]), meta=a["meta"]))
    findings = tuple(
        Finding(code=f["code"], title=f["title"], severity=Severity.parse(f["severity"]),
                artifact=f["artifact"], evidence=tuple(_ref(e) for e in f["evidence"]),  # type: ignore[misc]
                detail=f["detail"], count=f["count"], first_seen=_dt(f["first_seen"]),
                last_seen=_dt(f["last_seen"]), analyzer=f["analyzer"], data=f["data"])
        for f in doc["findings"])
    events = tuple(
        Event(ts=_dt(e["ts"]), artifact=e["artifact"], kind=e["kind"], summary=e["summary"],
              severity=Severity.parse(e["severity"]), ref=_ref(e["ref"]),
              ts_quality=TsQuality(e["ts_quality"]), analyzer=e["analyzer"])
        for e in doc["events"])
    facts = tuple(Fact(f["name"], f["value"], f["artifact"], f["analyzer"]) for f in doc["facts"])
    analysis = doc["summary"]["analysis"]
    return AnalysisResult(
        inputs=tuple(doc["inputs"]), artifacts=tuple(artifacts), runs=tuple(runs), findings=findings,
        events=events, facts=facts, refusals=tuple(Refusal(r["path"], r["reason"]) for r in doc["refusals"]),
        started_at=_dt(analysis["started_at"]), finished_at=_dt(analysis["finished_at"]),
        options=doc["options"], backline_version=doc["backline_version"], schema_version=doc["schema_version"],
        diagnosis=_diagnosis(doc.get("diagnosis")))
