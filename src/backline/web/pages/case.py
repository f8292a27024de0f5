"""``/cases/{key}``: the case page, its live analysis fragment, and the note history.

Sections other parts of Backline fill in are listed in :data:`CASE_SECTIONS`
(the probable root cause, known-issue matches, similar cases): each is an id, a
heading and a provider ``(hub, user, case) -> Markup | None`` (None: "nothing
yet"); a provider that is not installed yet leaves its marked place empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from fastapi import APIRouter, Path, Request
from markupsafe import Markup

from backline.cases.bugs import FIELDS, TEXT_FIELDS, render_markdown
from backline.cases.model import ParticipantRole
from backline.web.pages.case_view import analysis_view, case_view, permissions
from backline.web.pages.diagnosis import diagnosis_section
from backline.web.pages.kb import known_issues_section
from backline.web.pages.markdown import to_html
from backline.web.pages.render import is_htmx, render
from backline.web.pages.security import PageUser
from backline.web.pages.similar import similar_section

router = APIRouter()

Provider = Callable[[Any, Any, Any], Markup | None]


@dataclass(frozen=True, slots=True)
class CaseSection:
    """A marked place on the case page for a part built elsewhere (staff only)."""

    id: str
    heading: str
    provider: Provider | None = None


#: The case page's extension places, in page order.  Fill ``provider`` to show something there.
CASE_SECTIONS: list[CaseSection] = [
    CaseSection("diagnosis", "Root cause (diagnosis)", diagnosis_section),   # knowledge/diagnosis (pages/diagnosis.py)
    CaseSection("known-issues", "Known issues", known_issues_section),   # knowledge/kb (pages/kb.py)
    CaseSection("similar", "Similar cases", similar_section),             # knowledge/similar (pages/similar.py)
]

_LABELS = {"summary": "Summary", "environment": "Environment", "symptoms": "Symptoms",
           "steps_to_reproduce": "Steps to reproduce", "expected": "Expected behaviour",
           "actual": "Actual behaviour", "crash_signature": "Crash signature", "root_cause": "Root cause",
           "suggested_fix": "Suggested fix"}


@dataclass(frozen=True, slots=True)
class BugField:
    name: str
    label: str
    value: str
    rows: int


def bug_form(bug: dict[str, Any]) -> dict[str, Any]:
    fields = [BugField(n, _LABELS.get(n, n), str(bug["fields"].get(n) or ""),
                       2 if n in ("crash_signature", "summary") else 4)
              for n in FIELDS if n in TEXT_FIELDS]
    return {**bug, "fields": fields, "preview": to_html(render_markdown(bug["title"], bug["fields"]))}


def _extensions(hub, user, case) -> list[dict[str, Any]]:
    if not user.role.is_staff:
        return []
    return [{"id": s.id, "heading": s.heading, "content": s.provider(hub, user, case) if s.provider else None}
            for s in CASE_SECTIONS]


def case_context(request: Request, key: str, session, message: str | None = None) -> dict[str, Any]:
    hub = request.app.state.hub
    view = case_view(hub, session.user, key, all_notes=request.query_params.get("notes") == "all")
    return {"title": f"{view.case.key} {view.case.title}", "view": view, "message": message,
            "extensions": _extensions(hub, session.user, view.case),
            "bug_forms": [bug_form(b) for b in view.bugs], "participant_roles": list(ParticipantRole)}


@router.get("/cases/{key}")
def case_page(request: Request, key: str = Path(max_length=40), session=PageUser):
    return render(request, "case.html", case_context(request, key, session))


@router.get("/cases/{key}/analysis")
def analysis_fragment(request: Request, key: str = Path(max_length=40), session=PageUser):
    """The evidence/analysis section alone (htmx polls it while jobs run)."""
    hub = request.app.state.hub
    case = hub.cases.get(session.user, key)
    view = {"case": case, "can": permissions(session.user), **analysis_view(hub, session.user, case)}
    if not is_htmx(request):
        return render(request, "case.html", case_context(request, key, session))
    return render(request, "case_analysis.html", {"view": view, "cs": case})


@router.get("/notes/{note_id}/edit")
def note_edit_form(request: Request, note_id: int = Path(ge=1, le=2 ** 63 - 1), session=PageUser):
    note = request.app.state.hub.cases.note(session.user, note_id)
    return render(request, "note_edit.html", {"title": f"Edit note {note_id}", "note": note,
                                              "fragment": is_htmx(request)})


@router.get("/notes/{note_id}/history")
def note_history(request: Request, note_id: int = Path(ge=1, le=2 ** 63 - 1), session=PageUser):
    hub = request.app.state.hub
    revisions = hub.cases.note_history(session.user, note_id)
    key = hub.cases.note(session.user, note_id).case_key
    return render(request, "note_history.html", {"title": f"Note {note_id}", "revisions": revisions,
                                                  "note_id": note_id, "case_key": key,
                                                  "fragment": is_htmx(request)})

