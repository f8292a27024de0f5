"""The case page's "Similar cases" place and the intake form's "this looks like ..." hints.

A provider for :data:`backline.web.pages.case.CASE_SECTIONS` (staff only, like the other places):
:meth:`backline.knowledge.similar.service.SimilarService.panel` rendered as a list: each past case
with its link, title, status, owner, score and the reasons it was picked (``why``).  The same
fragment alone answers ``GET /cases/{key}/similar`` (for ``hx-get``).

:func:`intake_matches` gives the form at ``/cases/new`` (and the REST and CLI intake answers) the
open and closed cases an escalation being written looks like, as the service's one-line hints.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from fastapi import APIRouter, Request
from markupsafe import Markup

from backline.errors import BacklineError, PermissionDenied
from backline.web.pages.render import environment, render
from backline.web.pages.security import PageUser

log = logging.getLogger(__name__)
router = APIRouter()

#: Past cases shown on a case page.
PANEL_SIZE = 5


def similar_context(hub, user, key: str, *, limit: int = PANEL_SIZE) -> dict[str, Any]:
    """The view model of a case page's "Similar cases" section."""
    try:
        hits = hub.similar.panel(user, key, limit=limit)
        error = None
    except BacklineError as exc:            # the search failing must not take the case page down
        log.warning("similar cases of %s: %s", key, exc)
        hits, error = [], str(exc)
    words_only = hub.similar.indexer.embed_error
    return {"case": key, "hits": hits, "error": error, "words_only": words_only}


def similar_content(hub, user, key: str) -> Markup:
    """The inside of the "Similar cases" section: the search's answer as markup."""
    return Markup(environment().get_template("similar_case_content.html").render(similar_context(hub, user, key)))


def similar_section(hub, user, case) -> Markup:
    """The case page's "Similar cases" provider (``pages.case.CASE_SECTIONS``).

    The search over every case takes longer than the rest of the page together, so the page is
    sent without it and the section fills itself from ``GET /cases/{key}/similar`` once the page
    has loaded (HTMX); without scripts, the link opens the same answer."""
    return Markup(environment().get_template("similar_case_pending.html").render(case=case.key))


@router.get("/cases/{key}/similar")
def case_similar(request: Request, key: str, session=PageUser):
    """The "Similar cases" section of a case page alone (for ``hx-get``); staff only, like on the page."""
    hub = request.app.state.hub
    case = hub.cases.get(session.user, key)          # 404 for a case the user cannot see
    if not session.user.role.is_staff:
        raise PermissionDenied("similar cases are shown to the escalation team only")
    return render(request, "similar_case_section.html",
                  {"title": f"Similar cases of {key}", "content": similar_content(hub, session.user, case.key)})


def intake_matches(hub, user, *, title: str, product: str | None, intake: Mapping[str, Any],
                   exclude: str | None = None, limit: int = 3) -> list[dict[str, Any]]:
    """Past cases an escalation being written looks like: ``{"key", "title", "status", "owner",
    "score", "hint"}`` (the hint: ``this looks like ESC-1042 (...), open, owned by erin``).

    Empty when there is too little text to compare; a search failure is logged, not raised
    (an intake must never fail because of its hints).
    """
    try:
        return hub.similar.intake_matches(user, title=title, product=product or None, intake=intake,
                                          exclude=exclude, limit=limit)
    except BacklineError as exc:
        log.warning("intake hints: %s", exc)
        return []
