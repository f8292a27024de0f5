"""``/kb``: the known issues (list, show, new, edit, publish, retire), promotion of a case, and the
"Known issues" fragment of a case page (``/cases/{key}/known-issues``, for ``hx-get``).

The pages call :class:`backline.cases.knowledge.KnowledgeService` with the logged-in user,
so permissions, revisions and audit are the API's.  Matchers are edited as YAML (the data
form of docs/knowledge.md); a mistake re-shows the form with the field named.
"""

from __future__ import annotations

from typing import Any, Mapping

from fastapi import APIRouter, Request
from markupsafe import Markup
from starlette.responses import RedirectResponse

from backline.cases.access import Action, allowed
from backline.errors import BacklineError, CaseError
from backline.web.pages.render import render
from backline.web.pages.security import PageUser

router = APIRouter()
TEXT_FIELDS = ("title", "symptoms", "root_cause", "workaround", "notes")
FIX_FIELDS = ("bug", "bug_url", "fixed_in", "hotfix")


def _yaml_dump(value: Any) -> str:
    import yaml

    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=100) if value else ""


def _yaml_load(text: str, what: str) -> Any:
    import yaml

    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) if text.strip() else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise CaseError(f"{what}{f' line {mark.line + 1}' if mark else ''}: not YAML "
                        f"({getattr(exc, 'problem', None) or exc})") from None


def form_values(entry: Mapping[str, Any] | None) -> dict[str, str]:
    """The form's fields for an entry (or empty ones for a new entry)."""
    e = dict(entry or {})
    fix = e.get("fix") or {}
    affects = (e.get("affects") or [{}])[0]
    return {**{f: str(e.get(f) or "") for f in TEXT_FIELDS}, **{f"fix_{f}": str(fix.get(f) or "") for f in FIX_FIELDS},
            "product": str(affects.get("product") or ""), "versions": str(affects.get("versions") or ""),
            "match": str(e.get("match") or "any"), "matchers": _yaml_dump(e.get("matchers") or []),
            "tags": ", ".join(e.get("tags") or []), "revision": str(e.get("revision") or "")}


def entry_from_form(form: Mapping[str, str]) -> dict[str, Any]:
    """The entry's data form from the form fields (CaseError names a bad field)."""
    data: dict[str, Any] = {f: form.get(f, "").strip() for f in TEXT_FIELDS}
    fix = {f: form.get(f"fix_{f}", "").strip() for f in FIX_FIELDS}
    data["fix"] = {k: v for k, v in fix.items() if v}
    product, versions = form.get("product", "").strip(), form.get("versions", "").strip()
    data["affects"] = [{k: v for k, v in (("product", product), ("versions", versions)) if v}] \
        if product or versions else []
    data["match"] = form.get("match", "any") if form.get("match") in ("any", "all") else "any"
    matchers = _yaml_load(form.get("matchers", ""), "matchers")
    if not isinstance(matchers, list):
        raise CaseError("matchers: a YAML list of matchers (see docs/knowledge.md)")
    data["matchers"] = matchers
    data["tags"] = [t.strip() for t in form.get("tags", "").split(",") if t.strip()]
    return data


def _can(user, action: Action) -> bool:
    return allowed(user, action)


@router.get("/kb")
def kb_list(request: Request, session=PageUser, status: str | None = None, q: str | None = None,
            pack: bool = False):
    user = session.user
    kb = request.app.state.hub.knowledge
    entries = kb.list(user, status=status or None, q=q or None, include_pack=pack)
    return render(request, "kb_list.html", {"title": "Known issues", "entries": entries, "status": status or "",
                                            "q": q or "", "pack": pack, "can_add": _can(user, Action.MANAGE_KB)})


def _form_page(request: Request, *, entry: Mapping[str, Any] | None, values: Mapping[str, str], error: str = "",
               status: int = 200):
    key = (entry or {}).get("key")
    return render(request, "kb_form.html", {"title": f"Edit {key}" if key else "New known issue", "entry": entry,
                                            "v": dict(values), "error": error,
                                            "action": f"/kb/{key}/edit" if key else "/kb/new"}, status=status)


@router.get("/kb/new")
def kb_new_form(request: Request, session=PageUser):
    return _form_page(request, entry=None, values=form_values(None))


async def _save(request: Request, entry: Mapping[str, Any] | None, save) -> Any:
    """Save the posted form with ``save(data, revision)`` and go to the entry; a mistake in the
    entry re-shows the form with the field named (permission, conflict: the error pages)."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    rev = form.get("revision", "")
    try:
        e = save(entry_from_form(form), int(rev) if rev.isdigit() else None)
    except CaseError as exc:
        if exc.__class__ is not CaseError:
            raise
        return _form_page(request, entry=entry, values=form, error=exc.message, status=422)
    return RedirectResponse(f"/kb/{e['key']}", status_code=303)


@router.post("/kb/new")
async def kb_new(request: Request, session=PageUser):
    kb = request.app.state.hub.knowledge
    return await _save(request, None, lambda data, _rev: kb.add(session.user, data))


@router.get("/kb/{key}")
def kb_show(request: Request, key: str, session=PageUser):
    user = session.user
    kb = request.app.state.hub.knowledge
    e = kb.get(user, key)
    from backline.knowledge.kb.loader import parse_matcher

    described = []
    for m in e.get("matchers") or []:
        try:
            described.append(parse_matcher(m).describe())
        except BacklineError:
            described.append(str(m))
    stored = e.get("origin") == "service"
    return render(request, "kb_show.html", {
        "title": f"{e['key']} {e.get('title', '')}", "e": e, "matchers": described,
        "history": kb.history(user, key) if stored else [],
        "open_cases": kb.open_cases_matching(user, key),
        "can_edit": stored and _can(user, Action.MANAGE_KB),
        "can_publish": stored and _can(user, Action.PUBLISH_KB) and e.get("status") != "published",
        "can_retire": stored and _can(user, Action.PUBLISH_KB) and e.get("status") == "published"})


@router.get("/kb/{key}/edit")
def kb_edit_form(request: Request, key: str, session=PageUser):
    e = request.app.state.hub.knowledge.get(session.user, key)
    if e.get("origin") != "service":
        raise CaseError(f"{key} is a starter-pack entry: add an entry with its key to replace it")
    return _form_page(request, entry=e, values=form_values(e))


@router.post("/kb/{key}/edit")
async def kb_edit(request: Request, key: str, session=PageUser):
    kb = request.app.state.hub.knowledge
    return await _save(request, kb.get(session.user, key),
                       lambda data, rev: kb.edit(session.user, key, data, expected_revision=rev))


@router.post("/kb/{key}/publish")
def kb_publish(request: Request, key: str, session=PageUser):
    request.app.state.hub.knowledge.publish(session.user, key)
    return RedirectResponse(f"/kb/{key}", status_code=303)


@router.post("/kb/{key}/retire")
def kb_retire(request: Request, key: str, session=PageUser):
    request.app.state.hub.knowledge.retire(session.user, key)
    return RedirectResponse(f"/kb/{key}", status_code=303)


@router.get("/cases/{case_key}/promote")
def promote_form(request: Request, case_key: str, session=PageUser):
    request.app.state.hub.cases.get(session.user, case_key)      # 404 for a case the user cannot see
    return render(request, "kb_promote.html", {"title": f"Promote {case_key}", "case": case_key})


@router.post("/cases/{case_key}/promote")
def promote(request: Request, case_key: str, session=PageUser):
    e = request.app.state.hub.knowledge.promote(session.user, case_key)
    return RedirectResponse(f"/kb/{e['key']}/edit", status_code=303)


def case_known_issues(hub, user, key: str) -> dict[str, Any]:
    """The view model of a case page's "Known issues" section: the case's KB findings (each
    evidence reference with the link to its page), the crash signature links, and whether the
    user may promote the case."""
    from backline.cases.model import CaseStatus
    from backline.cases.signatures import signature_links
    from backline.web.pages.case_view import ref_url

    case = hub.cases.get(user, key)
    known = [f for f in hub.evidence.findings(user, key) if f["code"] in ("KB.MATCH", "KB.NOT_AFFECTED")]
    known.sort(key=lambda f: (f["code"] != "KB.MATCH", f["data"].get("key", "")))
    for f in known:
        ids = {(r.get("artifact"), r.get("locator")): r.get("evidence_id") for r in f.get("refs") or []}
        for m in f["data"].get("matched") or []:
            for r in m.get("evidence") or []:
                eid = ids.get((r.get("artifact"), r.get("locator")))
                r["url"] = ref_url(key, eid, r.get("artifact"), r.get("locator")) if eid else None
    links = signature_links(hub.cases, user, key, known_issues=hub.knowledge.published())
    return {"case": key, "known": known, "links": links,
            "can_promote": allowed(user, Action.MANAGE_KB) and case.status in (CaseStatus.RESOLVED, CaseStatus.CLOSED)}


def known_issues_section(hub, user, case) -> Markup:
    """The case page's "Known issues" provider (``pages.case.CASE_SECTIONS``): its content as markup."""
    from backline.web.pages.render import environment

    ctx = case_known_issues(hub, user, case.key)
    return Markup(environment().get_template("kb_case_content.html").render(ctx))


@router.get("/cases/{key}/known-issues")
def case_section(request: Request, key: str, session=PageUser):
    """The "Known issues" section of a case page alone (for ``hx-get``)."""
    hub = request.app.state.hub
    content = known_issues_section(hub, session.user, hub.cases.get(session.user, key))
    return render(request, "kb_case_section.html", {"title": f"Known issues of {key}", "content": content})
