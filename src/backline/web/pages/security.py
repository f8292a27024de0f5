"""Page security: who is logged in (session cookie), CSRF checks, response headers.

* The session cookie (``bl_session``) is HttpOnly, SameSite=Lax, and Secure when the page is
  served over TLS.  Every request looks the session up in the database (one query), so an
  ended session or a disabled user is refused at once in every server process.
* Every state-changing page request (POST) must carry the session's CSRF token, as the
  ``csrf_token`` form field or the ``X-CSRF-Token`` header (htmx and the upload script send
  the header, read from the page's ``<meta name="csrf-token">``); without it: 403.  The
  login form, which has no session yet, uses a double-submit cookie instead.
* Every response gets a Content-Security-Policy without inline scripts, X-Frame-Options DENY
  (and ``frame-ancestors 'none'``), nosniff, a same-origin referrer policy, and a
  ``Server-Timing: app;dur=MS`` header (the server's time to the response's first byte).
"""

from __future__ import annotations

import secrets
import time

from fastapi import Depends
from starlette.requests import Request

from backline.cases.sessions import WebSession

SESSION_COOKIE = "bl_session"
LOGIN_CSRF_COOKIE = "bl_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
#: FastAPI's interactive API docs load their scripts from a CDN; they keep working without our policy.
_NO_CSP = ("/docs", "/redoc")


_UNSET = object()


class LoginRequired(Exception):
    """No live session: pages redirect to /login, htmx requests get HX-Redirect."""


class CsrfFailed(Exception):
    """A state-changing request without the session's CSRF token (403)."""


class SecurityHeaders:
    """Pure ASGI middleware adding the security headers to every response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        extra = [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
                 (b"referrer-policy", b"same-origin")]
        if not path.startswith(_NO_CSP):
            extra.append((b"content-security-policy", CSP.encode()))
        page = not path.startswith(("/api/", "/static/", "/healthz", "/openapi.json"))
        t0 = time.perf_counter()

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in extra if k not in names]
                # how long the server took to the first byte (read by benchmarks/web_bench.py)
                headers.append((b"server-timing", f"app;dur={(time.perf_counter() - t0) * 1000:.1f}".encode()))
                if page and b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def is_tls(request: Request) -> bool:
    return request.url.scheme == "https"


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def current_session(request: Request) -> WebSession | None:
    """The live session of this request, or None (looked up once per request)."""
    known = getattr(request.state, "web_session", _UNSET)
    if known is not _UNSET:
        return known
    hub = request.app.state.hub
    session = hub.sessions.lookup(request.cookies.get(SESSION_COOKIE))
    request.state.web_session = session
    return session


def require_session(request: Request) -> WebSession:
    session = current_session(request)
    if session is None:
        raise LoginRequired()
    return session


async def csrf_guard(request: Request, session: WebSession = Depends(require_session)) -> WebSession:
    """Refuse a state-changing request whose CSRF token is not the session's (403)."""
    if request.method in UNSAFE:
        sent = request.headers.get(CSRF_HEADER)
        if not sent:
            ctype = request.headers.get("content-type", "")
            if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
                form = await request.form()
                value = form.get(CSRF_FIELD)
                sent = value if isinstance(value, str) else None
        check_csrf(session, sent)
    return session


def check_csrf(session: WebSession, sent: str | None) -> None:
    """Refuse (403) unless ``sent`` is the session's CSRF token."""
    if not sent or not secrets.compare_digest(sent.encode(), session.csrf_token.encode()):
        raise CsrfFailed()


def set_session_cookie(response, request: Request, session_id: str, max_age: int) -> None:
    response.set_cookie(SESSION_COOKIE, session_id, max_age=max_age, path="/", httponly=True, samesite="lax",
                        secure=is_tls(request))


def clear_session_cookie(response, request: Request) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=is_tls(request))


#: The dependency every page router takes: a logged-in user, and the CSRF check on writes.
PageUser = Depends(csrf_guard)
