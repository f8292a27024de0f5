"""Revocation is immediate in every server process: ``backline serve --workers 2``, then a disabled
user, a rotated API token and an ended web session are refused on the very next request.

Every request below goes on a new connection; with SO_REUSEPORT the kernel spreads new
connections over both workers by their ports, so 16 requests in a row reach both (the chance
that all 16 land on one worker is 2^-15).  The revocations are made through the same
``UserStore`` methods ``backline user disable|enable|token`` call (tested in
tests/cases/test_commands.py), on the server's database, from the test process.  Both workers answer warm before each revocation,
so any per-process cache of a lookup would show up as an accepted request afterwards.
"""

from __future__ import annotations

import http.client
import os
import re

import httpx
import pytest

from backline.cases.hub import Hub
from backline.testing import serve_process

from .pages_helpers import PASSWORD, add_users
from .test_serve import database  # noqa: F401 - the database fixture

N = 16


def _login(base: str) -> tuple[str, str]:
    """(session cookie, CSRF token of the session) after a password login."""
    with httpx.Client(base_url=base) as c:
        page = c.get("/login")
        field = re.search(r'action="/login">\s*<input type="hidden" name="csrf_token" value="([^"]+)"', page.text)
        r = c.post("/login", data={"username": "erin", "password": PASSWORD, "csrf_token": field.group(1),
                                   "next": "/cases"})
        assert r.status_code == 303, r.text[:300]
        sid = c.cookies.get("bl_session")
        token = re.search(r'name="csrf-token" content="([^"]+)"', c.get("/cases").text).group(1)
    return sid, token


def _statuses(base: str, *, cookie: str | None = None, token: str | None = None, path: str = "/cases") -> set[int]:
    """The status codes of N requests, each on a new connection."""
    host, port = base.rsplit("/", 1)[1].split(":")
    headers = {"Connection": "close"}
    if cookie:
        headers["Cookie"] = f"bl_session={cookie}"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    seen = set()
    for _ in range(N):
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", path, headers=headers)
        seen.add(conn.getresponse().status)
        conn.close()
    return seen


@pytest.mark.slow
def test_revocation_reaches_every_worker_at_once(tmp_path, database):  # noqa: F811
    env = {**os.environ, "BACKLINE_HOME": str(tmp_path / "home")}
    env.pop("BACKLINE_DATABASE_URL", None)
    db = ["--database-url", database] if database else []
    (tmp_path / "home").mkdir()
    hub = Hub.open(database or f"sqlite:///{tmp_path / 'home' / 'backline.db'}", blob_root=tmp_path / "blobs")
    add_users(hub, ("erin", "engineer", None))
    api_token = hub.users.rotate("erin")
    try:
        with serve_process(["--workers", "2", "--no-background"] + db, env) as (base, _proc):
            cookie, _csrf = _login(base)
            assert _statuses(base, cookie=cookie) == {200}
            assert _statuses(base, token=api_token, path="/api/me") == {200}

            # a disabled user: their session and their API token stop at once
            hub.users.set_active("erin", False)
            assert _statuses(base, cookie=cookie) == {303}                       # back to the login page
            assert _statuses(base, token=api_token, path="/api/me") == {401}
            hub.users.set_active("erin", True)
            assert _statuses(base, cookie=cookie) == {303}                       # that session stays ended
            assert _statuses(base, token=api_token, path="/api/me") == {200}

            # a rotated API token
            new_token = hub.users.rotate("erin")
            assert _statuses(base, token=api_token, path="/api/me") == {401}
            assert _statuses(base, token=new_token, path="/api/me") == {200}

            # an ended session (logout)
            cookie, csrf = _login(base)
            assert _statuses(base, cookie=cookie) == {200}
            r = httpx.post(base + "/logout", headers={"Cookie": f"bl_session={cookie}", "X-CSRF-Token": csrf})
            assert r.status_code == 303
            assert _statuses(base, cookie=cookie) == {303}
    finally:
        hub.engine.dispose()
