"""``/login`` and ``/logout`` (and ``/``, which sends people to their cases)."""

from __future__ import annotations

import secrets
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse

from backline.cases.sessions import LoginThrottled
from backline.errors import PermissionDenied
from backline.web.pages.render import render
from backline.web.pages.security import (LOGIN_CSRF_COOKIE, SESSION_COOKIE, CsrfFailed, clear_session_cookie,
                                         client_address, csrf_guard, current_session, is_tls, set_session_cookie)

router = APIRouter()


def safe_next(target: str | None) -> str:
    """Only a path on this site (never another host) may follow a login.

    >>> safe_next("/cases/ESC-1001"), safe_next("//evil.example/x"), safe_next("https://evil.example")
    ('/cases/ESC-1001', '/cases', '/cases')
    """
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/cases"
    return target


def _login_page(request: Request, *, error: str | None = None, status: int = 200, name: str = "",
                next_path: str = "/cases", headers: dict[str, str] | None = None):
    token = secrets.token_urlsafe(32)
    response = render(request, "login.html", {"error": error, "name": name, "next": next_path, "title": "Log in",
                                              "login_csrf": token},
                      status=status, headers=headers)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, path="/login", httponly=True, samesite="strict",
                        secure=is_tls(request))
    return response


@router.get("/")
def home(request: Request):
    return RedirectResponse("/cases" if current_session(request) else "/login", status_code=303)


@router.get("/login")
def login_form(request: Request, next: str | None = None):
    current_session(request)          # the header shows who is logged in; logging in again switches user
    return _login_page(request, next_path=safe_next(next))


@router.post("/login")
async def login(request: Request, username: str = Form(""), password: str = Form(""),
                csrf_token: str = Form(""), next: str = Form("/cases")):
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not secrets.compare_digest(cookie.encode(), csrf_token.encode()):
        raise CsrfFailed()
    hub = request.app.state.hub
    try:
        session_id, session = await run_in_threadpool(hub.sessions.login, username, password, client_address(request),
                                                      request.cookies.get(SESSION_COOKIE))
    except LoginThrottled as exc:
        return _login_page(request, error=exc.message, status=429, name=username, next_path=safe_next(next),
                           headers={"Retry-After": str(exc.retry_after)})
    except PermissionDenied as exc:
        return _login_page(request, error=exc.message, status=401, name=username, next_path=safe_next(next))
    response = RedirectResponse(safe_next(next), status_code=303)
    set_session_cookie(response, request, session_id, int(hub.sessions.ttl.total_seconds()))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, _session=Depends(csrf_guard)):
    request.app.state.hub.sessions.end(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, request)
    return response


def login_redirect(request: Request):
    """Where a request without a live session goes (htmx: HX-Redirect, so the whole page moves)."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = "/login?next=" + quote(here, safe="/")
    if request.headers.get("hx-request") == "true":
        return RedirectResponse(target, status_code=303, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)
