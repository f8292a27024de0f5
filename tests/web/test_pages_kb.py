"""The known-issue pages and the case page's "Known issues" fragment (SQLite and PostgreSQL)."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient

from backline.cases.evidence import JobRunner
from backline.cases.model import CaseSeverity
from backline.cases.service import NewCase
from backline.web.app import create_app

from .pages_helpers import PASSWORD, csrf_of, login, page_csrf

INTAKE = {"symptoms": "Crash when a report opens", "business_impact": "Reports down for 40 users",
          "environment": "4.2.1 on Windows", "steps_to_reproduce": "Open a report", "already_tried": "Reinstall",
          "expected": "Opens", "actual": "Crash", "evidence": ["crash.dmp"]}
MATCHERS = "- finding: NET.TLS.ALERT\n  where: {description: unknown_ca}\n"


@pytest.fixture
def web(hub):
    hub.users.add("erin", "engineer", password=PASSWORD)
    hub.users.add("sam", "support", team="emea", password=PASSWORD)
    with TestClient(create_app(hub), base_url="http://testserver") as c:
        yield c


def _form(csrf, **over):
    data = {"csrf_token": csrf, "title": "Gateway sends no intermediate", "symptoms": "unknown_ca alerts",
            "root_cause": "", "workaround": "", "notes": "", "fix_bug": "", "fix_bug_url": "", "fix_fixed_in": "4.2.3",
            "fix_hotfix": "HF-7", "product": "orders", "versions": ">=4.0", "match": "any", "matchers": MATCHERS,
            "tags": "tls, orders", "revision": ""}
    return {**data, **over}


def test_new_edit_publish_through_the_pages(web, hub):
    login(web, "erin")
    page = web.get("/kb?pack=true")
    assert page.status_code == 200 and 'href="/kb/KB-3"' in page.text and 'href="/kb"' in page.text   # nav item
    csrf = csrf_of(page.text)
    r = web.post("/kb/new", data=_form(csrf, matchers="- finding: [unclosed"), follow_redirects=False)
    assert r.status_code == 422 and "matchers line" in r.text and "not YAML" in r.text
    assert 'value="Gateway sends no intermediate"' in r.text                          # the form keeps its input
    r = web.post("/kb/new", data=_form(csrf, matchers="- finding: NET.TLS.ALERT\n  min_count: 0\n"),
                 follow_redirects=False)
    assert r.status_code == 422 and "matchers[0].min_count" in r.text
    r = web.post("/kb/new", data=_form(csrf), follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/kb/KB-1001"
    shown = web.get("/kb/KB-1001").text
    assert "finding NET.TLS.ALERT where description = unknown_ca" in shown and "fixed in 4.2.3" in shown
    assert 'action="/kb/KB-1001/publish"' in shown
    r = web.post("/kb/KB-1001/publish", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 422 and "no workaround" in r.text
    edit = web.get("/kb/KB-1001/edit").text
    assert 'name="revision" value="1"' in edit and "unknown_ca" in edit
    r = web.post("/kb/KB-1001/edit", data=_form(csrf, workaround="Install the intermediate.", revision="1"),
                 follow_redirects=False)
    assert r.status_code == 303
    r = web.post("/kb/KB-1001/edit", data=_form(csrf, title="stale", revision="1"), follow_redirects=False)
    assert r.status_code == 409
    assert web.post("/kb/KB-1001/publish", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    assert hub.knowledge.get(hub.users.get("erin"), "KB-1001")["status"] == "published"
    assert web.post("/kb/KB-1001/retire", data={}, follow_redirects=False).status_code == 403     # no CSRF token
    shown = web.get("/kb/KB-1001").text
    assert "r3 publish by erin" in shown and 'action="/kb/KB-1001/retire"' in shown
    assert web.get("/kb/KB-3/edit").status_code == 422                                # a pack entry


def test_support_reads_but_cannot_change(web, hub):
    erin = hub.users.get("erin")
    hub.knowledge.add(erin, {"title": "x", "workaround": "w", "matchers": [{"finding": "NET.DNS.SERVFAIL"}]})
    login(web, "sam")
    shown = web.get("/kb/KB-1001")
    assert shown.status_code == 200 and "/kb/KB-1001/edit" not in shown.text and "/publish" not in shown.text
    assert web.get("/kb/new").status_code == 200          # the form shows; saving is refused
    r = web.post("/kb/new", data=_form(csrf_of(shown.text)), follow_redirects=False)
    assert r.status_code == 403


def test_case_known_issues_fragment_and_promote(web, hub, corpus, tmp_path):
    erin = hub.users.get("erin")
    key = hub.cases.create(erin, NewCase("Crash opening reports", "reports", "4.2.1", "acme", CaseSeverity.S2,
                                         INTAKE)).key
    hub.evidence.upload(erin, key, "crash.dmp", io.BytesIO((corpus / "dumps/breakpad/null_read_av.dmp").read_bytes()))
    JobRunner(hub.cases, hub.store, work_root=tmp_path, knowledge=hub.knowledge).run_pending()
    login(web, "erin")
    frag = web.get(f"/cases/{key}/known-issues").text
    assert 'id="known-issues"' in frag and 'href="/kb/KB-63"' in frag and "Workaround:" in frag
    assert f'href="/cases/{key}/ref?e=1&amp;a=crash.dmp&amp;l=thread%3A0%2Fframe%3A0"' in frag   # the evidence opens
    page = web.get(f"/cases/{key}").text                                           # the case page has it in place
    assert page.index('id="known-issues"') < page.index('id="similar"') and 'href="/kb/KB-63"' in page
    assert "Promote to known issue" not in frag                                     # not resolved yet
    kb_page = web.get("/kb/KB-63").text                                             # the entry lists the open case
    assert 'id="kb-open-cases"' in kb_page and f'<a href="/cases/{key}">{key}</a>' in kb_page
    for st in ("investigating", "resolved"):
        hub.cases.set_status(erin, key, st)
    assert f'href="/cases/{key}"' not in web.get("/kb/KB-63").text                  # resolved: no longer listed
    frag = web.get(f"/cases/{key}/known-issues").text
    assert f'href="/cases/{key}/promote"' in frag
    confirm = web.get(f"/cases/{key}/promote")
    assert confirm.status_code == 200 and "Make the draft" in confirm.text
    r = web.post(f"/cases/{key}/promote", data={"csrf_token": csrf_of(confirm.text)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/kb/KB-1001/edit"
    edit = web.get("/kb/KB-1001/edit").text
    assert "NULL_POINTER_READ_c0000005_crashme.exe+0xa6cd" in edit and 'value="Crash opening reports"' in edit
