"""The service's known issues: revisions and audit, promotion drafts, pack overrides, signature links
across cases (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
from datetime import datetime, timezone

import pytest
from sqlalchemy import insert, select

from backline.cases.evidence import JobRunner
from backline.cases.hub import Hub
from backline.cases.model import CaseSeverity, Role
from backline.cases.service import NewCase
from backline.errors import CaseError, Conflict, NotFound, PermissionDenied
from backline.knowledge.kb.promote import matchers_from_findings
from backline.model.core import AnalysisResult, EvidenceRef, Finding, Severity
from backline.storage import tables as T

INTAKE = {"symptoms": "Gateway crashes parsing a header", "business_impact": "Production down for 300 users",
          "environment": "7.2 on RHEL 9", "steps_to_reproduce": "Send a long header",
          "already_tried": "Rollback", "expected": "Works", "actual": "Crashes", "evidence": ["core.1234"]}
SIG = "parse_header | handle_request | main"


def crash_analysis(paths, options):
    """One crash with a Socorro signature and a bucket, per uploaded file (named by the file's content)."""
    text = open(paths[0], "rb").read().decode()
    sig, bucket = text.split("|", 1) if "|" in text and text.count("|") == 1 else (SIG, "NULL_POINTER_READ_SIGSEGV_gw!parse_header")
    f = Finding("DUMP.CRASH", "gw crashed: SIGSEGV", Severity.CRITICAL, "core.1234",
                (EvidenceRef.frame("core.1234", 0, 0, "gw!parse_header"),), analyzer="dumps.elfcore",
                data={"signature": sig, "bucket_id": bucket, "problem_class": "NULL_POINTER_READ"})
    return AnalysisResult(tuple(map(str, paths)), (), (), (f,), (), ())


@pytest.fixture
def hub(engine, tmp_path):
    return Hub.build(engine, blob_root=tmp_path / "blobs", kb_pack=False)


@pytest.fixture
def people(hub):
    return {name: hub.users.add(name, role, team=team)[0] for name, role, team in
            (("erin", Role.ENGINEER, None), ("dev", Role.DEVELOPER, None), ("sam", Role.SUPPORT, "emea"),
             ("sue", Role.SUPPORT, "apac"))}


def _case(hub, who, version="7.2.1", team=None):
    return hub.cases.create(who, NewCase("Gateway crash", "server", version, "acme", CaseSeverity.S1, INTAKE,
                                         team=team)).key


def _analyse(hub, who, key, content=b"core"):
    hub.evidence.upload(who, key, "core.1234", io.BytesIO(content))
    JobRunner(hub.cases, hub.store, analyze=crash_analysis, options_factory=lambda w, s: None,
              knowledge=hub.knowledge).run_pending()


ENTRY = {"title": "Header parser crash", "workaround": "Limit header size on the proxy.",
         "matchers": [{"signature": "parse_header", "prefix": True}]}


def test_every_change_is_a_revision_and_an_audit_entry(hub, people):
    erin, dev = people["erin"], people["dev"]
    e = hub.knowledge.add(erin, ENTRY)
    assert (e["key"], e["status"], e["revision"], e["created_by"]) == ("KB-1001", "draft", 1, "erin")
    with pytest.raises(PermissionDenied):
        hub.knowledge.publish(dev, "KB-1001")                # developers write entries, engineers publish
    hub.knowledge.edit(dev, "KB-1001", {"root_cause": "length field trusted"}, expected_revision=1)
    with pytest.raises(Conflict):
        hub.knowledge.edit(dev, "KB-1001", {"title": "stale"}, expected_revision=1)
    with pytest.raises(CaseError, match="publish or retire"):
        hub.knowledge.edit(dev, "KB-1001", {"status": "published"})
    with pytest.raises(CaseError, match="matchers"):
        hub.knowledge.edit(dev, "KB-1001", {"matchers": []})
    hub.knowledge.publish(erin, "KB-1001")
    with pytest.raises(CaseError, match="already published"):
        hub.knowledge.publish(erin, "KB-1001")
    hist = hub.knowledge.history(erin, "KB-1001")
    assert [(h["revision"], h["change"], h["by"]) for h in hist] == [(1, "create", "erin"), (2, "edit", "dev"),
                                                                     (3, "publish", "erin")]
    assert hist[1]["body"]["root_cause"] == "length field trusted" and "root_cause" not in hist[0]["body"]
    with hub.engine.connect() as conn:
        audit = conn.execute(select(T.audit_log.c.action, T.audit_log.c.before, T.audit_log.c.after)
                             .where(T.audit_log.c.entity == "known_issue").order_by(T.audit_log.c.id)).all()
    assert [a.action for a in audit] == ["create", "edit", "publish"]
    assert audit[1].before["root_cause"] is None and audit[1].after["root_cause"] == "length field trusted"
    with pytest.raises(NotFound):
        hub.knowledge.get(erin, "KB-1")                       # the pack is off in this hub


def test_a_stored_entry_replaces_the_pack_entry_of_its_key(engine, tmp_path, people):
    hub = Hub.build(engine, blob_root=tmp_path / "blobs", kb_pack=True)
    erin = people["erin"]
    assert "KB-13" in {k.key for k in hub.knowledge.published()}
    hub.knowledge.add(erin, {"key": "KB-13", "title": "Refused: not relevant for our product", "status": "draft",
                             "matchers": [{"finding": "NET.TCP.RST_TO_SYN"}]})
    hub.knowledge.retire(erin, "KB-13")
    assert "KB-13" not in {k.key for k in hub.knowledge.published()}
    assert hub.knowledge.get(erin, "KB-13")["origin"] == "service"


def test_promote_drafts_from_the_case_and_the_published_entry_matches_a_new_case(hub, people):
    erin, sam = people["erin"], people["sam"]
    first = _case(hub, sam)
    _analyse(hub, erin, first)
    bug = hub.bugs.create(erin, first, root_cause="parse_header trusts the length field")
    hub.bugs.edit(erin, bug["id"], {"external_key": "GW-12"})
    hub.hotfixes.create(erin, "HF-7", build="7.2.1.9", bug_ids=[bug["id"]], affected_versions=["7.2.1"],
                        fixed_versions=["7.2.4", "7.3"], delivered_to=[first])
    with pytest.raises(CaseError, match="resolved or closed"):
        hub.knowledge.promote(erin, first)
    hub.cases.set_status(erin, first, "resolved")
    with pytest.raises(PermissionDenied):
        hub.knowledge.promote(sam, first)
    draft = hub.knowledge.promote(erin, first, {"workaround": "Cap header size at the proxy."})
    assert draft["matchers"] == [{"signature": SIG}] and draft["match"] == "any"
    assert draft["fix"] == {"bug": "GW-12", "fixed_in": "7.2.4", "hotfix": "HF-7"}
    assert draft["affects"] == [{"product": "server", "versions": "<7.2.4"}]
    assert draft["root_cause"] == "parse_header trusts the length field" and draft["source_case"] == first
    hub.knowledge.publish(erin, draft["key"])

    second = _case(hub, sam)
    _analyse(hub, erin, second)
    kb = [f for f in hub.evidence.findings(erin, second) if f["code"].startswith("KB.")]
    assert [(f["code"], f["data"]["key"]) for f in kb] == [("KB.MATCH", draft["key"])]
    assert kb[0]["severity"] == "critical" and kb[0]["refs"][0]["locator"] == "thread:0/frame:0"


def test_signature_links_across_cases_respect_visibility(hub, people):
    erin, sam, sue = people["erin"], people["sam"], people["sue"]
    a = _case(hub, sam, team="emea")
    b = _case(hub, sue, team="apac")
    c = _case(hub, sam, team="emea")
    other = _case(hub, sam, team="emea")
    for key in (a, b, c):
        _analyse(hub, erin, key)
    _analyse(hub, erin, other, b"other_sig|other_bucket")
    hub.hotfixes.create(erin, "HF-7", build="7.2.1.9", affected_versions=["7.2.1"], fixed_versions=["7.2.4"],
                        delivered_to=[b])
    from backline.cases.signatures import signature_links

    seen = signature_links(hub.cases, erin, a)
    assert [l["case"] for l in seen["linked"]] == [b, c]
    assert {(s["kind"], s["value"]) for s in seen["linked"][0]["signatures"]} == \
        {("signature", SIG), ("bucket", "NULL_POINTER_READ_SIGSEGV_gw!parse_header")}
    assert seen["summary"] == f"seen in {b}, {c}; fixed in hotfix HF-7 for 7.2.1"
    assert [l["case"] for l in signature_links(hub.cases, sam, a)["linked"]] == [c]     # b is another team's
    assert signature_links(hub.cases, erin, other)["linked"] == []
    with pytest.raises(PermissionDenied):
        signature_links(hub.cases, hub.users.add("carl", Role.CUSTOMER, org="acme")[0], a)


def test_matchers_from_findings_without_a_crash_take_the_distinctive_findings():
    fs = [{"code": "LOG.FIRST_ERROR", "severity": "high", "count": 1, "data": {}},
          {"code": "NET.TCP.RST_TO_SYN", "severity": "high", "count": 3, "data": {"server": "10.1.2.3:5432"}},
          {"code": "LOG.ERROR_TEMPLATE", "severity": "high", "count": 9,
           "data": {"template": "connection to <*> refused", "template_id": "x"}},
          {"code": "NET.TCP.RETRANS_RATE", "severity": "high", "count": 9, "data": {"rate": 0.2}},
          {"code": "EVTX.TOP_ERRORS", "severity": "medium", "count": 2, "data": {"provider": "Tcpip", "event_id": 4231}},
          {"code": "NET.DNS.NXDOMAIN", "severity": "low", "count": 2, "data": {"name": "x"}}]
    m, mode = matchers_from_findings(fs)
    assert mode == "all"
    assert m == [{"log": {"template": "connection to <*> refused"}},
                 {"finding": "NET.TCP.RST_TO_SYN", "where": {"server": {"regex": ":5432$"}}},
                 {"event": {"provider": "Tcpip", "id": 4231}}]
    crash = [{"code": "DUMP.CRASH", "severity": "critical", "count": 1,
              "data": {"signature": "crashme.exe", "bucket_id": "NULL_POINTER_READ_c0000005_crashme.exe+0xa6cd"}}]
    assert matchers_from_findings(crash) == ([{"bucket": "NULL_POINTER_READ_c0000005_crashme.exe+0xa6cd"}], "any")


def test_migration_fills_case_signatures_from_stored_findings(tmp_path):
    from backline.storage.db import make_engine, upgrade

    eng = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(eng, "0004")
    now = datetime(2026, 11, 23, 9, tzinfo=timezone.utc)
    with eng.begin() as conn:
        uid = conn.execute(insert(T.users).values(name="erin", role="engineer", token_hash="0" * 64, active=True,
                                                  created_at=now)).inserted_primary_key[0]
        cid = conn.execute(insert(T.cases).values(
            key="ESC-1001", title="Old", product="p", version="1", org="acme", severity="S2", status="new",
            co_owners=[], created_by=uid, created_at=now, updated_at=now, row_version=1, intake={},
            intake_score=1.0, intake_missing=[], sla_policy="default", returned_for_info=False)).inserted_primary_key[0]
        eid = conn.execute(insert(T.evidence).values(case_id=cid, filename="core", sha256="0" * 64, size=1,
                                                     uploaded_by=uid, uploaded_at=now)).inserted_primary_key[0]
        jid = conn.execute(insert(T.jobs).values(case_id=cid, evidence_id=eid, status="done", attempts=1,
                                                 created_at=now)).inserted_primary_key[0]
        for data in ({"signature": SIG, "bucket_id": "B1"}, {"signature": SIG}, {"other": 1}):
            conn.execute(insert(T.findings).values(case_id=cid, job_id=jid, evidence_id=eid, code="DUMP.CRASH",
                                                   title="t", severity=4, artifact="core", detail="", count=1,
                                                   refs=[], data=data, analyzer="x"))
    upgrade(eng)
    with eng.connect() as conn:
        rows = conn.execute(select(T.case_signatures.c.kind, T.case_signatures.c.value)
                            .order_by(T.case_signatures.c.id)).all()
    assert [tuple(r) for r in rows] == [("signature", SIG), ("bucket", "B1")]


def test_publishing_matches_the_open_cases_at_once_and_retiring_withdraws_it(hub, people):
    erin, sam = people["erin"], people["sam"]
    open_case, resolved_case, untouched = _case(hub, sam), _case(hub, sam), _case(hub, sam)
    for key in (open_case, resolved_case):
        _analyse(hub, erin, key)
    hub.cases.set_status(erin, resolved_case, "resolved")
    entry = hub.knowledge.add(erin, {**ENTRY, "matchers": [{"signature": SIG}]})

    def kb_keys(key):
        return [f["data"]["key"] for f in hub.evidence.findings(erin, key) if f["code"] == "KB.MATCH"]

    assert kb_keys(open_case) == []                                 # a draft matches nothing
    published = hub.knowledge.publish(erin, entry["key"])
    assert published["open_cases"] == [open_case]                   # resolved / evidence-less cases are left alone
    assert kb_keys(open_case) == [entry["key"]] and kb_keys(resolved_case) == [] and kb_keys(untouched) == []
    ref = next(f for f in hub.evidence.findings(erin, open_case) if f["code"] == "KB.MATCH")["refs"][0]
    assert ref["locator"] == "thread:0/frame:0"                     # the match still points at the frame
    retired = hub.knowledge.retire(erin, entry["key"])
    assert retired["open_cases"] == [] and kb_keys(open_case) == []


def test_open_cases_matching_lists_only_open_cases_the_user_may_see(hub, people):
    erin, sam, sue = people["erin"], people["sam"], people["sue"]
    mine, theirs = _case(hub, sam, team="emea"), _case(hub, sue, team="apac")
    for key in (mine, theirs):
        _analyse(hub, erin, key)
    entry = hub.knowledge.add(erin, {**ENTRY, "matchers": [{"signature": SIG}]})
    assert hub.knowledge.publish(erin, entry["key"])["open_cases"] == [mine, theirs]
    assert [c["key"] for c in hub.knowledge.open_cases_matching(erin, entry["key"])] == [theirs, mine]
    assert [c["key"] for c in hub.knowledge.open_cases_matching(sam, entry["key"])] == [mine]
    hub.cases.set_status(erin, theirs, "resolved")
    assert [c["key"] for c in hub.knowledge.open_cases_matching(erin, entry["key"])] == [mine]
