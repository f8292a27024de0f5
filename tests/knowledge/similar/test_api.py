"""``GET /api/cases/{key}/similar`` and ``POST /api/similar`` (the intake hint)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from backline.cases.hub import Hub
from backline.cases.model import CaseSeverity, Role
from backline.cases.service import NewCase
from backline.web.app import create_app


@pytest.fixture
def api(engine, tmp_path):
    hub = Hub.build(engine, blob_root=tmp_path / "blobs")
    sam, _ = hub.users.add("sam", Role.SUPPORT, team="emea")
    erin, token = hub.users.add("erin", Role.ENGINEER)
    _c, cust = hub.users.add("carl", Role.CUSTOMER, org="acme")
    for title, org in (("Gateway OutOfMemoryError after two hours", "acme"),
                       ("Gateway Java heap space exhausted under load", "globex"),
                       ("Wrong logo on the login page", "acme")):
        hub.cases.create(sam, NewCase(title, "gateway", "7.2", org, CaseSeverity.S2, {"symptoms": title}))
    hub.cases.assign(erin, "ESC-1002", "erin")
    hub.similar.indexer.run_pending()
    with TestClient(create_app(hub)) as client:
        yield client, {"Authorization": f"Bearer {token}"}, {"Authorization": f"Bearer {cust}"}


def test_similar_route_lists_best_first_without_the_case(api):
    client, staff, cust = api
    r = client.get("/api/cases/ESC-1001/similar?limit=2", headers=staff)
    assert r.status_code == 200
    body = r.json()
    assert isinstance(body, list) and 1 <= len(body) <= 2 and body[0]["key"] == "ESC-1002"
    assert all(set(h) >= {"key", "external_id", "title", "score", "why"} for h in body)
    assert "ESC-1001" not in [h["key"] for h in body]
    assert "ESC-1002" not in [h["key"] for h in client.get("/api/cases/ESC-1001/similar", headers=cust).json()]
    assert client.get("/api/cases/ESC-1001/similar?limit=0", headers=staff).status_code == 422
    assert client.get("/api/cases/ESC-1001/similar?limit=101", headers=staff).status_code == 422


def test_intake_text_route_gives_a_hint(api):
    client, staff, _cust = api
    r = client.post("/api/similar", headers=staff,
                    json={"title": "Gateway heap exhausted", "product": "gateway",
                          "intake": {"symptoms": "OutOfMemoryError: Java heap space under load"}})
    assert r.status_code == 200
    top = r.json()[0]
    assert top["key"] == "ESC-1002" and top["hint"].startswith("this looks like ESC-1002")
    assert top["hint"].endswith("open, owned by erin")
    assert client.post("/api/similar", headers=staff, json={"text": "   "}).status_code == 422
    assert client.post("/api/similar", headers=staff, json={"text": "x", "bogus": 1}).status_code == 422
