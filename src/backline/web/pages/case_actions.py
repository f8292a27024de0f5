"""What a person does on the case page: status, ownership, links, participants, notes, intake, evidence.

Each handler makes one service call (one transaction, audited like the API)
and answers 303 back to the case page (post/redirect/get); errors become the
error page (403, 404, 409 changed meanwhile, 422 cannot do that).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, RedirectResponse

from backline.cases.model import Participant, ParticipantRole
from backline.errors import CaseError
from backline.web.pages.security import PageUser

router = APIRouter()
Key = Path(max_length=40)


def back(key: str, anchor: str = "") -> RedirectResponse:
    return RedirectResponse(f"/cases/{key}" + (f"#{anchor}" if anchor else ""), status_code=303)


def _version(value: str | None) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise CaseError("row_version must be a number") from None


@router.post("/cases/{key}/status")
def set_status(request: Request, key: str = Key, status: str = Form(...), reason: str = Form(""),
               row_version: str = Form(""), session=PageUser):
    request.app.state.hub.cases.set_status(session.user, key, status, reason=reason or None,
                                           expected_version=_version(row_version))
    return back(key)


@router.post("/cases/{key}/assign")
def assign(request: Request, key: str = Key, owner: str = Form(...), row_version: str = Form(""),
           session=PageUser):
    request.app.state.hub.cases.assign(session.user, key, owner, expected_version=_version(row_version))
    return back(key)


@router.post("/cases/{key}/links")
def link(request: Request, key: str = Key, other: str = Form(..., max_length=40), session=PageUser):
    request.app.state.hub.cases.link(session.user, key, other.strip())
    return back(key)


@router.post("/cases/{key}/participants")
def add_participant(request: Request, key: str = Key, name: str = Form(..., max_length=200),
                    role: str = Form(...), email: str = Form("", max_length=320), session=PageUser):
    try:
        prole = ParticipantRole(role)
    except ValueError:
        raise CaseError(f"unknown participant role {role!r}") from None
    request.app.state.hub.cases.add_participant(session.user, key, Participant(name.strip(), prole, email or None))
    return back(key)


@router.post("/cases/{key}/notes")
def add_note(request: Request, key: str = Key, body: str = Form(...), visibility: str = Form("internal"),
             session=PageUser):
    note = request.app.state.hub.cases.add_note(session.user, key, body, visibility)
    return back(key, f"note-{note.id}")


@router.post("/notes/{note_id}")
def edit_note(request: Request, note_id: int = Path(ge=1, le=2 ** 63 - 1), body: str = Form(...),
              revisions: str = Form(""), session=PageUser):
    note = request.app.state.hub.cases.edit_note(session.user, note_id, body, expected_revisions=_version(revisions))
    return back(note.case_key, f"note-{note.id}")


@router.post("/cases/{key}/intake")
async def resubmit(request: Request, key: str = Key, session=PageUser):
    """Save the intake items support added; with ``action=resubmit`` also move the case to ``new``
    when nothing required is missing any more (else the case page lists what still is)."""
    hub = request.app.state.hub
    form = await request.form()
    case = await run_in_threadpool(hub.cases.get, session.user, key)
    names = [i.name for i in hub.cases.intake.for_product(case.product).items]
    intake: dict[str, Any] = {n: str(form.get(n, "")).strip() for n in names if str(form.get(n, "")).strip()}
    version = _version(str(form.get("row_version", "")))
    case = await run_in_threadpool(lambda: hub.cases.update(session.user, key, {"intake": intake},
                                                            expected_version=version))
    if form.get("action") == "resubmit" and not case.intake_missing:
        await run_in_threadpool(lambda: hub.cases.set_status(session.user, key, "new",
                                                             expected_version=case.row_version))
    return back(key, "intake" if case.intake_missing else "")


@router.post("/cases/{key}/evidence")
async def upload(request: Request, key: str = Key, session=PageUser):
    """A multipart upload (``file``, several allowed); the script asks for JSON, a plain form gets a redirect."""
    hub = request.app.state.hub
    form = await request.form(max_files=20, max_fields=10)
    items = []
    try:
        parts = [p for p in form.getlist("file") if not isinstance(p, str) and p.filename]
        if not parts:
            raise CaseError("choose a file to upload")
        for part in parts:
            items.append(await run_in_threadpool(hub.evidence.upload, session.user, key, part.filename, part.file))
    finally:
        await form.close()
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"evidence": [i.to_json() for i in items]}, status_code=201)
    return back(key, "analysis")
