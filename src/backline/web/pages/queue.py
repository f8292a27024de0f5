"""``/cases``: the queue (filters, SLA urgency, paging; refreshes itself through htmx polling)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request

from backline.cases.access import Action, allowed
from backline.cases.model import CaseSeverity, CaseStatus
from backline.cases.queue import SORTS, QueueFilters
from backline.web.pages.render import is_htmx, render
from backline.web.pages.security import PageUser

router = APIRouter()
REFRESH_SECONDS = 20
STATUS_OPTIONS = (("open", "open (all open statuses)"), ("all", "all"),
                  *((s.value, s.value.replace("_", " ")) for s in CaseStatus))


def query_string(f: QueueFilters) -> str:
    """The filters as a query string (without the page)."""
    pairs = [("status", s) for s in f.status] + [("severity", s) for s in f.severity]
    pairs += [(k, v) for k, v in (("owner", f.owner), ("product", f.product), ("org", f.org), ("q", f.text))
              if v]
    pairs.append(("sort", f.sort))
    return urlencode(pairs)


@router.get("/cases")
def queue(request: Request, session=PageUser):
    user = session.user
    qp = request.query_params
    f = QueueFilters.from_query({k: qp.getlist(k) for k in qp.keys()})
    q = request.app.state.queue.page(user, f)
    ctx = {"title": "Cases", "q": q, "f": f, "qs": query_string(f), "sort_label": SORTS[f.sort],
           "refresh_s": REFRESH_SECONDS, "show_org": user.org is None or allowed(user, Action.READ_INTERNAL_NOTES)}
    if is_htmx(request):
        return render(request, "queue_rows.html", ctx)
    ctx.update(choices=request.app.state.queue.choices(user), status_options=STATUS_OPTIONS,
               severities=list(CaseSeverity), sorts=list(SORTS.items()))
    return render(request, "queue.html", ctx)
