"""The case's diagnosis: stored per analysis job, recomputed over all evidence, proposed in bug drafts."""

from __future__ import annotations

import io
from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient

from backline.cases.diagnosis import DiagnosisService
from backline.cases.evidence import JobRunner
from backline.cases.hub import Hub
from backline.cases.model import CaseSeverity, Role
from backline.cases.service import NewCase
from backline.errors import PermissionDenied
from backline.knowledge.diagnosis import diagnose
from backline.model.core import AnalysisResult, Event, EvidenceRef, Finding, Severity
from backline.web.app import create_app

INTAKE = {"symptoms": "Checkout fails", "business_impact": "No orders for 2 h", "environment": "4.2 on Debian 12",
          "steps_to_reproduce": "Place an order", "already_tried": "Restart", "expected": "Order placed",
          "actual": "HTTP 503", "evidence": ["capture", "app log"]}
T = datetime(2024, 5, 1, 14, 2, tzinfo=timezone.utc)


def _capture(paths, options):
    """Upload 1: a capture where the ledger port refuses connections."""
    art = f"{paths[0]}!/lo.pcap"
    rst = Finding("NET.TCP.RST_TO_SYN", "Connection refused by 10.1.2.3:6432 (3 attempt(s))", Severity.HIGH, art,
                  (EvidenceRef.packet(art, 40, "RST from 10.1.2.3:6432"),), count=3, first_seen=T, last_seen=T,
                  analyzer="net.capture", data={"server": "10.1.2.3:6432"})
    events = (Event(T, art, "net.tcp.rst_to_syn", rst.title, Severity.HIGH, rst.evidence[0]),)
    return AnalysisResult((str(paths[0]),), (), (), (rst,), events, (),
                          diagnosis=diagnose([rst], events))


def _log(paths, options):
    """Upload 2: the application log, with the errors naming the refused endpoint."""
    art = f"{paths[0]}"
    err = Finding("LOG.ERROR_TEMPLATE", "3x connect to <*> failed: Connection refused", Severity.HIGH, art,
                  (EvidenceRef.line(art, 9, "ERROR connect to 10.1.2.3:6432 failed: Connection refused"),),
                  count=3, first_seen=T, last_seen=T, analyzer="logs.text")
    noise = Finding("LOG.ERROR_TEMPLATE", "1x cache miss storm", Severity.HIGH, art,
                    (EvidenceRef.line(art, 2, "ERROR cache miss storm"),), first_seen=T.replace(hour=9),
                    last_seen=T.replace(hour=9), analyzer="logs.text")
    return AnalysisResult((str(paths[0]),), (), (), (noise, err), (), (), diagnosis=diagnose([noise, err]))


@pytest.fixture
def world(engine, tmp_path):
    hub = Hub.build(engine, blob_root=tmp_path / "blobs")
    eng, _ = hub.users.add("erin", Role.ENGINEER)
    sup, _ = hub.users.add("sam", Role.SUPPORT)
    case = hub.cases.create(sup, NewCase("Checkout fails", "shop", "4.2", "acme", CaseSeverity.S2, INTAKE))
    hub.evidence.upload(eng, case.key, "net.zip", io.BytesIO(b"PK capture"))
    JobRunner(hub.cases, hub.store, analyze=_capture, options_factory=lambda w, s: None).run_pending()
    hub.evidence.upload(eng, case.key, "app.log", io.BytesIO(b"ERROR connect failed\n"))
    JobRunner(hub.cases, hub.store, analyze=_log, options_factory=lambda w, s: None).run_pending()
    return hub, eng, sup, case


def test_each_job_stores_its_diagnosis_with_finding_ids(world):
    hub, eng, _s, case = world
    stored = DiagnosisService(hub.cases).stored(eng, case.key)
    assert [s["evidence_file"] for s in stored] == ["app.log", "net.zip"]
    findings = {f["id"]: f for f in hub.evidence.findings(eng, case.key)}
    cap = stored[1]["probable_causes"][0]
    assert cap["code"] == "NET.TCP.RST_TO_SYN" and findings[cap["finding_id"]]["code"] == "NET.TCP.RST_TO_SYN"
    assert cap["evidence"][0]["artifact"] == "net.zip!/lo.pcap"       # relative to the upload, like the findings


def test_the_current_diagnosis_reasons_across_uploads(world):
    hub, eng, _s, case = world
    d = DiagnosisService(hub.cases).current(eng, case.key)
    assert d["evidence_files"] == ["app.log", "net.zip"] and d["findings"] >= 3     # (+ known-issue matches)
    top = d["probable_causes"][0]
    findings = {f["id"]: f for f in hub.evidence.findings(eng, case.key)}
    assert top["code"] == "NET.TCP.RST_TO_SYN" and top["evidence_file"] == "net.zip"
    assert "10.1.2.3:6432" in top["title"] and top["confidence"] > 0.5
    (link,) = [x for x in top["chain"] if findings[x["effect_id"]]["evidence_file"] == "app.log"]
    assert findings[link["effect_id"]]["title"].startswith("3x connect")
    assert {"kind": "endpoint", "value": "10.1.2.3:6432"} in link["joined_on"]
    # the stored first/last times came back: the morning error is not explained by the 14:02 refusal
    assert all(findings[x["effect_id"]]["title"] != "1x cache miss storm" for x in top["chain"])


def test_the_bug_draft_proposes_the_top_cause_and_keeps_what_the_engineer_wrote(world):
    hub, eng, _s, case = world
    bug = hub.bugs.create(eng, case.key)
    rc = bug["fields"]["root_cause"]
    assert rc.startswith("Proposed by Backline's diagnosis (confidence 0.")
    assert "Nothing listening on 10.1.2.3:6432" in rc and "app.log line:9" in rc
    mine = hub.bugs.create(eng, case.key, root_cause="The ledger was stopped for maintenance.")
    assert mine["fields"]["root_cause"] == "The ledger was stopped for maintenance."
    edited = hub.bugs.edit(eng, bug["id"], {"fields": {"root_cause": "Confirmed: ledger down."}})
    assert edited["fields"]["root_cause"] == "Confirmed: ledger down."
    assert "## Root cause analysis" in hub.bugs.render(eng, bug["id"], "markdown")


def test_a_case_without_analysed_evidence_has_no_cause_and_no_proposal(engine, tmp_path):
    hub = Hub.build(engine, blob_root=tmp_path / "blobs")
    eng, _ = hub.users.add("erin", Role.ENGINEER)
    case = hub.cases.create(eng, NewCase("Quiet", "shop", "4.2", "acme", CaseSeverity.S3, INTAKE))
    assert DiagnosisService(hub.cases).current(eng, case.key)["probable_causes"] == []
    assert hub.bugs.create(eng, case.key)["fields"]["root_cause"] == ""


def test_the_api_serves_the_diagnosis_to_staff_only(world):
    hub, _e, _s, case = world
    cust, cust_token = hub.users.add("carl", Role.CUSTOMER, org="acme")
    _u, eng_token = hub.users.add("ed", Role.ENGINEER)
    with pytest.raises(PermissionDenied):
        DiagnosisService(hub.cases).current(cust, case.key)
    with TestClient(create_app(hub)) as c:
        r = c.get(f"/api/cases/{case.key}/diagnosis", headers={"Authorization": f"Bearer {cust_token}"})
        assert r.status_code == 403
        r = c.get(f"/api/cases/{case.key}/diagnosis", headers={"Authorization": f"Bearer {eng_token}"})
        assert r.status_code == 200
        assert r.json()["probable_causes"][0]["code"] == "NET.TCP.RST_TO_SYN"


def test_the_case_wide_diagnosis_is_cached_until_the_evidence_changes(world):
    from backline.cases import diagnosis as cd

    hub, eng, _s, case = world
    svc = DiagnosisService(hub.cases)
    before = dict(cd.stats)
    first = svc.current(eng, case.key)
    again = svc.current(eng, case.key)
    assert again == first
    assert cd.stats["computed"] - before["computed"] == 1 and cd.stats["cached"] - before["cached"] == 1
    again["probable_causes"].clear()                      # a caller's copy: the cache is not touched
    assert svc.current(eng, case.key)["probable_causes"]
    cust, _t = hub.users.add("cora", Role.CUSTOMER, org="acme")
    with pytest.raises(PermissionDenied):                 # access is checked on every call, cached or not
        svc.current(cust, case.key)
    # new evidence analysed: the key changes and the diagnosis is computed again, with the new finding
    hub.evidence.upload(eng, case.key, "app2.log", io.BytesIO(b"ERROR connect failed\n"))
    JobRunner(hub.cases, hub.store, analyze=_log, options_factory=lambda w, s: None).run_pending()
    n = cd.stats["computed"]
    third = svc.current(eng, case.key)
    assert cd.stats["computed"] == n + 1
    assert third["evidence_files"] == ["app.log", "app2.log", "net.zip"] and third["findings"] > first["findings"]
    # findings removed (a known-issue refresh deletes and re-adds rows): computed again
    with hub.cases.engine.begin() as conn:
        from backline.storage import tables as TT
        conn.execute(TT.findings.delete().where(TT.findings.c.title == "1x cache miss storm"))
    n = cd.stats["computed"]
    fourth = svc.current(eng, case.key)
    assert cd.stats["computed"] == n + 1 and fourth["findings"] == third["findings"] - 2
