"""``/cases/{key}/ref?e=&a=&l=``: the page behind every evidence reference.

The data comes from :class:`backline.cases.drill.DrillService` (the same as
``GET /api/cases/{key}/ref``); this module adds what the templates need to
show it: links to the neighbouring references (other packets of the
connection, other frames of the stack), the filter form's state, and the
case link.  Who may look is the drill service's rule: staff only, others get
the 404 page.

>>> with_params("/cases/ESC-1/ref?e=1&a=x&l=line%3A3", l="line:9", before=100)
'/cases/ESC-1/ref?e=1&a=x&l=line%3A9&before=100'
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from fastapi import APIRouter, Path, Query, Request

from backline.cases.drill import DrillView, LogQuery
from backline.errors import NotFound
from backline.web.pages.case_view import ref_url
from backline.web.pages.render import render
from backline.web.pages.security import PageUser

router = APIRouter()

#: How many more records a "more context" link asks for.
MORE = 100
_KIND_HEADING = {"log": "Log", "lines": "Text", "packet": "Packet", "frame": "Stack frame", "record": "Event record",
                 "raw": "Reference", "unavailable": "Reference"}


def with_params(url: str, **params: Any) -> str:
    """``url`` with some query parameters replaced (order kept; None removes one)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += [(k, str(v)) for k, v in params.items() if v is not None]
    return f"{parts.path}?{urlencode(query, quote_via=quote)}"


@router.get("/cases/{key}/ref")
def ref_page(request: Request, key: str = Path(max_length=40), session=PageUser,
             e: int = Query(ge=1, le=2 ** 63 - 1), a: str = Query(min_length=1, max_length=1000),
             l: str = Query(min_length=1, max_length=300),  # noqa: E741 - the contract's parameter name
             q: str | None = Query(default=None, max_length=200), level: list[str] = Query(default=[]),
             template: str | None = Query(default=None, max_length=64),
             before: int = Query(default=25, ge=0, le=500), after: int = Query(default=25, ge=0, le=500),
             cmd: str | None = Query(default=None, max_length=200)):
    hub = request.app.state.hub
    try:
        view = hub.drill.view(session.user, key, e, a, l, LogQuery(tuple(level), template, q, before, after),
                              debugger=(cmd or "").strip() or None)
    except NotFound as exc:
        if (exc.locator or "").startswith("case:"):
            raise                                   # no such case (or not theirs): the plain 404 page
        return render(request, "error.html", {"title": "Evidence not found", "status": 404,
                                              "message": exc.message}, status=404)
    return render(request, "ref.html", page_context(view, request.url.path + "?" + request.url.query))


def page_context(view: DrillView, here: str) -> dict[str, Any]:
    """Everything ``ref.html`` shows for ``view`` (``here``: this page's URL)."""
    base = ref_url(view.case, view.evidence_id, view.artifact, view.locator)
    ctx: dict[str, Any] = {"title": view.title, "ref": view, "heading": _KIND_HEADING.get(view.kind, "Reference"),
                           "case_url": f"/cases/{quote(view.case, safe='')}", "here": here,
                           "source": _source(view.origin), "log": None, "packet": None, "frame": None}
    body = dict(view.body)
    if view.kind == "log":
        qd = body["query"]
        ctx["log"] = {**body, "target_lines": body.get("target_lines", []), "levels_chosen": set(qd["levels"]),
                      "more_before": with_params(here, before=min(500, qd["before"] + MORE)),
                      "more_after": with_params(here, after=min(500, qd["after"] + MORE)),
                      "clear": base, "filtered": bool(qd["levels"] or qd["template"] or qd["search"]),
                      "rows": [dict(r, template_url=with_params(base, template=r["template_id"]), when=clock(r["ts"]))
                               for r in body["records"]]}
    elif view.kind == "packet":
        conv = body.get("conversation") or {}
        pkt = body["packet"]
        layers = [("Frame", list(pkt["frame"].items()))]
        layers += [(name.upper(), [(k, "-" if v is None else v) for k, v in pkt[name].items()])
                   for name in ("ip", "tcp", "udp") if name in pkt]
        ctx["packet"] = {**body, "layers": layers, "time": clock(pkt["time"]),
                         "first": clock(conv.get("first")), "last": clock(conv.get("last")),
                         "rows": [dict(p, url=ref_url(view.case, view.evidence_id, view.artifact,
                                                      f"packet:{p['number']}"), rel=f"{p.get('rel_s', 0):.6f}")
                                  for p in conv.get("packets", [])]}
    elif view.kind == "frame":
        thread = body.get("thread") or {}
        ti = thread.get("index")
        ctx["frame"] = {**body, "rows": [dict(f, url=ref_url(
            view.case, view.evidence_id, view.artifact,
            f"thread:{ti}/frame:{f['index']}" if ti is not None else f"frame:{f['index']}"))
            for f in body.get("frames", [])]}
    ctx["body"] = body
    return ctx


def clock(ts: str | None) -> str:
    """An ISO time as ``2026-11-27 11:26:39.356`` (UTC, to the precision the evidence has).

    >>> clock("2026-11-27T11:26:39.155746+00:00"), clock("2026-11-27T11:26:40+00:00"), clock(None)
    ('2026-11-27 11:26:39.155746', '2026-11-27 11:26:40', '-')
    """
    if not ts:
        return "-"
    text = str(ts).replace("T", " ")
    for suffix in ("+00:00", "Z"):
        text = text.removesuffix(suffix)
    if "." in text:
        head, frac = text.split(".", 1)
        frac = frac.rstrip("0")
        text = f"{head}.{frac}" if frac else head
    return text


def _source(origin) -> str | None:
    from backline.cases.evidence import origin_text
    return origin_text(origin)
