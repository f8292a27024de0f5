"""Page permissions are the API's, every state-changing page route checks the CSRF token,
and what customers see (SQLite and PostgreSQL, through the app without a browser)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from backline.cases.model import CaseSeverity
from backline.cases.service import NewCase
from backline.web.app import create_app
from backline.web.pages.security import csrf_guard

from .pages_helpers import add_users, login, page_csrf

FULL = {"symptoms": "Gateway restarts with OutOfMemoryError", "business_impact": "4,000 users disconnected",
        "environment": "7.2.1 on RHEL 9", "steps_to_reproduce": "Run the nightly batch", "already_tried": "More heap",
        "expected": "Stable", "actual": "Dies", "evidence": ["gc.log"]}


@pytest.fixture
def setup(hub):
    users = add_users(hub, ("sam", "support", None), ("erin", "engineer", None), ("carl", "customer", "acme"),
                      ("gina", "customer", "globex"), ("mia", "manager", None))
    acme = hub.cases.create(users["sam"], NewCase("Acme outage", "orders", "4.2", "acme", CaseSeverity.S2, FULL))
    globex = hub.cases.create(users["sam"], NewCase("Globex outage", "orders", "4.2", "globex", CaseSeverity.S1,
                                                    FULL))
    hub.cases.add_note(users["erin"], acme.key, "internal: the pool is misconfigured", "internal")
    public = hub.cases.add_note(users["erin"], acme.key, "public: we are on it", "public")
    internal_g = hub.cases.add_note(users["erin"], globex.key, "globex internal", "internal")
    bug = hub.bugs.create(users["erin"], acme.key)
    with TestClient(create_app(hub)) as client:
        yield client, hub, users, acme, globex, public, internal_g, bug


def test_customers_see_only_their_organisation(setup):
    client, hub, users, acme, globex, public, internal_g, bug = setup
    login(client, "carl")
    queue = client.get("/cases?status=all").text
    assert acme.key in queue and globex.key not in queue
    page = client.get(f"/cases/{acme.key}")
    assert page.status_code == 200
    assert "public: we are on it" in page.text and "misconfigured" not in page.text
    for absent in ('id="findings"', 'id="audit"', 'id="bugs"', 'id="hotfixes"', 'id="sla"', "note-internal",
                   'id="diagnosis"'):
        assert absent not in page.text, absent
    # another organisation's case, and everything under it: 404, never the page
    for path in (f"/cases/{globex.key}", f"/cases/{globex.key}/analysis", f"/notes/{internal_g.id}/history",
                 "/cases/ESC-999999"):
        r = client.get(path)
        assert r.status_code == 404, path
        assert "Globex" not in r.text and "globex internal" not in r.text
    r = client.get(f"/bugs/{bug['id']}/export?format=jira")          # customers read no bug reports at all
    assert r.status_code == 403 and "BUG" not in r.text
    token = page_csrf(client, f"/cases/{acme.key}")
    r = client.post(f"/cases/{globex.key}/notes", data={"csrf_token": token, "body": "hi", "visibility": "public"})
    assert r.status_code == 404
    assert client.get("/dashboard").status_code == 403
    assert client.get("/cases/new").status_code == 403
    # a customer may add a public note but never an internal one
    r = client.post(f"/cases/{acme.key}/notes", data={"csrf_token": token, "body": "sneaky", "visibility": "internal"})
    assert r.status_code == 403
    r = client.post(f"/cases/{acme.key}/notes", data={"csrf_token": token, "body": "Thanks!", "visibility": "public"},
                    follow_redirects=False)
    assert r.status_code == 303
    assert [n.body for n in hub.cases.notes(users["erin"], acme.key)][-1] == "Thanks!"


def test_staff_see_more(setup):
    client, hub, users, acme, *_ = setup
    login(client, "erin")
    page = client.get(f"/cases/{acme.key}").text
    for present in ('id="findings"', 'id="audit"', 'id="bugs"', 'id="sla"', "note-internal", 'id="diagnosis"',
                    'id="known-issues"', 'id="similar"'):
        assert present in page, present


def test_every_state_changing_page_route_checks_the_csrf_token(setup):
    client, hub, users, acme, globex, public, internal_g, bug = setup
    app = client.app
    unguarded = []
    for route in app.routes:
        methods = getattr(route, "methods", set()) or set()
        if not methods & {"POST", "PUT", "PATCH", "DELETE"} or route.path.startswith("/api/") or route.path == "/login":
            continue
        deps = {d.call for d in route.dependant.dependencies}
        if csrf_guard not in deps:
            unguarded.append(route.path)
    assert unguarded == []
    login(client, "erin")
    posts = {f"/cases/{acme.key}/status": {"status": "investigating"},
             f"/cases/{acme.key}/assign": {"owner": "erin"},
             f"/cases/{acme.key}/notes": {"body": "x", "visibility": "public"},
             f"/notes/{public.id}": {"body": "changed"},
             f"/cases/{acme.key}/links": {"other": globex.key},
             f"/cases/{acme.key}/bugs": {}, f"/bugs/{bug['id']}": {"title": "t"},
             f"/cases/{acme.key}/hotfixes": {"name": "HF-1", "build": "1"},
             "/cases/new": {"title": "t", "product": "p", "version": "1", "org": "acme"}, "/logout": {}}
    before = hub.cases.audit_log(users["erin"], acme.key)
    for path, data in posts.items():
        assert client.post(path, data=data, follow_redirects=False).status_code == 403, path
    r = client.post(f"/cases/{acme.key}/evidence", files={"file": ("a.log", b"hello")}, follow_redirects=False)
    assert r.status_code == 403
    assert hub.cases.audit_log(users["erin"], acme.key) == before          # nothing happened
    assert hub.evidence.list(users["erin"], acme.key) == []
    token = page_csrf(client)
    r = client.post(f"/cases/{acme.key}/assign", data={"owner": "erin", "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    r = client.post(f"/cases/{acme.key}/status", headers={"X-CSRF-Token": token}, data={"status": "investigating"},
                    follow_redirects=False)
    assert r.status_code == 303
    assert hub.cases.get(users["erin"], acme.key).status.value == "investigating"


def test_workflow_errors_are_pages_not_tracebacks(setup):
    client, hub, users, acme, *_ = setup
    login(client, "sam")
    token = page_csrf(client)
    r = client.post(f"/cases/{acme.key}/status", data={"status": "resolved", "csrf_token": token})
    assert r.status_code == 403 and "support may only move" in r.text            # support's moves are limited
    login(client, "erin")
    token = page_csrf(client)
    r = client.post(f"/cases/{acme.key}/status", data={"status": "fix_pending", "csrf_token": token})
    assert r.status_code == 422 and "cannot move" in r.text
    version = hub.cases.get(users["erin"], acme.key).row_version
    hub.cases.assign(users["erin"], acme.key, "erin")                           # someone else changes it
    r = client.post(f"/cases/{acme.key}/status", data={"status": "investigating", "csrf_token": token,
                                                        "row_version": str(version)})
    assert r.status_code == 409                                               # stale form: changed meanwhile
    r = client.get("/cases?sort=nonsense")
    assert r.status_code == 422 and "unknown sort" in r.text


def test_the_case_page_offers_only_the_allowed_moves(setup):
    client, hub, users, acme, *_ = setup
    login(client, "sam")
    page = client.get(f"/cases/{acme.key}").text
    assert 'value="closed"' in page and 'value="investigating"' not in page      # support: withdraw only
    login(client, "erin")
    page = client.get(f"/cases/{acme.key}").text
    for move in ("investigating", "needs_info", "waiting_customer", "resolved", "closed"):
        assert f'name="status" value="{move}"' in page, move
    assert 'name="status" value="fix_pending"' not in page                       # not from "new"
