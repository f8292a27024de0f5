"""Templates: one Jinja2 environment (autoescape on), one layout, and the few values every page gets.

Templates only show what the page modules computed (view models); they hold no
logic beyond loops and ``if`` on prepared values.  htmx is served from
``static/vendor/htmx.min.js`` when the build fetched it (``make venv``); without it the
pages are plain forms and links (a warning is logged once).

>>> env = environment()
>>> env.from_string("{{ x }}").render(x="<script>")
'&lt;script&gt;'
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from backline import __version__

log = logging.getLogger(__name__)

WEB = Path(__file__).resolve().parent.parent
TEMPLATES = WEB / "templates"
STATIC = WEB / "static"
HTMX = STATIC / "vendor" / "htmx.min.js"


@lru_cache(maxsize=1)
def environment() -> Environment:
    from backline.web.pages.views import FILTERS
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(FILTERS)
    return env


@lru_cache(maxsize=1)
def htmx_available() -> bool:
    ok = HTMX.is_file()
    if not ok:
        log.warning("htmx is not installed at %s (run 'make venv'); pages work as plain forms", HTMX)
    return ok


@lru_cache(maxsize=1)
def asset_version() -> str:
    """Changes when a static file changes (cache busting for /static/...?v=)."""
    h = hashlib.sha256(__version__.encode())
    for p in sorted(STATIC.rglob("*")):
        if p.is_file():
            h.update(p.name.encode())
            h.update(str(p.stat().st_mtime_ns).encode())
    return h.hexdigest()[:10]


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(request: Request, template: str, context: Mapping[str, Any] | None = None, *,
           status: int = 200, headers: Mapping[str, str] | None = None) -> HTMLResponse:
    """Render ``template`` with the page basics (user, CSRF token, nav, htmx) plus ``context``."""
    session = getattr(request.state, "web_session", None)
    base = {
        "user": session.user if session else None,
        "csrf_token": session.csrf_token if session else "",
        "nav": _nav(session.user) if session else (),
        "path": request.url.path,
        "htmx": htmx_available(),
        "v": asset_version(),
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    html = environment().get_template(template).render({**base, **(context or {})})
    return HTMLResponse(html, status_code=status, headers=dict(headers or {}))


def _nav(user) -> tuple[tuple[str, str], ...]:
    from backline.cases.access import Action, allowed
    items = [("/cases", "Cases")]
    if allowed(user, Action.CREATE_CASE):
        items.append(("/cases/new", "New escalation"))
    if allowed(user, Action.READ_KB):
        items.append(("/kb", "Known issues"))
    if allowed(user, Action.READ_REPORTS):
        items.append(("/dashboard", "Dashboard"))
    return tuple(items)
