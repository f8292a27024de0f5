"""Known issues through the API, end to end: a resolved case is promoted to a known issue, published,
and recognised automatically when the same evidence is uploaded to a new case (SQLite and PostgreSQL)."""

from __future__ import annotations

from backline.cases.evidence import JobRunner
from backline.cases.model import Role

DUMP = "dumps/breakpad/null_read_av.dmp"     # EXCEPTION_ACCESS_VIOLATION_READ @ 0x0 in crashme.exe, no symbols
INTAKE = {"symptoms": "crashme.exe crashes when a report is opened", "business_impact": "Reports down for 40 users",
          "environment": "4.2.1 on Windows 7", "steps_to_reproduce": "Open any report",
          "already_tried": "Reinstall", "expected": "Report opens", "actual": "Crash", "evidence": ["crash.dmp"]}


def _case(client, sup, version):
    r = client.post("/api/cases", headers=sup, json={"title": "Crash opening reports", "product": "reports",
                                                     "version": version, "org": "acme", "severity": "S2",
                                                     "intake": INTAKE})
    assert r.status_code == 201, r.text
    return r.json()["key"]


def _upload_and_analyse(client, hub, tmp_path, headers, key, corpus):
    up = client.post(f"/api/cases/{key}/evidence", headers=headers,
                     files={"file": ("crash.dmp", (corpus / DUMP).read_bytes())})
    assert up.status_code == 201, up.text
    assert JobRunner(hub.cases, hub.store, work_root=tmp_path, knowledge=hub.knowledge).run_pending() == 1
    return client.get(f"/api/cases/{key}/findings", headers=headers).json()


def test_a_promoted_and_published_known_issue_is_matched_in_a_new_case(client, hub, corpus, tmp_path):
    sup = {"Authorization": f"Bearer {hub.users.add('sam', Role.SUPPORT, team='emea')[1]}"}
    eng = {"Authorization": f"Bearer {hub.users.add('erin', Role.ENGINEER)[1]}"}

    first = _case(client, sup, "4.2.1")
    body = _upload_and_analyse(client, hub, tmp_path, eng, first, corpus)
    crash = next(f for f in body["findings"] if f["code"] == "DUMP.CRASH")
    assert crash["data"]["bucket_id"] == "NULL_POINTER_READ_c0000005_crashme.exe+0xa6cd"
    assert body["signature_links"] == {"linked": [], "known_issues": [], "summary": ""}

    # the case is worked and resolved: a bug with the root cause, a hotfix delivered
    bug = client.post(f"/api/cases/{first}/bugs", headers=eng,
                      json={"root_cause": "Report renderer dereferences a missing font (null)"}).json()
    client.patch(f"/api/bugs/{bug['id']}", headers=eng, json={"tracker": "jira", "external_key": "REP-77",
                                                              "external_url": "https://jira.example/REP-77"})
    r = client.post("/api/hotfixes", headers=eng, json={"name": "HF-7", "build": "4.2.1.9", "bug_ids": [bug["id"]],
                                                        "affected_versions": ["4.2.1"], "fixed_versions": ["4.2.3"],
                                                        "delivered_to": [first]})
    assert r.status_code == 201, r.text
    r = client.post(f"/api/cases/{first}/promote", headers=eng, json={})
    assert r.status_code == 422 and "only a resolved or closed case" in r.json()["error"]["message"]
    for status in ("investigating", "resolved"):
        assert client.post(f"/api/cases/{first}/status", headers=eng, json={"status": status}).status_code == 200

    r = client.post(f"/api/cases/{first}/promote", headers=eng,
                    json={"workaround": "Install the missing font pack, or apply hotfix HF-7."})
    assert r.status_code == 201, r.text
    draft = r.json()
    key = draft["key"]
    assert key == "KB-1001" and draft["status"] == "draft" and draft["source_case"] == first
    assert draft["root_cause"] == "Report renderer dereferences a missing font (null)"
    assert draft["symptoms"] == INTAKE["symptoms"]
    assert draft["fix"] == {"bug": "REP-77", "bug_url": "https://jira.example/REP-77", "fixed_in": "4.2.3",
                            "hotfix": "HF-7"}
    assert draft["affects"] == [{"product": "reports", "versions": "<4.2.3"}]
    assert {"bucket": "NULL_POINTER_READ_c0000005_crashme.exe+0xa6cd"} in draft["matchers"]

    # a draft is not matched: a second case with the same dump gets only the starter pack's match
    second = _case(client, sup, "4.2.1")
    body = _upload_and_analyse(client, hub, tmp_path, eng, second, corpus)
    assert [f["data"]["key"] for f in body["findings"] if f["code"] == "KB.MATCH"] == ["KB-63"]

    assert client.post(f"/api/kb/{key}/publish", headers=eng).json()["status"] == "published"

    third = _case(client, sup, "4.2.1")
    body = _upload_and_analyse(client, hub, tmp_path, eng, third, corpus)
    kb = {f["data"]["key"]: f for f in body["findings"] if f["code"] == "KB.MATCH"}
    assert set(kb) == {"KB-1001", "KB-63"}
    mine = kb["KB-1001"]
    assert mine["title"] == "KB-1001 Crash opening reports" and mine["evidence_file"] == "crash.dmp"
    assert mine["refs"][0]["locator"].endswith("frame:0")
    assert "Workaround: Install the missing font pack" in mine["detail"]
    assert "fixed in 4.2.3, customer runs 4.2.1: upgrade or apply hotfix HF-7" in mine["detail"]
    links = body["signature_links"]
    assert [l["case"] for l in links["linked"]] == [first, second]
    assert links["summary"] == f"seen in {first}, {second}; fixed in hotfix HF-7 for 4.2.1; known issue KB-1001 (fixed in 4.2.3)"
    bug3 = client.post(f"/api/cases/{third}/bugs", headers=eng, json={}).json()   # the bug report says so too
    assert bug3["fields"]["seen_in"] == f"seen in {first}, {second}; fixed in hotfix HF-7 for 4.2.1"
    md = client.get(f"/api/bugs/{bug3['id']}?format=markdown", headers=eng).text
    assert f"Same crash: seen in {first}, {second}; fixed in hotfix HF-7 for 4.2.1" in md

    # a customer on the fixed version: the evidence matches, but the issue does not apply
    fourth = _case(client, sup, "4.2.5")
    body = _upload_and_analyse(client, hub, tmp_path, eng, fourth, corpus)
    (na,) = [f for f in body["findings"] if f["code"] == "KB.NOT_AFFECTED"]
    assert na["data"]["key"] == "KB-1001" and "fixed in 4.2.3, customer runs 4.2.5" in na["title"]

    # retired: no longer matched (the next job re-matches the whole case)
    assert client.post(f"/api/kb/{key}/retire", headers=eng).json()["status"] == "retired"
    body = _upload_and_analyse(client, hub, tmp_path, eng, third, corpus)
    assert [f["data"]["key"] for f in body["findings"] if f["code"].startswith("KB.")] == ["KB-63"]

    # audited, with revisions
    audit = client.get(f"/api/cases/{first}/audit", headers=eng).json()["entries"]
    assert [(e["entity"], e["entity_id"], e["action"]) for e in audit if e["entity"] == "known_issue"] == \
        [("known_issue", key, "promote"), ("known_issue", key, "publish"), ("known_issue", key, "retire")]
    hist = client.get(f"/api/kb/{key}/history", headers=eng).json()["revisions"]
    assert [(h["revision"], h["change"], h["status"], h["by"]) for h in hist] == \
        [(1, "promote", "draft", "erin"), (2, "publish", "published", "erin"), (3, "retire", "retired", "erin")]


def test_kb_routes_validate_and_test(client, hub):
    eng = {"Authorization": f"Bearer {hub.users.add('erin', Role.ENGINEER)[1]}"}
    r = client.post("/api/kb", headers=eng, json={"title": "x", "matchers": [{"finding": "NET.TLS.ALERT",
                                                                              "where": {"rate": {"gte": "x"}}}]})
    assert r.status_code == 422 and "matchers[0].where.rate.gte" in r.json()["error"]["message"]
    r = client.post("/api/kb", headers=eng, json={"title": "Proxy drops idle TLS sessions",
                                                  "matchers": [{"finding": "NET.TLS.ALERT",
                                                                "where": {"description": "unknown_ca"}}]})
    assert r.status_code == 201 and r.json()["key"] == "KB-1001" and r.json()["revision"] == 1
    r = client.post("/api/kb/KB-1001/publish", headers=eng)
    assert r.status_code == 422 and "no workaround" in r.json()["error"]["message"]
    r = client.patch("/api/kb/KB-1001", headers=eng, json={"workaround": "Send the chain.", "revision": 1})
    assert r.status_code == 200 and r.json()["revision"] == 2
    assert client.patch("/api/kb/KB-1001", headers=eng, json={"title": "y", "revision": 1}).status_code == 409
    assert client.post("/api/kb", headers=eng, json={"key": "KB-1001", "title": "dup",
                                                     "matchers": [{"log": {"regex": "x"}}]}).status_code == 409
    finding = {"code": "NET.TLS.ALERT", "title": "TLS fatal alert unknown_ca", "severity": "high", "artifact": "c.pcap",
               "count": 1, "refs": [{"artifact": "c.pcap", "locator": "packet:8", "excerpt": None}],
               "data": {"description": "unknown_ca"}}
    r = client.post("/api/kb/test", headers=eng, json={"keys": ["KB-1001", "KB-3"], "findings": [finding]})
    assert r.status_code == 200, r.text
    assert [(x["key"], x["verdict"]) for x in r.json()["results"]] == [("KB-1001", "match"), ("KB-3", "match")]
    assert r.json()["results"][0]["matched"][0]["evidence"][0]["locator"] == "packet:8"
    listed = [e["key"] for e in client.get("/api/kb?pack=true&q=unknown+CA", headers=eng).json()["known_issues"]]
    assert "KB-3" in listed and "KB-1001" not in listed
    assert [e["key"] for e in client.get("/api/kb", headers=eng).json()["known_issues"]] == ["KB-1001"]
    assert client.get("/api/kb/KB-3", headers=eng).json()["origin"] == "pack"
    assert client.get("/api/kb/KB-9999", headers=eng).status_code == 404
