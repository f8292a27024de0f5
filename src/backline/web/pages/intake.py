"""``/cases/new``: support's escalation form, built from the product's intake rules.

While support types, the form is scored against the rules (htmx posts it to
``/cases/new/check``, which answers the score and the list of what is still
missing) and compared with the past cases support may see ("this looks like
ESC-1042 (...), open, owned by erin", from :mod:`backline.web.pages.similar`),
so a duplicate is noticed before it is filed; without htmx the "Check
completeness" button does the same with a full page.  Submitting files the case: complete escalations enter the queue as
``new``, incomplete ones go to ``needs_info`` and the case page lists exactly
what to add before resubmitting.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse

from backline.cases.access import Action, require
from backline.cases.model import CaseSeverity
from backline.cases.service import NewCase
from backline.errors import CaseError
from backline.web.pages.case_view import intake_fields
from backline.web.pages.render import is_htmx, render
from backline.web.pages.security import PageUser
from backline.web.pages.similar import intake_matches

router = APIRouter()
_BASICS = ("title", "product", "version", "org", "severity", "team")


def _values(source) -> dict[str, str]:
    return {k: str(v).strip() for k, v in source.items() if isinstance(v, str) and k != "csrf_token"}


def _context(request: Request, user, values: dict[str, str], *, checked: bool = False) -> dict[str, Any]:
    hub = request.app.state.hub
    rules = hub.cases.intake
    values = {**{k: "" for k in _BASICS}, **values}
    product = values.get("product", "")
    items = rules.for_product(product).items
    result = hub.cases.check_intake(product, {i.name: values.get(i.name, "") for i in items})
    return {"title": "New escalation", "values": values, "products": sorted(p for p in rules.products if p != "*"),
            "severities": list(CaseSeverity), "fields": intake_fields(items, values, result.missing if checked else ()),
            "check": result, "checked": checked, "org_required": user.org is None, "similar": []}


def _similar(request: Request, user, values: dict[str, str]) -> list[dict[str, Any]]:
    """The past cases the form as it is now looks like (see :func:`intake_matches`)."""
    hub = request.app.state.hub
    items = hub.cases.intake.for_product(values.get("product", "")).items
    return intake_matches(hub, user, title=values.get("title", ""), product=values.get("product", ""),
                          intake={i.name: values[i.name] for i in items if values.get(i.name)})


@router.get("/cases/new")
def new_case_form(request: Request, session=PageUser):
    require(session.user, Action.CREATE_CASE)
    values = {"severity": "S3", "team": session.user.team or "", **_values(request.query_params)}
    return render(request, "new_case.html", _context(request, session.user, values))


@router.post("/cases/new/check")
async def check(request: Request, session=PageUser):
    """The live quality score and what is missing, for the form as it is now."""
    require(session.user, Action.CREATE_CASE)
    values = _values(await request.form())
    ctx = _context(request, session.user, values, checked=True)
    ctx["similar"] = await run_in_threadpool(_similar, request, session.user, values)   # embeds the text
    if is_htmx(request):
        return render(request, "intake_check.html", ctx)
    return render(request, "new_case.html", ctx)


@router.post("/cases/new")
async def create(request: Request, session=PageUser):
    hub = request.app.state.hub
    user = session.user
    require(user, Action.CREATE_CASE)
    values = _values(await request.form())
    items = hub.cases.intake.for_product(values.get("product", "")).items
    intake = {i.name: values[i.name] for i in items if values.get(i.name)}
    org = values.get("org") or user.org
    if not org:
        raise CaseError("the customer organisation is required")
    new = NewCase(title=values.get("title", ""), product=values.get("product", ""), version=values.get("version", ""),
                  org=org, severity=CaseSeverity.parse(values.get("severity", "S3")), intake=intake,
                  team=values.get("team") or None)
    case = await run_in_threadpool(hub.cases.create, user, new)
    return RedirectResponse(f"/cases/{case.key}", status_code=303)
