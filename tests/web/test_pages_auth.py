"""Web login, sessions, CSRF and the security headers, through the app (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from backline.cases.sessions import LoginLimits
from backline.web.app import create_app
from backline.web.pages.security import CSP, SESSION_COOKIE

from .pages_helpers import PASSWORD, add_users, login, login_csrf, page_csrf


@pytest.fixture
def web(hub):
    add_users(hub, ("erin", "engineer", None), ("carl", "customer", "acme"))
    with TestClient(create_app(hub), base_url="http://testserver") as c:
        yield c


def test_pages_need_a_login_and_the_session_id_changes_at_login(web, hub):
    r = web.get("/cases?status=new", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/cases%3Fstatus%3Dnew"
    r = web.get("/cases", headers={"HX-Request": "true"}, follow_redirects=False)
    assert r.headers["HX-Redirect"].startswith("/login")
    web.cookies.set(SESSION_COOKIE, "chosen-by-an-attacker", domain="testserver.local")       # a fixated id is never promoted
    r = login(web, "erin")
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie   # plain HTTP here
    first = web.cookies.get(SESSION_COOKIE)
    assert first and first != "chosen-by-an-attacker"
    assert web.get("/cases").status_code == 200
    login(web, "erin")                                                 # logging in again: a new id
    second = web.cookies.get(SESSION_COOKIE)
    assert second != first
    assert hub.sessions.lookup(first) is None and hub.sessions.lookup(second) is not None


def test_session_cookie_is_secure_over_tls(hub):
    add_users(hub, ("erin", "engineer", None))
    with TestClient(create_app(hub), base_url="https://testserver") as c:
        r = login(c, "erin")
        assert "Secure" in r.headers["set-cookie"]


def test_wrong_password_and_rate_limit(web, hub):
    hub.sessions.limits = LoginLimits(max_per_user=3, max_per_address=50)
    for _ in range(3):
        r = login(web, "erin", "not the password", expect=401)
        assert "wrong user name or password" in r.text
    r = login(web, "erin", expect=429)                                 # even the right password, now
    assert "too many failed logins" in r.text and int(r.headers["Retry-After"]) > 0
    login(web, "carl")                                                 # another name is not locked


def test_logout_ends_the_session_everywhere(web, hub):
    login(web, "erin")
    sid = web.cookies.get(SESSION_COOKIE)
    token = page_csrf(web)
    r = web.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert hub.sessions.lookup(sid) is None
    web.cookies.set(SESSION_COOKIE, sid, domain="testserver.local")                             # replaying the old cookie
    assert web.get("/cases", follow_redirects=False).status_code == 303


def test_a_post_without_the_csrf_token_is_refused(web):
    login(web, "erin")
    assert web.post("/logout", follow_redirects=False).status_code == 403
    assert web.post("/logout", data={"csrf_token": "wrong"}, follow_redirects=False).status_code == 403
    assert web.post("/logout", headers={"X-CSRF-Token": "wrong"}, follow_redirects=False).status_code == 403
    assert web.get("/cases").status_code == 200                          # still logged in
    # the login form has its own double-submit token
    r = web.post("/login", data={"username": "erin", "password": PASSWORD, "csrf_token": "x"},
                 follow_redirects=False)
    assert r.status_code == 403


def test_security_headers_on_pages_and_api(web):
    for path in ("/login", "/api/me", "/static/app.css"):
        r = web.get(path)
        assert r.headers["content-security-policy"] == CSP
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
    assert "unsafe-inline" not in CSP and "frame-ancestors 'none'" in CSP and "script-src 'self'" in CSP
    assert web.get("/login").headers["cache-control"] == "no-store"


def test_login_only_goes_on_to_paths_of_this_site(web):
    page = web.get("/login?next=//evil.example/steal")
    assert 'value="/cases"' in page.text
    r = web.post("/login", data={"username": "erin", "password": PASSWORD, "csrf_token": login_csrf(page.text),
                                 "next": "https://evil.example/"}, follow_redirects=False)
    assert r.headers["location"] == "/cases"


def test_unknown_pages_are_html_404_and_the_api_stays_json(web):
    login(web, "erin")
    r = web.get("/no/such/page")
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]
    r = web.get("/api/no/such")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_without_htmx_the_pages_are_plain_forms_and_say_so_once(hub, monkeypatch, caplog, tmp_path):
    import importlib
    R = importlib.import_module("backline.web.pages.render")
    add_users(hub, ("erin", "engineer", None))
    monkeypatch.setattr(R, "HTMX", tmp_path / "absent" / "htmx.min.js")
    R.htmx_available.cache_clear()
    try:
        with caplog.at_level("WARNING", logger="backline.web.pages.render"):
            with TestClient(create_app(hub)) as c:
                login(c, "erin")
                page = c.get("/cases").text
                c.get("/cases/new")
        assert "htmx.min.js" not in page and "hx-get" not in page        # no polling markup without htmx
        assert '<form class="filters card" method="get" action="/cases"' in page
        assert sum("htmx is not installed" in r.message for r in caplog.records) == 1
    finally:
        R.htmx_available.cache_clear()


def test_htmx_is_served_from_the_vendor_folder_when_fetched(web):
    from backline.web.pages.render import HTMX
    if not HTMX.is_file():
        pytest.fail(f"{HTMX} is missing: run 'make venv' (fetches htmx.org from npm)")
    r = web.get("/static/vendor/htmx.min.js")
    assert r.status_code == 200 and b"htmx" in r.content[:2000]
