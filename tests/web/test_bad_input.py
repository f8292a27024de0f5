"""Bad input gets a clear 4xx with a reason, never a 500 and never a partial write."""

from __future__ import annotations

import pytest

from backline.cases.model import Role

INTAKE = {"symptoms": "Crash on startup after upgrade", "business_impact": "Production down for 300 users",
          "environment": "7.2 on RHEL 9", "steps_to_reproduce": "Start the service after upgrade",
          "already_tried": "Rollback", "expected": "Starts", "actual": "Crashes", "evidence": ["core.1234"]}
CASE = {"title": "Crash", "product": "p", "version": "7.2", "org": "acme", "severity": "S2", "intake": INTAKE}


@pytest.fixture
def eng(hub):
    return {"Authorization": f"Bearer {hub.users.add('erin', Role.ENGINEER)[1]}"}


def _case(client, eng):
    r = client.post("/api/cases", headers=eng, json=CASE)
    assert r.status_code == 201, r.text
    return r.json()


def _audit_len(client, eng, key="ESC-1001"):
    return len(client.get(f"/api/cases/{key}/audit", headers=eng).json()["entries"])


def test_malformed_json(client, eng):
    r = client.post("/api/cases", headers={**eng, "Content-Type": "application/json"}, content=b'{"title": ')
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"


def test_unknown_fields_are_refused(client, eng):
    r = client.post("/api/cases", headers=eng, json={**CASE, "owner_id": 1})
    assert r.status_code == 422 and "owner_id" in r.json()["error"]["message"]
    _case(client, eng)
    r = client.post("/api/cases/ESC-1001/notes", headers=eng, json={"body": "x", "visibility": "public", "pin": 1})
    assert r.status_code == 422
    assert client.get("/api/cases/ESC-1001/notes", headers=eng).json()["notes"] == []


def test_wrong_types_and_values(client, eng):
    for body in ({**CASE, "severity": "S9"}, {**CASE, "title": ""}, {**CASE, "intake": "text"}, [1, 2]):
        r = client.post("/api/cases", headers=eng, json=body)
        assert r.status_code == 422, body
    assert client.get("/api/cases", headers=eng).json()["cases"] == []
    _case(client, eng)
    r = client.post("/api/cases/ESC-1001/notes", headers=eng, json={"body": "x", "visibility": "secret"})
    assert r.status_code == 422
    r = client.get("/api/cases?limit=0", headers=eng)
    assert r.status_code == 422
    r = client.get("/api/cases?status=bogus", headers=eng)
    assert r.status_code == 422 and "unknown status" in r.json()["error"]["message"]


def test_oversize_body(client, eng):
    r = client.post("/api/cases", headers=eng, json={**CASE, "intake": {**INTAKE, "symptoms": "x" * 100_000}})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"

    def chunks():        # no Content-Length: counted while streaming
        yield b'{"title": "'
        for _ in range(100):
            yield b"y" * 1024
        yield b'"}'
    r = client.post("/api/cases", headers={**eng, "Content-Type": "application/json"}, content=chunks())
    assert r.status_code == 413
    assert client.get("/api/cases", headers=eng).json()["cases"] == []


def test_oversize_upload_is_refused_and_not_stored(client, eng, hub):
    _case(client, eng)
    r = client.post("/api/cases/ESC-1001/evidence", headers=eng,
                    files={"file": ("big.bin", b"z" * (300 * 1024))})
    assert r.status_code == 413
    assert client.get("/api/cases/ESC-1001/evidence", headers=eng).json()["evidence"] == []
    assert not any((hub.store.root / "sha256").rglob("*")) if (hub.store.root / "sha256").exists() else True


@pytest.mark.parametrize("name,stored", [("../../etc/passwd", "passwd"), ("..\\..\\boot.ini", "boot.ini"),
                                         ("/abs/path/app.log", "app.log"), ("..", "upload.bin"),
                                         ("evil\x00name.log", "evil_00name.log")])
def test_path_tricks_in_upload_names(client, eng, hub, name, stored):
    _case(client, eng)
    r = client.post("/api/cases/ESC-1001/evidence", headers=eng, files={"file": (name, b"line 1\n")})
    assert r.status_code == 201, r.text
    assert r.json()["filename"] == stored
    blob = hub.store.path(r.json()["sha256"])
    assert blob.read_bytes() == b"line 1\n" and hub.store.root in blob.parents


def test_upload_without_file_part_or_not_multipart(client, eng):
    _case(client, eng)
    r = client.post("/api/cases/ESC-1001/evidence", headers=eng, data={"x": "1"},
                    files={"other": ("a", b"b")})
    assert r.status_code == 422
    r = client.post("/api/cases/ESC-1001/evidence", headers=eng, json={"file": "x"})
    assert r.status_code == 422
    r = client.post("/api/cases/ESC-1001/evidence", headers=eng, files={"file": ("empty.log", b"")})
    assert r.status_code == 422


def test_invalid_transition_is_4xx_and_writes_nothing(client, eng):
    _case(client, eng)
    before = _audit_len(client, eng)
    r = client.post("/api/cases/ESC-1001/status", headers=eng, json={"status": "fix_pending"})
    assert r.status_code == 422 and "cannot move" in r.json()["error"]["message"]
    r = client.post("/api/cases/ESC-1001/status", headers=eng, json={"status": "nope"})
    assert r.status_code == 422
    assert _audit_len(client, eng) == before
    assert client.get("/api/cases/ESC-1001", headers=eng).json()["status"] == "new"


def test_unknown_case_and_routes(client, eng):
    assert client.get("/api/cases/ESC-9999", headers=eng).status_code == 404
    assert client.get("/api/nothing", headers=eng).status_code == 404
    assert client.delete("/api/cases", headers=eng).status_code == 405


def test_stale_write_gets_409_and_nothing_is_lost(client, eng):
    case = _case(client, eng)
    v = case["row_version"]
    r1 = client.post("/api/cases/ESC-1001/status", headers=eng, json={"status": "investigating", "row_version": v})
    assert r1.status_code == 200 and r1.headers["etag"] == f'"{v + 1}"'
    r2 = client.patch("/api/cases/ESC-1001", headers={**eng, "If-Match": f'"{v}"'}, json={"severity": "S1"})
    assert r2.status_code == 409 and r2.json()["error"]["code"] == "conflict"
    now = client.get("/api/cases/ESC-1001", headers=eng).json()
    assert now["status"] == "investigating" and now["severity"] == "S2" and now["row_version"] == v + 1
    r3 = client.patch("/api/cases/ESC-1001", headers={**eng, "If-Match": f'"{v + 1}"'}, json={"severity": "S1"})
    assert r3.status_code == 200 and r3.json()["severity"] == "S1"
    r4 = client.patch("/api/cases/ESC-1001", headers={**eng, "If-Match": "abc"}, json={"severity": "S1"})
    assert r4.status_code == 422


def test_openapi_document(client):
    doc = client.get("/openapi.json").json()
    assert "/api/cases/{key}/notes" in doc["paths"] and "/api/reports/summary" in doc["paths"]


@pytest.mark.parametrize("path", ["/api/notes/99999999999999999999999/history", "/api/bugs/9223372036854775808",
                                  "/api/notes/-1/history", "/api/bugs/0"])
def test_out_of_range_ids(client, eng, path):
    r = client.get(path, headers=eng)
    assert r.status_code in (404, 422), r.text


def test_nul_characters_and_huge_numbers(client, eng):
    r = client.post("/api/cases", headers=eng, json={**CASE, "title": "bad\x00title"})
    assert r.status_code == 422
    r = client.post("/api/cases", headers=eng, json={**CASE, "intake": {**INTAKE, "symptoms": "a\x00" * 20}})
    assert r.status_code == 422
    _case(client, eng)
    r = client.post("/api/cases/ESC-1001/notes", headers=eng, json={"body": "x\x00y", "visibility": "public"})
    assert r.status_code == 422
    r = client.post("/api/cases/ESC-1001/status", headers=eng, json={"status": "investigating",
                                                                     "row_version": 10 ** 30})
    assert r.status_code in (409, 422)
    r = client.post("/api/hotfixes", headers=eng, json={"name": "HF-1", "build": "b", "bug_ids": [10 ** 30]})
    assert r.status_code in (404, 422)
    r = client.post("/api/cases/ESC-1001/evidence", headers=eng, files={"file": ("a\x00b.log", b"x")})
    assert r.status_code == 201
    assert client.get("/api/cases/ESC-1001/notes", headers=eng).json()["notes"] == []
