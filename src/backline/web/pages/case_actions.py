"""What a person does on the case page: status, ownership, links, participants, notes, intake, evidence.

Each handler makes one service call (one transaction, audited like the API)
and answers 303 back to the case page (post/redirect/get); errors become the
error page (403, 404, 409 changed meanwhile, 422 cannot do that).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, RedirectResponse

from backline.cases.model import Participant, ParticipantRole
from backline.errors import CaseError
from backline.web.pages.security import CSRF_FIELD, CSRF_HEADER, PageUser, check_csrf, require_session
from backline.web.uploads import stream_multipart

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
           co_owners: list[str] = Form([]), co_owners_set: str = Form(""), session=PageUser):
    """Owner and (when the form carries the co-owner list) co-owners, in one change."""
    co = [n for n in co_owners if n != owner] if co_owners_set else None
    request.app.state.hub.cases.assign(session.user, key, owner, co_owners=co, expected_version=_version(row_version))
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
async def upload(request: Request, key: str = Key, session=Depends(require_session)):
    """A multipart upload (``file``, several allowed); the script asks for JSON, a plain form gets a redirect.
    The files stream straight into the evidence store (``backline.web.uploads``); the CSRF token comes in
    the header or as the ``csrf_token`` field before the first file (where the form puts it)."""
    hub = request.app.state.hub
    header = request.headers.get(CSRF_HEADER)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        sent = header
        if sent is None and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            value = (await request.form()).get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
        check_csrf(session, sent)
        raise CaseError("choose a file to upload")
    if header is not None:
        check_csrf(session, header)

    def before_file(fields) -> None:
        if header is None:
            check_csrf(session, fields.get(CSRF_FIELD))

    await run_in_threadpool(hub.evidence.check_upload, session.user, key)
    fields, files = await stream_multipart(request, hub.store, max_bytes=hub.evidence.max_bytes, max_files=20,
                                           before_file=before_file)
    if header is None and not files:
        check_csrf(session, fields.get(CSRF_FIELD))
    if not files:
        raise CaseError("choose a file to upload")
    items = [await run_in_threadpool(hub.evidence.record_upload, session.user, key, f.filename, f.blob)
             for f in files]
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"evidence": [i.to_json() for i in items]}, status_code=201)
    return back(key, "analysis")
