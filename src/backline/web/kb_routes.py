"""REST routes of the known issues (``/api/kb``), promotion of a case, and crash-signature links.

Thin like the rest of the API: parse, call :class:`backline.cases.knowledge.KnowledgeService`
and :func:`backline.cases.signatures.signature_links`, return JSON.  Bodies of known issues are
their data form (docs/knowledge.md), checked by the same schema as files (422 naming the field).
"""

from __future__ import annotations

from typing import Any

from fastapi import Body, FastAPI, Query
from fastapi.responses import JSONResponse

from backline.cases.hub import Hub
from backline.cases.knowledge import results_json
from backline.cases.signatures import signature_links
from backline.errors import CaseError, FormatError
from backline.knowledge.kb.loader import parse_entry


def _j(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status)


def _entries(raw: list[Any]):
    out = []
    for i, e in enumerate(raw):
        try:
            out.append(parse_entry(e, source="request", where=f"entries[{i}]"))
        except FormatError as exc:
            raise CaseError(f"{exc.locator or ''}: {exc.message}".lstrip(": ")) from None
    return out


def register_kb_routes(app: FastAPI, hub: Hub, Auth: Any) -> None:
    """Add the known-issue routes to ``app`` (``Auth``: the dependency giving the acting user)."""
    kb = hub.knowledge
    assert kb is not None

    @app.get("/api/kb")
    def list_known_issues(user=Auth, status: str | None = None, q: str | None = Query(default=None, max_length=200),
                          pack: bool = False):
        return _j({"known_issues": kb.list(user, status=status, q=q, include_pack=pack)})

    @app.post("/api/kb", status_code=201)
    def add_known_issue(body: dict[str, Any] = Body(...), user=Auth):
        return _j(kb.add(user, body), 201)

    @app.post("/api/kb/test")
    def test_known_issues(body: dict[str, Any] = Body(...), user=Auth):
        """``{"keys": [...]}`` or ``{"entries": [...]}``, against ``{"case": KEY}`` or
        ``{"findings": [...], "facts": [...]}`` (stored-finding JSON), with optional ``product``/``version``."""
        from backline.cases.knowledge import finding_from_row
        from backline.model import Fact

        unknown = set(body) - {"keys", "entries", "case", "findings", "facts", "product", "version"}
        if unknown:
            raise CaseError(f"unknown field(s): {', '.join(sorted(unknown))}")
        if bool(body.get("keys")) == bool(body.get("entries")):
            raise CaseError("give exactly one of keys, entries")
        entries = kb.entries_for_test(user, [str(k) for k in body["keys"]]) if body.get("keys") \
            else _entries(list(body["entries"]))
        try:
            findings = [finding_from_row(f) for f in body.get("findings") or []]
            facts = [Fact(str(x["name"]), x.get("value"), str(x.get("artifact", "")), str(x.get("analyzer", "")))
                     for x in body.get("facts") or []]
        except (KeyError, TypeError, ValueError) as exc:
            raise CaseError(f"findings/facts: {exc}") from None
        results = kb.test(user, entries, case_key=body.get("case"), findings=findings, facts=facts,
                          product=body.get("product"), version=body.get("version"))
        return _j({"results": results_json(results)})

    @app.get("/api/kb/{key}")
    def get_known_issue(key: str, user=Auth):
        return _j(kb.get(user, key))

    @app.patch("/api/kb/{key}")
    def edit_known_issue(key: str, body: dict[str, Any] = Body(...), user=Auth):
        """The fields to change; ``revision`` (optional) is the revision the change is based on."""
        changes = {k: v for k, v in body.items() if k != "revision"}
        rev = body.get("revision")
        if rev is not None and not isinstance(rev, int):
            raise CaseError("revision must be a number")
        return _j(kb.edit(user, key, changes, expected_revision=rev))

    @app.get("/api/kb/{key}/history")
    def known_issue_history(key: str, user=Auth):
        return _j({"key": key, "revisions": kb.history(user, key)})

    @app.post("/api/kb/{key}/publish")
    def publish_known_issue(key: str, user=Auth):
        return _j(kb.publish(user, key))

    @app.post("/api/kb/{key}/retire")
    def retire_known_issue(key: str, user=Auth):
        return _j(kb.retire(user, key))

    @app.post("/api/cases/{key}/promote", status_code=201)
    def promote_case(key: str, body: dict[str, Any] | None = Body(default=None), user=Auth):
        """A draft known issue from a resolved case; the body (optional) overrides fields of the draft."""
        return _j(kb.promote(user, key, body or {}), 201)

    @app.get("/api/cases/{key}/signature-links")
    def case_signature_links(key: str, user=Auth):
        return _j(signature_links(hub.cases, user, key, known_issues=kb.published()))
