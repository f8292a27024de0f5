"""Bug report drafts (create, edit, preview, export) and hotfixes, from the case page."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from backline.cases.bugs import FIELDS, TEXT_FIELDS, render_markdown
from backline.errors import CaseError
from backline.web.pages.case_actions import Key, _version, back
from backline.web.pages.markdown import to_html
from backline.web.pages.render import is_htmx, render
from backline.web.pages.security import PageUser

router = APIRouter()
BugId = Path(ge=1, le=2 ** 63 - 1)
_EXPORTS = {"markdown": ("text/markdown; charset=utf-8", "md"), "jira": ("application/json", "jira.json"),
            "github": ("application/json", "github.json")}


def _edits(form) -> dict[str, Any]:
    changes: dict[str, Any] = {"fields": {n: str(form[n]) for n in FIELDS if n in TEXT_FIELDS and n in form}}
    if str(form.get("title", "")).strip():
        changes["title"] = str(form["title"]).strip()
    for k in ("tracker", "external_key", "external_url", "external_status"):
        if k in form:
            changes[k] = str(form[k]).strip()
    return changes


@router.post("/cases/{key}/bugs")
def create_bug(request: Request, key: str = Key, session=PageUser):
    bug = request.app.state.hub.bugs.create(session.user, key)
    return back(key, f"bug-{bug['id']}-h")


@router.post("/bugs/{bug_id}")
async def edit_bug(request: Request, bug_id: int = BugId, session=PageUser):

    form = await request.form()
    changes = _edits(form)
    version = _version(str(form.get("row_version", "")))
    bug = await run_in_threadpool(lambda: request.app.state.hub.bugs.edit(session.user, bug_id, changes,
                                                                          expected_version=version))
    return back(bug["case"], f"bug-{bug_id}-h")


@router.post("/bugs/{bug_id}/preview")
async def preview_bug(request: Request, bug_id: int = BugId, session=PageUser):
    """The draft as it would be exported, from the form's current (unsaved) values."""

    form = await request.form()
    bug = await run_in_threadpool(request.app.state.hub.bugs.get, session.user, bug_id)
    changes = _edits(form)
    html = to_html(render_markdown(changes.get("title", bug["title"]), {**bug["fields"], **changes["fields"]}))
    if is_htmx(request):
        return Response(str(html), media_type="text/html; charset=utf-8")
    return render(request, "bug_preview.html", {"title": f"Preview of bug report {bug_id}", "preview": html,
                                                "bug": bug})


@router.get("/bugs/{bug_id}/export")
def export_bug(request: Request, bug_id: int = BugId, format: str = Query("markdown"), session=PageUser):
    if format not in _EXPORTS:
        raise CaseError(f"unknown export format {format!r}; use markdown, jira or github")
    out = request.app.state.hub.bugs.render(session.user, bug_id, format)
    media, ext = _EXPORTS[format]
    body = out if isinstance(out, str) else json.dumps(out, indent=2, ensure_ascii=False)
    return Response(body, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="bug-{bug_id}.{ext}"'})


def _list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


@router.post("/cases/{key}/hotfixes")
async def create_hotfix(request: Request, key: str = Key, session=PageUser):

    form = await request.form()
    try:
        bug_ids = [int(b) for b in form.getlist("bug_ids")]
    except ValueError:
        raise CaseError("bug ids must be numbers") from None
    name, build = str(form.get("name", "")).strip(), str(form.get("build", "")).strip()
    if not name or not build or len(name) > 100 or len(build) > 200:
        raise CaseError("a hotfix needs a name (up to 100 characters) and a build (up to 200)")
    await run_in_threadpool(lambda: request.app.state.hub.hotfixes.create(
        session.user, name, build=build, bug_ids=bug_ids,
        affected_versions=_list(str(form.get("affected_versions", ""))),
        fixed_versions=_list(str(form.get("fixed_versions", ""))), delivered_to=[key]))
    return back(key, "hotfixes")


@router.post("/hotfixes/{name}/verification")
def verify_hotfix(request: Request, name: str = Path(max_length=100), verification: str = Form(...),
                  case: str = Form(..., max_length=40), session=PageUser):
    request.app.state.hub.hotfixes.set_verification(session.user, name, verification)
    return back(case, "hotfixes")
