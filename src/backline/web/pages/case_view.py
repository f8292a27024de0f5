"""What the case page shows, gathered from the case services for one user (a view model).

Every piece is read through the same services as the API, so what a user
sees is decided by :mod:`backline.cases.access` alone: a customer gets the
case, its public notes and its evidence; findings, timeline, SLA, bugs,
hotfixes and the audit only appear for the roles the permission table gives
them to.

>>> ref_url("ESC-1001", 3, "bundle.zip!/logs/app log.txt", "line:8")
'/cases/ESC-1001/ref?e=3&a=bundle.zip%21%2Flogs%2Fapp%20log.txt&l=line%3A8'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence
from urllib.parse import quote

from markupsafe import Markup

from backline.cases.access import SUPPORT_STATUS_MOVES, Action, allowed
from backline.cases.hub import Hub
from backline.cases.intake import IntakeItem
from backline.cases.model import TRANSITIONS, Case, CaseStatus, Note, Role, User
from backline.cases.sla import Clock
from backline.model import Event, EvidenceRef, Severity

#: How many timeline events the page lists (the chart counts them all).
EVENT_ROWS = 200
#: How many notes the page shows unless all are asked for (the latest ones).
NOTES_SHOWN = 100
#: Statuses a move to which is offered as a button, in the order they are shown.
_ORDER = list(CaseStatus)
_BUTTON = {CaseStatus.INVESTIGATING: "Start investigating", CaseStatus.WAITING_CUSTOMER: "Wait for customer",
           CaseStatus.WAITING_DEVELOPMENT: "Wait for development", CaseStatus.FIX_PENDING: "Fix pending",
           CaseStatus.RESOLVED: "Resolve", CaseStatus.CLOSED: "Close", CaseStatus.NEEDS_INFO: "Return for information",
           CaseStatus.NEW: "Resubmit"}


def ref_url(key: str, evidence_id: int | None, artifact: str | None, locator: str | None) -> str:
    """The drill-down link of one evidence reference (the views behind it live in the ref routes)."""
    return (f"/cases/{quote(key, safe='')}/ref?e={evidence_id if evidence_id is not None else ''}"
            f"&a={quote(artifact or '', safe='')}&l={quote(locator or '', safe='')}")


@dataclass(frozen=True, slots=True)
class RefView:
    artifact: str
    locator: str
    excerpt: str | None
    url: str


@dataclass(frozen=True, slots=True)
class FindingView:
    id: int
    code: str
    title: str
    severity: str
    artifact: str
    evidence_file: str
    detail: str
    count: int
    refs: tuple[RefView, ...]
    source: str | None = None            # "attached by erin from a local analysis on lap-7"


@dataclass(frozen=True, slots=True)
class EventView:
    ts: Any
    artifact: str
    kind: str
    summary: str
    severity: str
    ref: RefView | None


@dataclass(frozen=True, slots=True)
class IntakeField:
    name: str
    label: str
    value: str
    missing: bool
    min_length: int
    required: bool


@dataclass
class CaseView:
    case: Case
    user: User
    can: dict[str, bool]
    transitions: list[tuple[str, str]]
    clocks: Sequence[Clock] = ()
    notes: Sequence[Note] = ()
    note_total: int = 0
    evidence: Sequence[Any] = ()
    analysis_pending: bool = False
    findings: list[tuple[str, list[FindingView]]] = field(default_factory=list)
    finding_count: int = 0
    events: list[EventView] = field(default_factory=list)
    event_count: int = 0
    timeline_svg: Markup | None = None
    bugs: Sequence[dict[str, Any]] = ()
    hotfixes: Sequence[dict[str, Any]] = ()
    audit: Sequence[Any] = ()
    staff: Sequence[str] = ()
    intake: list[IntakeField] = field(default_factory=list)
    intake_hints: Sequence[str] = ()


def permissions(user: User) -> dict[str, bool]:
    """``{action name: allowed}`` for the templates."""
    return {a.value: allowed(user, a) for a in Action}


def transitions_for(user: User, case: Case) -> list[tuple[str, str]]:
    """The status moves this user may make now, as (status, button text)."""
    if not allowed(user, Action.CHANGE_STATUS):
        return []
    moves = [s for s in _ORDER if s in TRANSITIONS[case.status]]
    if user.role is Role.SUPPORT:
        moves = [s for s in moves if s in SUPPORT_STATUS_MOVES]
    if case.status is CaseStatus.RESOLVED:
        return [(s.value, "Reopen" if s is CaseStatus.INVESTIGATING else _BUTTON[s]) for s in moves]
    return [(s.value, _BUTTON[s]) for s in moves]


def evidence_of(finding: dict[str, Any], artifact: str, by_name: dict[str, list[int]]) -> int | None:
    """The evidence an artifact path belongs to: its first component is the uploaded file's name.

    A finding can point into another upload of the case (a known-issue match stored with the
    newest analysis cites the capture of an earlier one), so the finding's own evidence is only
    the answer when the names agree.

    >>> evidence_of({"evidence_id": 2, "evidence_file": "x.log"}, "bundle.zip!/a.pcap", {"bundle.zip": [1], "x.log": [2]})
    1
    >>> evidence_of({"evidence_id": 3, "evidence_file": "b.zip"}, "b.zip!/a.log", {"b.zip": [1, 3]})
    3
    """
    head = artifact.split("!/", 1)[0].split("/", 1)[0]
    own = finding.get("evidence_id")
    if head == finding.get("evidence_file") or head not in by_name:
        return own
    return by_name[head][-1]


def intake_fields(items: Sequence[IntakeItem], values: dict[str, Any], missing: Sequence[str]) -> list[IntakeField]:
    return [IntakeField(i.name, i.label, _text(values.get(i.name)), i.name in missing, i.min_length, i.required)
            for i in items]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "\n".join(str(v) for v in value)
    return str(value)


def analysis_view(hub: Hub, user: User, case: Case) -> dict[str, Any]:
    """Evidence, job states, findings and timeline (the part of the page that updates live)."""
    can = permissions(user)
    evidence = hub.evidence.list(user, case.key)
    out: dict[str, Any] = {"evidence": evidence,
                           "analysis_pending": any(e.job_status in ("queued", "running") for e in evidence),
                           "findings": [], "finding_count": 0, "events": [], "event_count": 0, "timeline_svg": None}
    if not can[Action.READ_FINDINGS.value]:
        return out
    groups: dict[str, list[FindingView]] = {}
    findings = hub.evidence.findings(user, case.key)
    by_name: dict[str, list[int]] = {}
    for e in evidence:
        by_name.setdefault(e.filename, []).append(e.id)
    for f in findings:
        refs = tuple(RefView(r.get("artifact") or f["artifact"], r.get("locator") or "", r.get("excerpt"),
                             ref_url(case.key, r.get("evidence_id") or evidence_of(f, r.get("artifact") or f["artifact"],
                                                                                    by_name),
                                     r.get("artifact") or f["artifact"], r.get("locator")))
                     for r in (f.get("refs") or [])[:5])
        groups.setdefault(f["severity"], []).append(
            FindingView(f["id"], f["code"], f["title"], f["severity"], f["artifact"], f["evidence_file"],
                        f["detail"], f["count"], refs, f.get("source")))
    order = [s.label for s in sorted(Severity, reverse=True)]
    out["findings"] = [(label, groups[label]) for label in order if label in groups]
    out["finding_count"] = len(findings)
    events = hub.evidence.events(user, case.key)
    out["event_count"] = len(events)
    if events:
        from backline.report.svg import timeline_svg
        from backline.report.timeline import build_timeline
        model = [Event(e["ts"], e["artifact"], e["kind"], e["summary"], Severity(e["severity"]),
                       EvidenceRef(e["artifact"], e["locator"], e["excerpt"]) if e["locator"] else None)
                 for e in events]
        out["timeline_svg"] = Markup(timeline_svg(build_timeline(model)))   # noqa: S704 - escaped by svg.py
        notable = sorted(events, key=lambda e: -e["severity"])[:EVENT_ROWS]
        notable.sort(key=lambda e: (e["ts"] is None, e["ts"] or 0, e["id"]))
        out["events"] = [EventView(e["ts"], e["artifact"], e["kind"], e["summary"], Severity(e["severity"]).label,
                                   RefView(e["artifact"], e["locator"], e["excerpt"],
                                           ref_url(case.key, e["evidence_id"], e["artifact"], e["locator"]))
                                   if e["locator"] else None)
                         for e in notable]
    return out


def case_view(hub: Hub, user: User, key: str, *, all_notes: bool = False) -> CaseView:
    with hub.cases.read_snapshot():          # the case row is read and checked once for the whole page
        return _case_view(hub, user, key, all_notes)


def _case_view(hub: Hub, user: User, key: str, all_notes: bool) -> CaseView:
    case = hub.cases.get(user, key)
    can = permissions(user)
    view = CaseView(case=case, user=user, can=can, transitions=transitions_for(user, case))
    notes = hub.cases.notes(user, key)
    view.note_total = len(notes)
    view.notes = notes if all_notes else notes[-NOTES_SHOWN:]
    for name, value in analysis_view(hub, user, case).items():
        setattr(view, name, value)
    if can[Action.READ_SLA.value]:
        view.clocks = hub.cases.sla_clocks(user, key)
    if can[Action.READ_BUGS.value]:
        view.bugs = hub.bugs.list(user, key)
    if can[Action.READ_HOTFIXES.value]:
        view.hotfixes = hub.hotfixes.for_case(user, key)
    if can[Action.READ_AUDIT.value]:
        view.audit = hub.cases.audit_log(user, key)[-200:]
    if can[Action.ASSIGN.value]:
        view.staff = [u.name for u in hub.users.list()
                      if u.role in (Role.ENGINEER, Role.DEVELOPER, Role.MANAGER, Role.ADMIN)]
    if case.status is CaseStatus.NEEDS_INFO and can[Action.UPDATE_CASE.value]:
        rules = hub.cases.intake.for_product(case.product)
        check = hub.cases.check_intake(case.product, case.intake)
        view.intake = intake_fields(rules.items, dict(case.intake), check.missing)
        view.intake_hints = check.hints
    return view
