"""One escalation through the API, checking what comes back at each step."""

from __future__ import annotations

from backline.cases.evidence import JobRunner
from backline.cases.model import Role
from backline.model.core import AnalysisResult, EvidenceRef, Finding, Severity

INTAKE = {"symptoms": "Crash on startup after upgrade", "business_impact": "Production down for 300 users",
          "environment": "7.2 on RHEL 9", "steps_to_reproduce": "Start the service after upgrade",
          "already_tried": "Rollback", "expected": "Starts", "actual": "Crashes", "evidence": ["core.1234"]}


def _analysis(paths, options):
    f = Finding("LOG.ERROR", "disk full", Severity.HIGH, "app.log", (EvidenceRef.line("app.log", 1, "ERROR disk full"),))
    return AnalysisResult((), (), (), (f,), (), ())


def test_escalation_through_the_api(client, hub):
    sup = {"Authorization": f"Bearer {hub.users.add('sam', Role.SUPPORT, team='emea')[1]}"}
    eng = {"Authorization": f"Bearer {hub.users.add('erin', Role.ENGINEER)[1]}"}
    mgr = {"Authorization": f"Bearer {hub.users.add('max', Role.MANAGER)[1]}"}
    cust = {"Authorization": f"Bearer {hub.users.add('carl', Role.CUSTOMER, org='acme')[1]}"}

    thin = client.post("/api/cases", headers=sup, json={"title": "Crash", "product": "server", "version": "7.2",
                                                        "org": "acme", "severity": "S1",
                                                        "intake": {"symptoms": INTAKE["symptoms"]}})
    assert thin.status_code == 201
    body = thin.json()
    assert body["status"] == "needs_info" and "business_impact" in body["intake_result"]["missing"]
    assert any("business impact" in h for h in body["intake_result"]["hints"])
    r = client.patch("/api/cases/ESC-1001", headers=sup, json={"intake": INTAKE})
    assert r.status_code == 200 and r.json()["intake_missing"] == []
    assert client.post("/api/cases/ESC-1001/status", headers=sup, json={"status": "new"}).json()["status"] == "new"

    r = client.post("/api/cases/ESC-1001/assign", headers=mgr, json={"owner": "erin", "co_owners": ["max"]})
    assert r.json()["owner"] == "erin" and r.json()["co_owners"] == ["max"]
    sla = client.get("/api/cases/ESC-1001/sla", headers=eng).json()["clocks"]
    assert [c["clock"] for c in sla] == ["first_response", "update", "resolution"]
    assert sla[0]["target_minutes"] == 60 and sla[0]["state"] in ("running", "warning", "breached")
    n = client.post("/api/cases/ESC-1001/notes", headers=eng, json={"body": "Looking at it", "visibility": "public"})
    assert n.status_code == 201 and n.json()["visibility"] == "public"
    assert client.get("/api/cases/ESC-1001/sla", headers=eng).json()["clocks"][0]["state"] in ("met", "missed")
    r = client.patch(f"/api/notes/{n.json()['id']}", headers=eng, json={"body": "Looking at the core dump"})
    assert r.json()["revisions"] == 1
    hist = client.get(f"/api/notes/{n.json()['id']}/history", headers=cust).json()["revisions"]
    assert [h["body"] for h in hist] == ["Looking at it"]

    up = client.post("/api/cases/ESC-1001/evidence", headers=cust, files={"file": ("app.log", b"ERROR disk full\n")})
    assert up.status_code == 201 and up.json()["job"]["status"] == "queued"
    JobRunner(hub.cases, hub.store, analyze=_analysis, options_factory=lambda w, s: None).run_pending()
    found = client.get("/api/cases/ESC-1001/findings", headers=eng).json()["findings"]
    assert [(f["code"], f["severity"], f["evidence_file"]) for f in found] == [("LOG.ERROR", "high", "app.log")]

    bug = client.post("/api/cases/ESC-1001/bugs", headers=eng, json={"suggested_fix": "free space check"}).json()
    md = client.get(f"/api/bugs/{bug['id']}?format=markdown", headers=eng)
    assert md.headers["content-type"].startswith("text/markdown") and "free space check" in md.text
    gh = client.get(f"/api/bugs/{bug['id']}?format=github", headers=eng).json()
    assert gh["title"] == bug["title"] and "LOG.ERROR" in gh["body"]
    r = client.patch(f"/api/bugs/{bug['id']}", headers=eng, json={"tracker": "jira", "external_key": "SRV-1",
                                                                   "external_status": "Open", "row_version": 1})
    assert r.json()["external_key"] == "SRV-1" and r.json()["row_version"] == 2
    hf = client.post("/api/hotfixes", headers=eng, json={"name": "HF-1", "build": "7.2.0.9", "bug_ids": [bug["id"]],
                                                         "affected_versions": ["7.2"], "fixed_versions": ["7.2.1"],
                                                         "delivered_to": ["ESC-1001"]}).json()
    assert hf["delivered_to"][0]["org"] == "acme"
    for st in ("investigating", "fix_pending", "resolved"):
        assert client.post("/api/cases/ESC-1001/status", headers=eng, json={"status": st}).status_code == 200
    rep = client.get("/api/reports/summary", headers=mgr).json()
    assert rep["cases"] == 1 and rep["open_by_severity"]["S1"] == 0
    assert rep["returned_for_information_share"] == 1.0 and rep["median_minutes_to_resolution"] is not None
    actions = [e["action"] for e in client.get("/api/cases/ESC-1001/audit", headers=mgr).json()["entries"]]
    assert actions[:4] == ["create", "update", "status", "assign"] and actions.count("status") == 4
