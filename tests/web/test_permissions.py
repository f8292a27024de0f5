"""The permission matrix: every role against every endpoint (SQLite and PostgreSQL).

The expected codes are written out here on purpose (not read from
backline.cases.access), so a change of policy must change this table too.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest

from backline.cases.evidence import JobRunner
from backline.cases.model import CaseSeverity, Role
from backline.model.core import AnalysisResult, Artifact, ArtifactKind, EvidenceRef, Finding, Severity
from backline.report import build_report, render_json
from backline.cases.service import NewCase

ROLES = ["cust", "cust2", "sup", "sup2", "eng", "dev", "mgr", "adm"]
INTAKE = {"symptoms": "Crash on startup after upgrade", "business_impact": "Production down for 300 users",
          "environment": "7.2 on RHEL 9", "steps_to_reproduce": "Start the service after upgrade",
          "already_tried": "Rollback", "expected": "Starts", "actual": "Crashes", "evidence": ["core.1234"]}

#: A valid report.json (of an analysis that found nothing) for the attach route.
EMPTY_REPORT = json.loads(render_json(build_report(AnalysisResult(("b.zip",), (), (), (), (), ()))))

# name: (method, path, json body or "upload", expected codes in ROLES order)
MATRIX = {
    "me":                ("GET", "/api/me", None,                                     "200 200 200 200 200 200 200 200"),
    "create_case":       ("POST", "/api/cases", {"title": "t", "product": "p", "version": "1", "org": "acme",
                                                 "severity": "S3", "intake": INTAKE},
                                                                                      "403 403 201 201 201 403 201 201"),
    "list_cases":        ("GET", "/api/cases", None,                                  "200 200 200 200 200 200 200 200"),
    "get_case":          ("GET", "/api/cases/ESC-1001", None,                         "200 404 200 404 200 200 200 200"),
    "update_case":       ("PATCH", "/api/cases/ESC-1001", {"severity": "S1"},        "403 403 200 404 200 403 200 200"),
    "set_status":        ("POST", "/api/cases/ESC-1001/status", {"status": "investigating"},
                                                                                      "403 403 403 404 200 200 200 200"),
    "assign":            ("POST", "/api/cases/ESC-1001/assign", {"owner": "erin"},   "403 403 403 403 200 403 200 200"),
    "link":              ("POST", "/api/cases/ESC-1001/links", {"other": "ESC-1002"}, "403 403 200 404 200 403 200 200"),
    "add_participant":   ("POST", "/api/cases/ESC-1001/participants", {"name": "Vera", "role": "sales"},
                                                                                      "403 403 201 404 201 201 201 201"),
    "add_public_note":   ("POST", "/api/cases/ESC-1001/notes", {"body": "hi", "visibility": "public"},
                                                                                      "201 404 201 404 201 201 201 201"),
    "add_internal_note": ("POST", "/api/cases/ESC-1001/notes", {"body": "hm", "visibility": "internal"},
                                                                                      "403 403 201 404 201 201 201 201"),
    "list_notes":        ("GET", "/api/cases/ESC-1001/notes", None,                   "200 404 200 404 200 200 200 200"),
    "edit_note":         ("PATCH", "/api/notes/1", {"body": "edited"},               "404 404 403 404 200 403 200 200"),
    "note_history":      ("GET", "/api/notes/1/history", None,                        "404 404 200 404 200 200 200 200"),
    "audit":             ("GET", "/api/cases/ESC-1001/audit", None,                   "403 403 403 403 200 403 200 200"),
    "sla":               ("GET", "/api/cases/ESC-1001/sla", None,                     "403 403 200 404 200 200 200 200"),
    "upload":            ("POST", "/api/cases/ESC-1001/evidence", "upload",           "201 404 201 404 201 201 201 201"),
    "list_evidence":     ("GET", "/api/cases/ESC-1001/evidence", None,                "200 404 200 404 200 200 200 200"),
    "findings":          ("GET", "/api/cases/ESC-1001/findings", None,                "403 403 200 404 200 200 200 200"),
    "diagnosis":         ("GET", "/api/cases/ESC-1001/diagnosis", None,               "403 403 200 404 200 200 200 200"),
    "attach_analysis":   ("POST", "/api/cases/ESC-1001/analyses?host=lap-7", EMPTY_REPORT,
                                                                                      "403 403 201 404 201 201 201 201"),
    "drill_ref":         ("GET", "/api/cases/ESC-1001/ref?e=1&a=app.log&l=line:1", None,
                                                                                      "404 404 200 404 200 200 200 200"),
    "create_bug":        ("POST", "/api/cases/ESC-1001/bugs", {},                     "403 403 403 403 201 201 201 201"),
    "list_bugs":         ("GET", "/api/cases/ESC-1001/bugs", None,                    "403 403 200 404 200 200 200 200"),
    "get_bug":           ("GET", "/api/bugs/1", None,                                 "403 403 200 404 200 200 200 200"),
    "get_bug_markdown":  ("GET", "/api/bugs/1?format=markdown", None,                 "403 403 200 404 200 200 200 200"),
    "edit_bug":          ("PATCH", "/api/bugs/1", {"external_key": "BUG-77"},        "403 403 403 403 200 200 200 200"),
    "create_hotfix":     ("POST", "/api/hotfixes", {"name": "HF-2", "build": "7.2.1.44", "bug_ids": [1]},
                                                                                      "403 403 403 403 201 201 201 201"),
    "list_hotfixes":     ("GET", "/api/hotfixes", None,                               "403 403 200 200 200 200 200 200"),
    "deliver_hotfix":    ("POST", "/api/hotfixes/HF-1/deliveries", {"case": "ESC-1001"},
                                                                                      "403 403 403 403 201 201 201 201"),
    "verify_hotfix":     ("POST", "/api/hotfixes/HF-1/verification", {"verification": "verified"},
                                                                                      "403 403 403 403 200 200 200 200"),
    "summary":           ("GET", "/api/reports/summary", None,                        "403 403 403 403 200 403 200 200"),
    "similar":           ("GET", "/api/cases/ESC-1001/similar?limit=5", None,         "200 404 200 404 200 200 200 200"),
    "similar_text":      ("POST", "/api/similar", {"text": "crash on startup after upgrade"},
                                                                                      "200 200 200 200 200 200 200 200"),
    "kb_list":           ("GET", "/api/kb?pack=true", None,                           "403 403 200 200 200 200 200 200"),
    "kb_add":            ("POST", "/api/kb", {"title": "t", "matchers": [{"finding": "NET.DNS.SERVFAIL"}]},
                                                                                      "403 403 403 403 201 201 201 201"),
    "kb_get":            ("GET", "/api/kb/KB-1001", None,                             "403 403 200 200 200 200 200 200"),
    "kb_edit":           ("PATCH", "/api/kb/KB-1001", {"title": "renamed"},          "403 403 403 403 200 200 200 200"),
    "kb_history":        ("GET", "/api/kb/KB-1001/history", None,                     "403 403 200 200 200 200 200 200"),
    "kb_publish":        ("POST", "/api/kb/KB-1001/publish", None,                    "403 403 403 403 200 403 200 200"),
    "kb_retire":         ("POST", "/api/kb/KB-1001/retire", None,                     "403 403 403 403 200 403 200 200"),
    "kb_test":           ("POST", "/api/kb/test", {"keys": ["KB-1001"], "case": "ESC-1001"},
                                                                                      "403 403 403 403 200 200 200 200"),
    "promote":           ("POST", "/api/cases/ESC-1002/promote", {"workaround": "w",
                                                                  "matchers": [{"finding": "NET.DNS.SERVFAIL"}]},
                                                                                      "403 403 403 403 201 201 201 201"),
    "signature_links":   ("GET", "/api/cases/ESC-1001/signature-links", None,         "403 403 200 404 200 200 200 200"),
}


@pytest.fixture
def world(hub):
    users = {}
    spec = {"cust": ("carl", Role.CUSTOMER, "acme", None), "cust2": ("olga", Role.CUSTOMER, "globex", None),
            "sup": ("sam", Role.SUPPORT, None, "emea"), "sup2": ("sue", Role.SUPPORT, None, "apac"),
            "eng": ("erin", Role.ENGINEER, None, None), "dev": ("dev", Role.DEVELOPER, None, None),
            "mgr": ("max", Role.MANAGER, None, None), "adm": ("root", Role.ADMIN, None, None)}
    for k, (name, role, org, team) in spec.items():
        users[k] = hub.users.add(name, role, org=org, team=team)
    sam, erin = users["sup"][0], users["eng"][0]
    hub.cases.create(sam, NewCase("Crash", "p", "7.2", "acme", CaseSeverity.S2, INTAKE))
    hub.cases.create(sam, NewCase("Other", "p", "7.2", "acme", CaseSeverity.S3, INTAKE))
    hub.cases.add_note(erin, "ESC-1001", "internal theory", "internal")
    hub.cases.add_note(erin, "ESC-1001", "we are on it", "public")
    hub.bugs.create(erin, "ESC-1001")
    hub.hotfixes.create(erin, "HF-1", build="7.2.1.40", bug_ids=[1])
    hub.evidence.upload(erin, "ESC-1001", "app.log", io.BytesIO(b"2026-11-23 10:00:00 ERROR boom\n"))
    JobRunner(hub.cases, hub.store, analyze=_one_artifact, options_factory=lambda _w, store: store).run_pending()
    hub.knowledge.add(erin, {"title": "Known", "workaround": "w", "matchers": [{"finding": "NET.DNS.SERVFAIL"}]})
    hub.cases.set_status(erin, "ESC-1002", "resolved")
    return {k: v[1] for k, v in users.items()}


def _one_artifact(paths, store):
    """An analysis that finds the uploaded file as one text artifact (kept in the store)."""
    path = Path(paths[0])
    blob = store.put_file(path)
    art = Artifact("app.log", ArtifactKind.TEXT_LOG, blob.size, blob.sha256, store.path(blob.sha256))
    found = Finding("LOG.ERROR_TEMPLATE", "errors", Severity.HIGH, "app.log", (EvidenceRef.line("app.log", 1),))
    return AnalysisResult(("app.log",), (art,), (), (found,), (), ())


def _call(client, token, method, path, body):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    if body == "upload":
        return client.post(path, headers=headers, files={"file": ("app.log", b"2026-11-23 ERROR boom\n")})
    return client.request(method, path, headers=headers, json=body)


def test_every_route_is_in_the_matrix(client):
    routes = {(m, r.path) for r in client.app.routes for m in getattr(r, "methods", ())
              if r.path.startswith("/api/")}
    covered = {(m, p.split("?")[0].replace("ESC-1001", "{key}").replace("ESC-1002", "{key}")
                .replace("KB-1001", "{key}").replace("/1/", "/{x}/").rstrip("/"))
               for m, p, _b, _e in MATRIX.values()}
    norm = set()
    for m, p in routes:
        p = p.replace("{note_id}", "{x}").replace("{bug_id}", "{x}").replace("{name}", "{x}")
        norm.add((m, p))
    covered = {(m, p.replace("/api/notes/1", "/api/notes/{x}").replace("/api/bugs/1", "/api/bugs/{x}")
                .replace("/hotfixes/HF-1", "/hotfixes/{x}")) for m, p in covered}
    assert norm - covered == set(), "routes missing from the permission matrix"


@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(client, world, role):
    i = ROLES.index(role)
    wrong = []
    for name, (method, path, body, expected) in MATRIX.items():
        want = int(expected.split()[i])
        r = _call(client, world[role], method, path, body)
        if r.status_code != want:
            wrong.append(f"{name}: got {r.status_code} want {want}: {r.text[:200]}")
        elif want >= 400:
            assert r.json()["error"]["message"], name
    assert not wrong, "\n".join(wrong)


def test_customers_see_only_public_notes_and_own_org(client, world):
    notes = client.get("/api/cases/ESC-1001/notes", headers={"Authorization": f"Bearer {world['cust']}"}).json()
    assert [n["visibility"] for n in notes["notes"]] == ["public"]
    staff = client.get("/api/cases/ESC-1001/notes", headers={"Authorization": f"Bearer {world['sup']}"}).json()
    assert sorted(n["visibility"] for n in staff["notes"]) == ["internal", "public"]
    listed = client.get("/api/cases", headers={"Authorization": f"Bearer {world['cust2']}"}).json()
    assert listed["cases"] == []


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic abc", "Bearer "])
def test_every_endpoint_refuses_missing_or_wrong_tokens(client, world, header):
    for name, (method, path, body, _e) in MATRIX.items():
        headers = {"Authorization": header} if header else {}
        if body == "upload":
            r = client.post(path, headers=headers, files={"file": ("a.log", b"x")})
        else:
            r = client.request(method, path, headers=headers, json=body)
        assert r.status_code == 401, (name, r.status_code, r.text)
        assert r.json()["error"]["code"] == "unauthorized"


def test_expired_token_is_refused(client, hub):
    _u, token = hub.users.add("temp", Role.ENGINEER, ttl=timedelta(seconds=-1))
    r = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]
