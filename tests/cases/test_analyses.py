"""Analyses made on a laptop, attached to a case (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from backline.cases.evidence import JobRunner
from backline.cases.hub import Hub
from backline.cases.model import CaseSeverity, Role
from backline.cases.service import NewCase
from backline.errors import CaseError, NotFound, PermissionDenied
from backline.storage import tables as T
from backline.testing import EXAMPLE_INTAKE, example_bundle
from backline.testing import report_json as make_report_json

EXAMPLE = example_bundle()
INTAKE = EXAMPLE_INTAKE


@pytest.fixture(scope="module")
def report_json() -> bytes:
    """A report.json as ``backline analyze --format json`` writes it (no evidence store)."""
    return make_report_json([EXAMPLE])


@pytest.fixture
def world(engine, tmp_path):
    hub = Hub.build(engine, blob_root=tmp_path / "blobs", max_upload=64 * 1024 * 1024)
    eng, _ = hub.users.add("erin", Role.ENGINEER)
    cust, _ = hub.users.add("carl", Role.CUSTOMER, org="acme")
    case = hub.cases.create(eng, NewCase("Orders fail", "orders", "4.2.1", "acme", CaseSeverity.S2, INTAKE))
    return hub, eng, cust, case


def test_attached_findings_join_the_case(world, report_json):
    hub, eng, _c, case = world
    doc = json.loads(report_json)
    item = hub.analyses.attach(eng, case.key, report_json, host="lap-7")
    assert item.job_status == "done" and item.to_json()["source"] == "attached by erin from a local analysis on lap-7"
    found = hub.evidence.findings(eng, case.key)
    assert len(found) == len(doc["findings"]) > 5
    assert {f["source"] for f in found} == {"attached by erin from a local analysis on lap-7"}
    assert sorted(f["code"] for f in found) == sorted(f["code"] for f in doc["findings"])
    refs = {(r["artifact"], r["locator"]) for f in found for r in f["refs"]}
    assert refs == {(r["artifact"], r["locator"]) for f in doc["findings"] for r in f["evidence"][:20]}
    listed = hub.evidence.list(eng, case.key)
    assert [(e.id, e.origin["host"], e.origin["attached_by"]) for e in listed] == [(item.id, "lap-7", "erin")]
    audit = [e for e in hub.cases.audit_log(eng, case.key) if e.action == "attach_analysis"]
    assert len(audit) == 1 and audit[0].after["findings"] == len(doc["findings"])
    assert hub.store.path(item.sha256).read_bytes() == report_json             # the document is kept
    assert JobRunner(hub.cases, hub.store).run_pending() == 0                  # nothing left to analyse


def test_attached_references_open_once_the_files_are_uploaded(world, report_json):
    hub, eng, _c, case = world
    item = hub.analyses.attach(eng, case.key, report_json, host="lap-7")
    log = "bundle.zip!/logs/orders-service.log"
    v = hub.drill.view(eng, case.key, item.id, log, "line:8")
    assert v.kind == "unavailable" and "attached by erin on lap-7" in v.notes[0]
    with open(EXAMPLE, "rb") as f:
        hub.evidence.upload(eng, case.key, "bundle.zip", f)
    JobRunner(hub.cases, hub.store).run_pending()
    v = hub.drill.view(eng, case.key, item.id, log, "line:8")                 # same bytes, now in the store
    assert v.kind == "log" and v.body["target"]["line"] == 8
    v = hub.drill.view(eng, case.key, item.id, "bundle.zip!/capture/orders-lo.pcap", "packet:73")
    assert v.kind == "packet" and v.body["packet"]["tcp"]["flags"] == "SYN"


def test_what_cannot_be_attached(world, report_json):
    hub, eng, cust, case = world
    with pytest.raises(PermissionDenied):
        hub.analyses.attach(cust, case.key, report_json, host="x")
    with pytest.raises(NotFound):
        hub.analyses.attach(eng, "ESC-9999", report_json, host="x")
    with pytest.raises(CaseError, match="not JSON"):
        hub.analyses.attach(eng, case.key, b"{nope", host="x")
    bad = json.loads(report_json)
    bad["findings"][0]["severity"] = "apocalyptic"
    with pytest.raises(CaseError, match=r"\$\.findings\[0\]\.severity"):
        hub.analyses.attach(eng, case.key, json.dumps(bad).encode(), host="x")
    hub.analyses.max_bytes = 100
    with pytest.raises(CaseError, match="limit of 100 bytes"):
        hub.analyses.attach(eng, case.key, report_json, host="x")
    with hub.engine.connect() as conn:                                         # nothing half-stored
        assert conn.execute(select(T.evidence)).first() is None
        assert conn.execute(select(T.findings)).first() is None
