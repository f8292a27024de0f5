"""Helpers for page tests through FastAPI's TestClient (no browser)."""

from __future__ import annotations

import re

PASSWORD = "correct horse battery"


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert m, "no CSRF token on the page"
    return m.group(1)


def login_csrf(html: str) -> str:
    m = re.search(r'<form method="post" action="/login">\s*<input type="hidden" name="csrf_token" value="([^"]+)"', html)
    assert m, "no login form"
    return m.group(1)


def login(client, name: str, password: str = PASSWORD, *, expect: int = 303):
    page = client.get("/login")
    r = client.post("/login", data={"username": name, "password": password, "csrf_token": login_csrf(page.text),
                                    "next": "/cases"}, follow_redirects=False)
    assert r.status_code == expect, r.text[:500]
    return r


def page_csrf(client, path: str = "/cases") -> str:
    r = client.get(path)
    assert r.status_code == 200, r.text[:300]
    return csrf_of(r.text)


_HASH: list[str] = []


def add_users(hub, *specs):
    """Users (name, role, org) with the password :data:`PASSWORD`.  The Argon2 hash is made once per
    test process and stored for each (hashing costs about 60 ms per user; logins still verify it)."""
    from sqlalchemy import update

    from backline.cases.users import hash_password
    from backline.storage import tables as T
    if not _HASH:
        _HASH.append(hash_password(PASSWORD))
    out = {}
    for name, role, org in specs:
        out[name] = hub.users.add(name, role, org=org, team="emea" if role == "support" else None)[0]
        with hub.engine.begin() as conn:
            conn.execute(update(T.users).where(T.users.c.name == name).values(password_hash=_HASH[0]))
    return out
