"""The case page's actions without a browser (plain forms, as without JavaScript), SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from backline.cases.model import CaseSeverity
from backline.cases.service import NewCase
from backline.web.app import create_app
from backline.web.pages.case_view import NOTES_SHOWN

from .pages_helpers import add_users, login, page_csrf
from .test_pages_security import FULL


@pytest.fixture
def web(hub):
    users = add_users(hub, ("sam", "support", None), ("erin", "engineer", None), ("carl", "customer", "acme"),
                      ("mia", "manager", None))
    with TestClient(create_app(hub)) as client:
        yield client, hub, users


def test_intake_check_and_resubmit(web):
    client, hub, users = web
    login(client, "sam")
    token = page_csrf(client, "/cases/new")
    r = client.post("/cases/new/check", headers={"HX-Request": "true"},
                    data={"csrf_token": token, "product": "gateway", "symptoms": "Gateway restarts every night"})
    assert r.status_code == 200 and "<html" not in r.text                     # a fragment for htmx
    assert "network capture" in r.text and "business impact" in r.text and "symptoms" not in r.text.split("Still")[1]
    r = client.post("/cases/new/check", data={"csrf_token": token, "product": "orders", **FULL, "evidence": "x"})
    assert "<html" in r.text and "Complete" in r.text                         # the whole page without htmx
    r = client.post("/cases/new", data={"csrf_token": token, "title": "Gateway dies", "product": "gateway",
                                        "version": "7.2", "org": "acme", "severity": "S2",
                                        "symptoms": "Gateway restarts every night"}, follow_redirects=False)
    key = r.headers["location"].rsplit("/", 1)[1]
    case = hub.cases.get(users["sam"], key)
    assert case.status.value == "needs_info" and "network_capture" in case.intake_missing
    token = page_csrf(client, f"/cases/{key}")
    r = client.post(f"/cases/{key}/intake", data={"csrf_token": token, "action": "resubmit",
                                                  "row_version": str(case.row_version),
                                                  "business_impact": "All night batches fail"})
    assert r.status_code == 200 and r.url.fragment == "intake"               # back, with what is still missing
    assert "network capture" in r.text.split('id="intake"')[1].split("</ul>")[0]
    case = hub.cases.get(users["sam"], key)
    assert case.status.value == "needs_info"
    assert case.intake["business_impact"] == "All night batches fail"        # what was added is kept
    fields = {k: v for k, v in FULL.items() if k != "evidence"} | {"evidence": "capture.pcapng",
                                                                    "network_capture": "both ends attached"}
    r = client.post(f"/cases/{key}/intake", data={"csrf_token": token, "action": "resubmit",
                                                  "row_version": str(case.row_version), **fields},
                    follow_redirects=False)
    assert r.status_code == 303
    assert hub.cases.get(users["sam"], key).status.value == "new"


def test_notes_edit_history_and_paging(web):
    client, hub, users = web
    case = hub.cases.create(users["sam"], NewCase("Acme outage", "orders", "4.2", "acme", CaseSeverity.S2, FULL))
    login(client, "erin")
    token = page_csrf(client, f"/cases/{case.key}")
    client.post(f"/cases/{case.key}/notes", data={"csrf_token": token, "body": "first text", "visibility": "internal"})
    note = hub.cases.notes(users["erin"], case.key)[-1]
    edit = client.get(f"/notes/{note.id}/edit")
    assert edit.status_code == 200 and "first text" in edit.text
    r = client.post(f"/notes/{note.id}", data={"csrf_token": token, "body": "second text", "revisions": "0"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith(f"#note-{note.id}")
    page = client.get(f"/cases/{case.key}").text
    assert "second text" in page and "Edited 1 time" in page
    hist = client.get(f"/notes/{note.id}/history", headers={"HX-Request": "true"}).text
    assert "first text" in hist and "<html" not in hist
    r = client.post(f"/notes/{note.id}", data={"csrf_token": token, "body": "stale", "revisions": "0"})
    assert r.status_code == 409                                               # edited meanwhile
    login(client, "carl")                                                     # internal: not theirs to see
    assert client.get(f"/notes/{note.id}/edit").status_code == 404
    assert client.get(f"/notes/{note.id}/history").status_code == 404
    for i in range(NOTES_SHOWN + 5):
        hub.cases.add_note(users["erin"], case.key, f"note number {i}", "public")
    login(client, "erin")
    page = client.get(f"/cases/{case.key}").text
    assert '"body">note number 0<' not in page and f'"body">note number {NOTES_SHOWN + 4}<' in page
    assert f"Show all {NOTES_SHOWN + 6} notes" in page
    assert '"body">note number 0<' in client.get(f"/cases/{case.key}?notes=all").text


def test_upload_as_a_plain_form_and_the_bug_report_exports(web):
    client, hub, users = web
    case = hub.cases.create(users["sam"], NewCase("Acme outage", "orders", "4.2", "acme", CaseSeverity.S2, FULL))
    login(client, "erin")
    token = page_csrf(client, f"/cases/{case.key}")
    r = client.post(f"/cases/{case.key}/evidence", data={"csrf_token": token},
                    files=[("file", ("app.log", b"2024-05-01 10:00:00 ERROR boom\n")),
                           ("file", ("../../etc/passwd", b"root:x:0:0\n"))], follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("#analysis")
    assert [e.filename for e in hub.evidence.list(users["erin"], case.key)] == ["app.log", "passwd"]
    r = client.post(f"/cases/{case.key}/evidence", data={"csrf_token": token})
    assert r.status_code == 422 and "choose a file" in r.text
    analysis = client.get(f"/cases/{case.key}/analysis", headers={"HX-Request": "true"}).text
    assert 'hx-trigger="refresh, every 2s"' in analysis and "queued" in analysis    # polls while jobs wait
    client.post(f"/cases/{case.key}/bugs", data={"csrf_token": token})
    bug = hub.bugs.list(users["erin"], case.key)[0]
    r = client.post(f"/bugs/{bug['id']}/preview", headers={"HX-Request": "true"},
                    data={"csrf_token": token, "root_cause": "A *pool* <b>limit</b>"})
    assert "<em>pool</em>" in r.text and "&lt;b&gt;limit&lt;/b&gt;" in r.text and "<html" not in r.text
    r = client.post(f"/bugs/{bug['id']}", data={"csrf_token": token, "root_cause": "The pool limit",
                                                 "row_version": str(bug["row_version"]), "external_key": "ORD-7"},
                    follow_redirects=False)
    assert r.status_code == 303
    md = client.get(f"/bugs/{bug['id']}/export?format=markdown")
    assert md.headers["content-disposition"] == f'attachment; filename="bug-{bug["id"]}.md"'
    assert "The pool limit" in md.text
    gh = client.get(f"/bugs/{bug['id']}/export?format=github")
    assert json.loads(gh.text)["labels"][:2] == ["bug", "escalation"]
    assert client.get(f"/bugs/{bug['id']}/export?format=pdf").status_code == 422
    r = client.post(f"/cases/{case.key}/hotfixes", data={"csrf_token": token, "name": "HF-1", "build": "4.2.0.1",
                                                         "bug_ids": str(bug["id"]), "fixed_versions": "4.2.1, 4.3"},
                    follow_redirects=False)
    assert r.status_code == 303
    hf = hub.hotfixes.for_case(users["erin"], case.key)[0]
    assert hf["fixed_versions"] == ["4.2.1", "4.3"] and hf["bug_ids"] == [bug["id"]]
    r = client.post("/hotfixes/HF-1/verification", data={"csrf_token": token, "verification": "verified",
                                                          "case": case.key}, follow_redirects=False)
    assert r.status_code == 303 and hub.hotfixes.get(users["erin"], "HF-1")["verification"] == "verified"


def test_dashboard_page(web):
    client, hub, users = web
    hub.cases.create(users["sam"], NewCase("Acme outage", "orders", "4.2", "acme", CaseSeverity.S1, FULL))
    login(client, "mia")
    r = client.get("/dashboard")
    assert r.status_code == 200 and r.text.count("<svg") == 5
    assert "1</strong> open cases" in r.text.replace("\n", "")
