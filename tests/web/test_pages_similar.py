"""Similar past cases in the workbench: the case page's "Similar cases" section, the live hint of the
escalation form, and the REST and CLI intake answers (SQLite and PostgreSQL; real MiniLM vectors)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from backline.cases.model import CaseSeverity
from backline.cases.service import NewCase
from backline.web.app import create_app

from .pages_helpers import add_users, login, page_csrf

OOM = ("Gateway runs out of memory under load",
       "After two hours of traffic the gateway dies with java.lang.OutOfMemoryError: Java heap space.")
PAST = [OOM,
        ("Java heap exhausted in the gateway after a few hours",
         "OutOfMemoryError (Java heap space) in the gateway JVM; the heap dump shows session objects piling up."),
        ("TLS handshake fails with a protocol_version alert",
         "Clients still on TLS 1.0 cannot connect after the upgrade; the server answers protocol_version."),
        ("Reports are exported with the wrong date format",
         "CSV exports use month/day instead of day/month since the last release.")]


@pytest.fixture
def web(hub):
    users = add_users(hub, ("sam", "support", None), ("erin", "engineer", None), ("carl", "customer", "acme"))
    keys = []
    for title, symptoms in PAST:
        keys.append(hub.cases.create(users["sam"], NewCase(title, "gateway", "7.2", "acme", CaseSeverity.S2,
                                                           {"symptoms": symptoms}, team="emea")).key)
    hub.cases.assign(users["erin"], keys[1], "erin")
    hub.similar.indexer.run_pending()          # what the indexer thread of `backline serve` does
    with TestClient(create_app(hub)) as client:
        yield client, hub, users, keys


def _section(html: str, id_: str) -> str:
    m = re.search(rf'<section id="{id_}"[^>]*>(.*?)</section>', html, re.S)
    assert m, f"no section {id_}"
    return m.group(1)


def test_the_case_page_lists_similar_cases_with_their_reasons(web):
    client, hub, users, keys = web
    login(client, "erin")
    page_sec = _section(client.get(f"/cases/{keys[0]}").text, "similar")
    # the page is sent without the search; the section fetches it once loaded
    assert f'hx-get="/cases/{keys[0]}/similar" hx-trigger="load"' in page_sec and "data-similar" not in page_sec
    sec = _section(client.get(f"/cases/{keys[0]}/similar", headers={"HX-Request": "true"}).text, "similar")
    items = re.findall(r'<li class="note" data-similar="([^"]+)">(.*?)</li>\s*(?=<li class="note"|</ol>)', sec, re.S)
    assert items, sec
    first_key, first = items[0]
    assert first_key == keys[1]                                              # the duplicate first
    assert f'<a href="/cases/{keys[1]}">{keys[1]}</a>' in first and "Java heap exhausted" in first
    assert "owned by erin" in first and re.search(r"score \d\.\d\d", first)
    assert "cosine" in first and "shared terms" in first                     # the reasons (why)
    assert keys[0] not in [k for k, _ in items]                              # never the case itself
    hits = hub.similar.panel(users["erin"], keys[0])
    assert [k for k, _ in items] == [h["key"] for h in hits]                 # the service's order
    assert f'{hits[0]["status"].replace("_", " ")} · owned by erin' in first
    # the same section alone, for hx-get
    frag = client.get(f"/cases/{keys[0]}/similar", headers={"HX-Request": "true"})
    assert frag.status_code == 200 and f'data-similar="{keys[1]}"' in frag.text


def test_similar_cases_are_for_staff_only(web):
    client, hub, users, keys = web
    login(client, "carl")                                                    # a customer: not even the place
    page = client.get(f"/cases/{keys[0]}")
    assert page.status_code == 200 and 'id="similar"' not in page.text and "data-similar" not in page.text
    assert client.get(f"/cases/{keys[0]}/similar").status_code == 403
    # support (staff, like the other places) sees only the cases support may see
    outsider = hub.cases.create(users["erin"], NewCase("Java heap space OutOfMemoryError in the gateway JVM", "gateway",
                                                       "7.2", "globex", CaseSeverity.S2,
                                                       {"symptoms": "OutOfMemoryError: Java heap space"})).key
    hub.similar.indexer.run_pending()
    assert outsider in [h["key"] for h in hub.similar.panel(users["erin"], keys[0])]
    client.cookies.clear()
    login(client, "sam")
    sec = _section(client.get(f"/cases/{keys[0]}/similar", headers={"HX-Request": "true"}).text, "similar")
    assert f'data-similar="{keys[1]}"' in sec and outsider not in sec


def test_the_escalation_form_says_this_looks_like_an_open_case(web):
    client, hub, users, keys = web
    login(client, "sam")
    token = page_csrf(client, "/cases/new")
    form = {"csrf_token": token, "product": "gateway", "title": "Gateway java heap space OutOfMemoryError",
            "symptoms": "The gateway JVM dies with OutOfMemoryError: Java heap space after hours of load"}
    r = client.post("/cases/new/check", headers={"HX-Request": "true"}, data=form)
    assert r.status_code == 200 and "<html" not in r.text                  # the live fragment (htmx)
    hints = re.findall(r'<li data-similar="([^"]+)">(.*?)</li>', r.text, re.S)
    assert [k for k, _ in hints][:2] and set(k for k, _ in hints) <= {keys[0], keys[1]}
    owned = dict(hints)[keys[1]]
    assert f'This looks like <a href="/cases/{keys[1]}"' in owned and "open, owned by erin" in owned
    assert "Completeness" in r.text                                          # the quality score is still there
    # a half-typed title compares nothing; an unrelated escalation finds nothing
    r = client.post("/cases/new/check", headers={"HX-Request": "true"},
                    data={"csrf_token": token, "product": "gateway", "title": "Gateway"})
    assert "data-similar" not in r.text
    r = client.post("/cases/new/check", headers={"HX-Request": "true"},
                    data={"csrf_token": token, "product": "gateway", "title": "Kiosk printer driver question",
                          "symptoms": "Which printer driver should the kiosk machines install?"})
    assert "data-similar" not in r.text
    # without htmx the whole page carries it too
    r = client.post("/cases/new/check", data=form)
    assert "<html" in r.text and f'data-similar="{keys[1]}"' in r.text


def test_the_rest_intake_answer_names_the_likely_duplicate(web):
    client, hub, users, keys = web
    sup = {"Authorization": f"Bearer {hub.users.add('sid', 'support', team='emea')[1]}"}    # sam's team
    body = {"title": "Gateway OutOfMemoryError Java heap space under load", "product": "gateway", "version": "7.2",
            "org": "acme", "severity": "S2",
            "intake": {"symptoms": "The gateway dies with OutOfMemoryError: Java heap space after two hours"}}
    r = client.post("/api/cases", headers=sup, json=body)
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["similar"], new
    assert all(s["key"] != new["key"] for s in new["similar"])               # never the case just filed
    by_key = {s["key"]: s for s in new["similar"]}
    assert set(by_key) <= {keys[0], keys[1]}
    assert by_key[keys[1]]["hint"].startswith(f"this looks like {keys[1]} (") \
        and by_key[keys[1]]["hint"].endswith("open, owned by erin")
    assert {"key", "title", "status", "owner", "score", "why", "hint"} <= set(by_key[keys[1]])
    # something new: no hint
    r = client.post("/api/cases", headers=sup, json=body | {"title": "Kiosk printer driver question", "intake": {
        "symptoms": "Which printer driver should the kiosk machines install?"}})
    assert r.status_code == 201 and r.json()["similar"] == []
