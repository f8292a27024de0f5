"""The web workbench: server-rendered pages over the same case services as the REST API.

:func:`mount_pages` adds the page routers (one module per area), the static
files, the security headers and the HTML error pages to the API app.  The
pages call :mod:`backline.cases` services with the logged-in user, so the
permission table (:mod:`backline.cases.access`), the transactions and the audit
are the API's.
"""

from __future__ import annotations

import logging
from importlib import import_module

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.staticfiles import StaticFiles

from backline.errors import BacklineError, CaseError, Conflict, NotFound, PermissionDenied, UsageError
from backline.web.pages.render import STATIC, htmx_available, render
from backline.web.pages.security import CsrfFailed, LoginRequired, SecurityHeaders

log = logging.getLogger(__name__)

#: Page modules with a ``router``, in mounting order (``/cases/new`` before ``/cases/{key}``).
PAGE_MODULES: tuple[str, ...] = (
    "backline.web.pages.auth",
    "backline.web.pages.queue",
    "backline.web.pages.intake",
    "backline.web.pages.ref",
    "backline.web.pages.case",
    "backline.web.pages.case_actions",
    "backline.web.pages.bugs",
    "backline.web.pages.dashboard",
    "backline.web.pages.kb",
    "backline.web.pages.similar",
)

_NOT_PAGES = ("/api/", "/healthz", "/openapi.json", "/docs", "/redoc", "/static/")


def is_page(request: Request) -> bool:
    return not request.url.path.startswith(_NOT_PAGES)


def error_page(request: Request, status: int, title: str, message: str):
    return render(request, "error.html", {"title": title, "message": message, "status": status}, status=status)


def mount_pages(app: FastAPI) -> None:
    """Add the workbench pages to ``app`` (which has ``state.hub``)."""
    from backline.cases.queue import CaseQueue
    app.state.queue = CaseQueue(app.state.hub.cases)
    for name in PAGE_MODULES:
        app.include_router(import_module(name).router, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.add_middleware(SecurityHeaders)
    htmx_available()        # logs the warning once, at start, when htmx is missing

    api_errors = {cls: app.exception_handlers[cls] for cls in (BacklineError, StarletteHTTPException,
                                                               RequestValidationError)}

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _exc: LoginRequired):
        from backline.web.pages.auth import login_redirect
        return login_redirect(request)

    @app.exception_handler(CsrfFailed)
    async def _csrf(request: Request, _exc: CsrfFailed):
        return error_page(request, 403, "Forbidden", "The form was missing its security token (CSRF) or it was "
                                                     "stale. Reload the page and try again.")

    @app.exception_handler(BacklineError)
    async def _backline(request: Request, exc: BacklineError):
        if not is_page(request):
            return await api_errors[BacklineError](request, exc)
        if isinstance(exc, NotFound):
            return error_page(request, 404, "Not found", "There is no such page or case (or it is not yours to see).")
        if isinstance(exc, PermissionDenied):
            return error_page(request, 403, "Not allowed", exc.message)
        if isinstance(exc, Conflict):
            return error_page(request, 409, "Changed meanwhile", exc.message)
        if isinstance(exc, (CaseError, UsageError)):
            return error_page(request, 422, "Cannot do that", exc.message)
        log.error("page error: %s", exc)
        return error_page(request, 503, "Unavailable", "The service cannot answer right now; retry later.")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if not is_page(request):
            return await api_errors[StarletteHTTPException](request, exc)
        return error_page(request, exc.status_code, "Not found" if exc.status_code == 404 else "Error",
                          "There is no such page." if exc.status_code == 404 else str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        if not is_page(request):
            return await api_errors[RequestValidationError](request, exc)
        parts = ["{}: {}".format(".".join(str(x) for x in e.get("loc", ())[1:]), e.get("msg"))
                 for e in exc.errors()[:5]]
        return error_page(request, 422, "Cannot do that", "; ".join(parts) or "invalid input")
