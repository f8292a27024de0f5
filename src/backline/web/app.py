"""The REST API (FastAPI).  Thin: authenticate, parse, call the case services, map errors.

Every route except ``/healthz`` and the OpenAPI document needs
``Authorization: Bearer <token>``; what the caller may see and do is decided
by :mod:`backline.cases.access`.  Errors are JSON ``{"error": {"code",
"message"}}`` with a 4xx status and never a traceback.

    backline serve --port 8080
    curl -H "Authorization: Bearer $TOKEN" localhost:8080/api/cases
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from backline import __version__
from backline.cases.diagnosis import DiagnosisService
from backline.cases.drill import LogQuery
from backline.cases.hub import Hub
from backline.cases.model import CaseSeverity, CaseStatus, Participant, ParticipantRole, User
from backline.cases.reports import summary
from backline.cases.service import NewCase
from backline.errors import (BacklineError, CaseError, Conflict, NotFound, PermissionDenied, StorageError,
                             UsageError)
from backline.web import schemas as S
from backline.web.limits import BodyLimit
from backline.web.uploads import stream_multipart

log = logging.getLogger(__name__)

MAX_JSON_BODY = 1024 * 1024


class AuthError(Exception):
    def __init__(self, message: str):
        self.message = message


def J(body: Any, status: int = 200) -> JSONResponse:
    """A JSON response of plain data (skips FastAPI's slow recursive encoder)."""
    return JSONResponse(body, status_code=status)


def _err(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def create_app(hub: Hub, *, max_json_body: int = MAX_JSON_BODY, pages: bool = True) -> FastAPI:
    """The API over ``hub``, and the web workbench's pages (``backline.web.pages``) unless ``pages`` is off."""
    app = FastAPI(title="Backline case service", version=__version__,
                  description="Escalation cases: intake, ownership, SLA clocks, notes, evidence, bugs, hotfixes, "
                              "known issues.")
    app.state.hub = hub
    app.add_middleware(BodyLimit, default_limit=max_json_body,
                       upload_limit=hub.evidence.max_bytes + 64 * 1024, upload_suffix="/evidence",
                       suffix_limits={"/analyses": hub.analyses.max_bytes})

    # ---------------------------------------------------------------- errors
    @app.exception_handler(AuthError)
    async def _auth(_r: Request, exc: AuthError):
        return _err(401, "unauthorized", exc.message, {"WWW-Authenticate": "Bearer"})

    @app.exception_handler(BacklineError)
    async def _backline(_r: Request, exc: BacklineError):
        if isinstance(exc, PermissionDenied):
            return _err(403, "forbidden", str(exc))
        if isinstance(exc, NotFound):
            return _err(404, "not_found", str(exc))
        if isinstance(exc, Conflict):
            return _err(409, "conflict", str(exc))
        if isinstance(exc, StorageError) and "larger than the limit" in exc.message:
            return _err(413, "too_large", str(exc))
        if isinstance(exc, (CaseError, UsageError)):
            return _err(422, "invalid", str(exc))
        log.error("storage/internal error: %s", exc)
        return _err(503 if isinstance(exc, StorageError) else 400, "error", str(exc))

    @app.exception_handler(SQLAlchemyError)
    async def _database(_r: Request, exc: SQLAlchemyError):
        # a safety net: values the database refuses are the caller's problem (422); anything
        # else is the database being unavailable (503) - never a traceback
        if isinstance(exc, (DataError, IntegrityError)):
            return _err(422, "invalid", "a value cannot be stored (out of range or conflicting)")
        log.error("database error: %s", exc.__class__.__name__)
        return _err(503, "unavailable", "the database is unavailable; retry later")

    @app.exception_handler(OverflowError)
    async def _overflow(_r: Request, exc: OverflowError):
        return _err(422, "invalid", "a number is out of range")

    @app.exception_handler(RequestValidationError)
    async def _validation(_r: Request, exc: RequestValidationError):
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return _err(400, "malformed_json", "request body is not valid JSON")
        parts = []
        for e in errors[:10]:
            loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
            parts.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
        return _err(422, "invalid", "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_r: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status_code, "error")
        return _err(exc.status_code, code, str(exc.detail))

    # ---------------------------------------------------------------- auth
    async def current_user(authorization: str | None = Header(default=None)) -> User:
        # every request reads the token's user from the database (in a thread), so a disabled
        # user or a rotated token is refused on the very next request in every process
        if not authorization:
            raise AuthError("missing API token (send 'Authorization: Bearer <token>')")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("use 'Authorization: Bearer <token>'")
        try:
            return await run_in_threadpool(hub.users.authenticate, token.strip())
        except PermissionDenied as exc:
            raise AuthError(exc.message) from None

    Auth = Depends(current_user)

    def version_of(body_version: int | None, if_match: str | None) -> int | None:
        if body_version is not None:
            return body_version
        if if_match:
            try:
                return int(if_match.strip().strip('"').removeprefix("W/").strip('"'))
            except ValueError:
                raise CaseError("If-Match must be the case's row_version (a number)") from None
        return None

    def case_response(case, status: int = 200, extra: dict[str, Any] | None = None) -> JSONResponse:
        body = case.to_json() | (extra or {})
        return JSONResponse(body, status_code=status, headers={"ETag": f'"{case.row_version}"'})

    # ---------------------------------------------------------------- routes
    @app.get("/healthz", include_in_schema=False)
    def healthz():
        return {"ok": True, "version": __version__}

    @app.get("/api/me")
    def me(user: User = Auth):
        return J({"name": user.name, "role": user.role.value, "org": user.org, "team": user.team})

    @app.post("/api/cases", status_code=201)
    def create_case(body: S.CaseIn, user: User = Auth):
        org = body.org or user.org
        if not org:
            raise CaseError("org (the customer organisation) is required")
        new = NewCase(title=body.title, product=body.product, version=body.version, org=org,
                      severity=CaseSeverity(body.severity), intake=body.intake, team=body.team,
                      sla_policy=body.sla_policy, calendar=body.calendar, links=tuple(body.links),
                      participants=tuple(Participant(p.name, ParticipantRole(p.role), p.email)
                                         for p in body.participants))
        case = hub.cases.create(user, new)
        intake = hub.cases.check_intake(case.product, case.intake)
        return case_response(case, 201, {"intake_result": intake.to_json(),
                                         "similar": _intake_similar(user, case)})

    def _intake_similar(user: User, case) -> list[dict[str, Any]]:
        """Past cases the new escalation looks like ("this looks like ESC-1042 (...), open, owned by
        erin"); a failing search never fails the intake."""
        try:
            return hub.similar.intake_matches(user, title=case.title, product=case.product, intake=case.intake,
                                              exclude=case.key)
        except BacklineError as exc:
            log.warning("similar cases at intake of %s: %s", case.key, exc)
            return []

    @app.get("/api/cases")
    def list_cases(user: User = Auth, status: list[str] = Query(default=[]), severity: list[str] = Query(default=[]),
                   org: str | None = None, owner: str | None = None,
                   limit: int = Query(default=100, ge=1, le=1000), offset: int = Query(default=0, ge=0)):
        cases = hub.cases.list(user, status=[CaseStatus.parse(s) for s in status],
                               severity=[CaseSeverity.parse(s) for s in severity], org=org, owner=owner,
                               limit=limit, offset=offset)
        return J({"cases": [c.to_json() for c in cases], "limit": limit, "offset": offset})

    @app.get("/api/cases/{key}")
    def get_case(key: str, user: User = Auth):
        return case_response(hub.cases.get(user, key))

    @app.patch("/api/cases/{key}")
    def update_case(key: str, body: S.CaseUpdateIn, user: User = Auth, if_match: str | None = Header(default=None)):
        changes = body.model_dump(exclude_unset=True, exclude={"row_version"})
        return case_response(hub.cases.update(user, key, changes,
                                              expected_version=version_of(body.row_version, if_match)))

    @app.post("/api/cases/{key}/status")
    def set_status(key: str, body: S.StatusIn, user: User = Auth, if_match: str | None = Header(default=None)):
        return case_response(hub.cases.set_status(user, key, body.status, reason=body.reason,
                                                  expected_version=version_of(body.row_version, if_match)))

    @app.post("/api/cases/{key}/assign")
    def assign(key: str, body: S.AssignIn, user: User = Auth, if_match: str | None = Header(default=None)):
        return case_response(hub.cases.assign(user, key, body.owner, co_owners=body.co_owners,
                                              expected_version=version_of(body.row_version, if_match)))

    @app.post("/api/cases/{key}/links")
    def link(key: str, body: S.LinkIn, user: User = Auth):
        return case_response(hub.cases.link(user, key, body.other, body.kind))

    @app.post("/api/cases/{key}/participants", status_code=201)
    def add_participant(key: str, body: S.ParticipantIn, user: User = Auth):
        case = hub.cases.add_participant(user, key, Participant(body.name, ParticipantRole(body.role), body.email))
        return case_response(case, 201)

    @app.post("/api/cases/{key}/notes", status_code=201)
    def add_note(key: str, body: S.NoteIn, user: User = Auth):
        return J(hub.cases.add_note(user, key, body.body, body.visibility).to_json(), 201)

    @app.get("/api/cases/{key}/notes")
    def list_notes(key: str, user: User = Auth):
        return J({"notes": [n.to_json() for n in hub.cases.notes(user, key)]})

    @app.patch("/api/notes/{note_id}")
    def edit_note(note_id: int = Path(ge=1, le=2 ** 63 - 1), *, body: S.NoteEditIn, user: User = Auth):
        return J(hub.cases.edit_note(user, note_id, body.body, body.visibility,
                                     expected_revisions=body.revisions).to_json())

    @app.get("/api/notes/{note_id}/history")
    def note_history(note_id: int = Path(ge=1, le=2 ** 63 - 1), *, user: User = Auth):
        return J({"revisions": hub.cases.note_history(user, note_id)})

    @app.get("/api/cases/{key}/audit")
    def audit(key: str, user: User = Auth):
        return J({"entries": [e.to_json() for e in hub.cases.audit_log(user, key)]})

    @app.get("/api/cases/{key}/sla")
    def sla(key: str, user: User = Auth):
        return J({"case": key, "clocks": [c.to_json() for c in hub.cases.sla_clocks(user, key)]})

    @app.post("/api/cases/{key}/evidence", status_code=201)
    async def upload(key: str, request: Request, user: User = Auth):
        """Upload one file (multipart ``file`` part); its bytes stream straight into the evidence store."""
        ctype = request.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            raise CaseError("upload evidence as multipart/form-data with a 'file' part")
        await run_in_threadpool(hub.evidence.check_upload, user, key)       # refused before a byte is read
        _, files = await stream_multipart(request, hub.store, max_bytes=hub.evidence.max_bytes, max_files=1)
        if not files:
            raise CaseError("multipart body has no 'file' part")
        item = await run_in_threadpool(hub.evidence.record_upload, user, key, files[0].filename, files[0].blob)
        return J(item.to_json(), 201)

    @app.get("/api/cases/{key}/evidence")
    def list_evidence(key: str, user: User = Auth):
        return J({"evidence": [e.to_json() for e in hub.evidence.list(user, key)]})

    @app.post("/api/cases/{key}/analyses", status_code=201, openapi_extra={"requestBody": {
        "required": True, "description": "report.json as written by backline analyze --format json",
        "content": {"application/json": {"schema": {"type": "object"}}}}})
    async def attach_analysis(key: str, request: Request, user: User = Auth,
                              host: str | None = Query(default=None, max_length=255,
                                                       description="where the analysis ran")):
        """Attach a report.json written by ``backline analyze --format json`` (the request body)."""
        data = await request.body()
        item = await run_in_threadpool(hub.analyses.attach, user, key, data, host=host)
        return J(item.to_json(), 201)

    @app.get("/api/cases/{key}/findings")
    def findings(key: str, user: User = Auth):
        from backline.cases.signatures import signature_links

        links = signature_links(hub.cases, user, key, known_issues=hub.knowledge.published() if hub.knowledge else ())
        return J({"case": key, "findings": hub.evidence.findings(user, key), "facts": hub.evidence.facts(user, key),
                  "signature_links": {"linked": links["linked"], "known_issues": links["known_issues"],
                                      "summary": links["summary"]}})

    @app.get("/api/cases/{key}/ref")
    def drill_ref(key: str, user: User = Auth, e: int = Query(ge=1, le=2 ** 63 - 1, description="evidence id"),
                  a: str = Query(min_length=1, max_length=1000, description="artifact path"),
                  l: str = Query(min_length=1, max_length=300, description="locator: line:N, packet:N, ..."),  # noqa: E741
                  q: str | None = Query(default=None, max_length=200, description="search text (log views)"),
                  level: list[str] = Query(default=[]), template: str | None = Query(default=None, max_length=64),
                  before: int = Query(default=25, ge=0, le=500), after: int = Query(default=25, ge=0, le=500),
                  cmd: str | None = Query(default=None, max_length=200,
                                          description="a debugger command for a dump (default: the standard ones)")):
        view = hub.drill.view(user, key, e, a, l, LogQuery(tuple(level), template, q, before, after),
                              debugger=(cmd or "").strip() or None)
        return J(view.to_json())

    @app.get("/api/cases/{key}/similar")
    def similar_cases(key: str, user: User = Auth, limit: int = Query(default=10, ge=1, le=100),
                      any_product: bool = False):
        """Past cases like this one, best first: ``[{"key", "external_id", "title", "score", "why", ...}]``."""
        return J([h.to_json() for h in hub.similar.for_case(user, key, limit=limit, any_product=any_product)])

    @app.post("/api/similar")
    def similar_text(body: S.SimilarTextIn, user: User = Auth):
        """Cases like an escalation being written; each with a one-line ``hint`` for the intake form."""
        hits = hub.similar.for_text(user, body.text, title=body.title, product=body.product, intake=body.intake,
                                    limit=body.limit)
        return J([h.to_json() | {"hint": h.hint()} for h in hits])

    @app.get("/api/cases/{key}/diagnosis")
    def diagnosis(key: str, user: User = Auth):
        return J(DiagnosisService(hub.cases).current(user, key))

    @app.post("/api/cases/{key}/bugs", status_code=201)
    def create_bug(key: str, body: S.BugIn, user: User = Auth):
        return J(hub.bugs.create(user, key, title=body.title, root_cause=body.root_cause,
                                 suggested_fix=body.suggested_fix), 201)

    @app.get("/api/cases/{key}/bugs")
    def list_bugs(key: str, user: User = Auth):
        return J({"bugs": hub.bugs.list(user, key)})

    @app.get("/api/bugs/{bug_id}")
    def get_bug(bug_id: int = Path(ge=1, le=2 ** 63 - 1), *, user: User = Auth,
                format: Literal["json", "markdown", "jira", "github"] = "json"):
        if format == "json":
            return J(hub.bugs.get(user, bug_id))
        out = hub.bugs.render(user, bug_id, format)
        return PlainTextResponse(out, media_type="text/markdown") if format == "markdown" else J(out)

    @app.patch("/api/bugs/{bug_id}")
    def edit_bug(bug_id: int = Path(ge=1, le=2 ** 63 - 1), *, body: S.BugEditIn, user: User = Auth):
        changes = body.model_dump(exclude_unset=True, exclude={"row_version"})
        return J(hub.bugs.edit(user, bug_id, changes, expected_version=body.row_version))

    @app.post("/api/hotfixes", status_code=201)
    def create_hotfix(body: S.HotfixIn, user: User = Auth):
        return J(hub.hotfixes.create(user, body.name, build=body.build, bug_ids=body.bug_ids,
                                     affected_versions=body.affected_versions, fixed_versions=body.fixed_versions,
                                     delivered_to=body.delivered_to), 201)

    @app.get("/api/hotfixes")
    def list_hotfixes(user: User = Auth):
        return J({"hotfixes": hub.hotfixes.list(user)})

    @app.post("/api/hotfixes/{name}/deliveries", status_code=201)
    def deliver_hotfix(name: str, body: S.DeliveryIn, user: User = Auth):
        return J(hub.hotfixes.deliver(user, name, body.case), 201)

    @app.post("/api/hotfixes/{name}/verification")
    def verify_hotfix(name: str, body: S.VerificationIn, user: User = Auth):
        return J(hub.hotfixes.set_verification(user, name, body.verification))

    @app.get("/api/reports/summary")
    def report_summary(user: User = Auth):
        return J(summary(hub.cases, user))

    from backline.web.kb_routes import register_kb_routes

    register_kb_routes(app, hub, Auth)
    if pages:
        from backline.web.pages import mount_pages
        mount_pages(app)
    return app
