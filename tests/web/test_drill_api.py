"""``GET /api/cases/{key}/ref``: the drill-down views over HTTP (SQLite and PostgreSQL)."""

from __future__ import annotations


import pytest

from backline.cases.evidence import JobRunner
from backline.cases.hub import Hub
from backline.cases.model import CaseSeverity, Role
from backline.cases.service import NewCase
from backline.testing import EXAMPLE_INTAKE, example_bundle

EXAMPLE = example_bundle()
LOG = "bundle.zip!/logs/orders-service.log"
INTAKE = EXAMPLE_INTAKE


@pytest.fixture
def hub(engine, tmp_path):
    return Hub.build(engine, blob_root=tmp_path / "blobs", max_upload=64 * 1024 * 1024)


@pytest.fixture
def world(hub, client):
    eng, eng_token = hub.users.add("erin", Role.ENGINEER)
    _c, cust_token = hub.users.add("carl", Role.CUSTOMER, org="acme")
    case = hub.cases.create(eng, NewCase("Orders fail", "orders", "4.2.1", "acme", CaseSeverity.S2, INTAKE))
    with open(EXAMPLE, "rb") as f:
        r = client.post(f"/api/cases/{case.key}/evidence", headers={"Authorization": f"Bearer {cust_token}"},
                        files={"file": ("bundle.zip", f)})
    assert r.status_code == 201
    JobRunner(hub.cases, hub.store).run_pending()
    return {"eng": {"Authorization": f"Bearer {eng_token}"}, "cust": {"Authorization": f"Bearer {cust_token}"},
            "key": case.key, "eid": r.json()["id"], "user": eng}


def test_ref_returns_the_view_data(client, hub, world):
    params = {"e": world["eid"], "a": LOG, "l": "line:9", "level": ["ERROR"], "before": 2, "after": 2}
    r = client.get(f"/api/cases/{world['key']}/ref", params=params, headers=world["eng"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["kind"] == "log" and body["artifact"] == LOG and body["locator"] == "line:9"
    assert [x["line"] for x in body["body"]["records"]] == [8, 9, 10, 11]
    assert {x["level"] for x in body["body"]["records"]} == {"ERROR"}
    assert body["evidence"] == {"id": world["eid"], "file": "bundle.zip", "origin": None}
    assert any(c["code"] == "LOG.ERROR_TEMPLATE" for c in body["cited_by"])


def test_ref_refuses_what_it_cannot_show(client, world):
    url = f"/api/cases/{world['key']}/ref"
    r = client.get(url, params={"e": world["eid"], "a": LOG, "l": "line:9"}, headers=world["cust"])
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"         # customers: as if absent
    r = client.get(url, params={"e": world["eid"] + 5, "a": LOG, "l": "line:9"}, headers=world["eng"])
    assert r.status_code == 404 and "no longer" in r.json()["error"]["message"]
    r = client.get(url, params={"e": world["eid"], "a": LOG}, headers=world["eng"])
    assert r.status_code == 422
    r = client.get(url, params={"e": world["eid"], "a": LOG, "l": "line:9", "before": 5000}, headers=world["eng"])
    assert r.status_code == 422
    r = client.get(url, params={"e": "x", "a": LOG, "l": "line:9"}, headers=world["eng"])
    assert r.status_code == 422
    r = client.get(url, params={"e": world["eid"], "a": LOG, "l": "<script>alert(1)</script>"}, headers=world["eng"])
    assert r.status_code == 200 and r.json()["kind"] == "raw"
    assert r.json()["body"]["reference"] == "<script>alert(1)</script>"
