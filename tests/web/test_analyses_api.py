"""``POST /api/cases/{key}/analyses``: a report.json attached over HTTP."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from backline.cases.model import CaseSeverity, Role
from backline.cases.service import NewCase
from backline.web.app import create_app
from backline.testing import EXAMPLE_INTAKE, example_bundle
from backline.testing import report_json as make_report_json

EXAMPLE = example_bundle()
INTAKE = EXAMPLE_INTAKE


@pytest.fixture(scope="module")
def report_json() -> bytes:
    return make_report_json([EXAMPLE])


def test_attach_over_http(client, hub, report_json):
    eng, token = hub.users.add("erin", Role.ENGINEER)
    case = hub.cases.create(eng, NewCase("Orders fail", "orders", "4.2.1", "acme", CaseSeverity.S2, INTAKE))
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    r = client.post(f"/api/cases/{case.key}/analyses", params={"host": "lap-7"}, content=report_json, headers=auth)
    assert r.status_code == 201, r.text
    assert r.json()["source"] == "attached by erin from a local analysis on lap-7"
    found = client.get(f"/api/cases/{case.key}/findings", headers=auth).json()["findings"]
    assert len(found) == len(json.loads(report_json)["findings"])
    assert all(f["evidence_id"] == r.json()["id"] for f in found)
    r = client.post(f"/api/cases/{case.key}/analyses", content=b'{"schema_version": "1.0"}', headers=auth)
    assert r.status_code == 422 and "not a valid report" in r.json()["error"]["message"]


def test_a_report_past_the_limit_is_refused_while_it_streams(hub, report_json):
    hub.analyses.max_bytes = 1000
    eng, token = hub.users.add("erin", Role.ENGINEER)
    case = hub.cases.create(eng, NewCase("Orders fail", "orders", "4.2.1", "acme", CaseSeverity.S2, INTAKE))
    with TestClient(create_app(hub)) as c:
        r = c.post(f"/api/cases/{case.key}/analyses", content=report_json,
                   headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    assert hub.evidence.list(eng, case.key) == []
