"""The pages behind evidence references (through the app, no browser; SQLite and PostgreSQL)."""

from __future__ import annotations

import html
import io
import re

import pytest
from fastapi.testclient import TestClient

from backline.cases.evidence import JobRunner
from backline.cases.model import CaseSeverity
from backline.cases.service import NewCase
from backline.web.app import create_app
from backline.testing import EXAMPLE_INTAKE, example_bundle, report_json

from .pages_helpers import add_users, login

EXAMPLE = example_bundle()
FULL = EXAMPLE_INTAKE
HOSTILE = ('2026-11-23 10:00:00 INFO start\n'
           '2026-11-23 10:00:01 ERROR <script>alert(1)</script> "onerror=alert(2) <a href="javascript:alert(3)">x</a>\n'
           '2026-11-23 10:00:02 INFO end\n')


@pytest.fixture
def site(hub):
    users = add_users(hub, ("erin", "engineer", None), ("carl", "customer", "acme"))
    case = hub.cases.create(users["erin"], NewCase("Orders fail", "orders", "4.2.1", "acme", CaseSeverity.S2, FULL))
    with open(EXAMPLE, "rb") as f:
        bundle = hub.evidence.upload(users["carl"], case.key, "bundle.zip", f)
    hostile = hub.evidence.upload(users["erin"], case.key, "<img src=x onerror=alert(4)>.log",
                                  io.BytesIO(HOSTILE.encode()))
    JobRunner(hub.cases, hub.store).run_pending()
    with TestClient(create_app(hub)) as client:
        yield client, hub, case, bundle, hostile


def _links(page: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'href="(/cases/[^"]+/ref\?[^"]+)"', page)]


def test_every_reference_on_the_case_page_opens(site):
    client, hub, case, bundle, _h = site
    login(client, "erin")
    page = client.get(f"/cases/{case.key}").text
    links = sorted(set(_links(page)))
    assert len(links) >= 10
    kinds = set()
    for url in links:
        r = client.get(url)
        assert r.status_code == 200, (url, r.text[:300])
        assert 'id="target"' in r.text or "The reference as it is" in r.text, url
        kinds.add(re.search(r'<h1 id="ref-h">(\w[\w ]*):', r.text).group(1))
    assert {"Log", "Packet", "Stack frame", "Text"} <= kinds


def test_log_page_lands_on_the_line_and_filters(site):
    client, hub, case, bundle, _h = site
    login(client, "erin")
    base = f"/cases/{case.key}/ref"
    r = client.get(base, params={"e": bundle.id, "a": "bundle.zip!/logs/orders-service.log", "l": "line:9"})
    target = re.search(r'<tr id="target"[^>]*>\s*<td class="num">(\d+)', r.text)
    assert target and target.group(1) == "9"
    assert 'name="q"' in r.text and 'name="level"' in r.text and 'name="template"' in r.text
    r = client.get(base, params={"e": bundle.id, "a": "bundle.zip!/logs/orders-service.log", "l": "line:9",
                                 "level": "ERROR", "q": "attempt"})
    rows = re.findall(r'<td class="num">(\d+)</td>', r.text)
    assert rows == ["8", "9", "10"] and re.search(r"3 of 1\d records match the filters", r.text)
    assert 'value="ERROR" checked' in r.text and 'value="attempt"' in r.text


def test_user_text_is_escaped(site):
    client, hub, case, _b, hostile = site
    login(client, "erin")
    r = client.get(f"/cases/{case.key}/ref", params={"e": hostile.id, "a": hostile.filename, "l": "line:2"})
    assert r.status_code == 200
    assert "<script>alert(1)" not in r.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    assert '<a href="javascript:' not in r.text and "onerror=alert(4)>" not in r.text
    r = client.get(f"/cases/{case.key}/ref", params={"e": hostile.id, "a": hostile.filename,
                                                     "l": '"><script>alert(5)</script>'})
    assert r.status_code == 200 and "<script>alert(5)" not in r.text


def test_who_cannot_look_and_what_is_gone(site):
    client, hub, case, bundle, _h = site
    login(client, "carl")                                  # customers never see findings: the plain 404
    r = client.get(f"/cases/{case.key}/ref", params={"e": bundle.id, "a": "bundle.zip!/logs/orders-service.log",
                                                     "l": "line:9"})
    assert r.status_code == 404 and "There is no such page or case" in r.text
    client.cookies.clear()
    login(client, "erin")
    r = client.get(f"/cases/{case.key}/ref", params={"e": 999, "a": "x.log", "l": "line:1"})
    assert r.status_code == 404 and "evidence 999 is not (or no longer) part of" in r.text
    assert "Traceback" not in r.text
    r = client.get(f"/cases/{case.key}/ref", params={"e": bundle.id, "a": "bundle.zip!/gone.log", "l": "line:1"})
    assert r.status_code == 404 and "no artifact" in html.unescape(r.text)


def test_attached_analysis_shows_where_it_came_from(site):
    client, hub, case, _b, _h = site
    erin = hub.users.get("erin")
    data = report_json([EXAMPLE])
    item = hub.analyses.attach(erin, case.key, data, host="lap-7")
    login(client, "erin")
    page = client.get(f"/cases/{case.key}").text
    assert "attached by erin from a local analysis on lap-7" in page
    attached = [u for u in _links(page) if f"e={item.id}&" in u]
    assert attached
    r = client.get(attached[0])                  # the same bundle was uploaded: its bytes open
    assert r.status_code == 200 and 'id="target"' in r.text
