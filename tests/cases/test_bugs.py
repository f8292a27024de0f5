"""Bug reports: drafted from the case and its findings, edited, rendered, linked to a tracker."""

from __future__ import annotations

import io

import jsonschema
import pytest

from backline.cases.bugs import render_github, render_jira, render_markdown
from backline.cases.evidence import JobRunner
from backline.cases.hub import Hub
from backline.cases.model import CaseSeverity, Role
from backline.cases.service import NewCase
from backline.errors import CaseError, Conflict, PermissionDenied
from backline.model.core import AnalysisResult, EvidenceRef, Finding, Severity

INTAKE = {"symptoms": "Service crashes with SIGSEGV after upgrade", "business_impact": "Production down for 300 users",
          "environment": "7.2.1 on RHEL 9 x86_64", "steps_to_reproduce": "1. Upgrade\n2. Start the service",
          "already_tried": "Rollback works", "expected": "Starts", "actual": "Crashes in parse_header",
          "evidence": ["core.1234"]}

JIRA_SCHEMA = {"type": "object", "required": ["fields"], "properties": {"fields": {
    "type": "object", "required": ["project", "summary", "issuetype", "description"],
    "properties": {"project": {"type": "object", "required": ["key"]}, "summary": {"type": "string", "maxLength": 255},
                   "issuetype": {"type": "object", "required": ["name"]}, "description": {"type": "string"},
                   "labels": {"type": "array", "items": {"type": "string", "pattern": "^[^ ]+$"}},
                   "priority": {"type": "object", "required": ["name"]}}}}}
GITHUB_SCHEMA = {"type": "object", "required": ["title", "body"], "additionalProperties": False,
                 "properties": {"title": {"type": "string"}, "body": {"type": "string"},
                                "labels": {"type": "array", "items": {"type": "string"}}}}


def crash_analysis(paths, options):
    ref = EvidenceRef.frame("core.1234", 0, thread=1, excerpt="libparse.so!parse_header + 0x1c")
    f = Finding("DUMP.NULL_READ", "NULL pointer read in parse_header", Severity.CRITICAL, "core.1234", (ref,),
                data={"signature": "parse_header | read_request | main",
                      "frames": ["libc.so.6!memcpy", "libparse.so!parse_header + 0x1c", "app!read_request", "app!main"],
                      "blamed_frame": 1}, analyzer="fake")
    g = Finding("LOG.ERROR", "disk full", Severity.HIGH, "app.log", (EvidenceRef.line("app.log", 7, "ERROR disk full"),))
    return AnalysisResult((), (), (), (f, g), (), ())


@pytest.fixture
def world(engine, tmp_path):
    hub = Hub.build(engine, blob_root=tmp_path / "blobs")
    eng, _ = hub.users.add("erin", Role.ENGINEER)
    sup, _ = hub.users.add("sam", Role.SUPPORT)
    case = hub.cases.create(sup, NewCase("Crash after upgrade", "server", "7.2.1", "acme", CaseSeverity.S1, INTAKE))
    hub.evidence.upload(eng, case.key, "core.1234", io.BytesIO(b"\x7fELF core"))
    JobRunner(hub.cases, hub.store, analyze=crash_analysis, options_factory=lambda w, s: None).run_pending()
    return hub, eng, sup, case


def test_draft_contains_case_facts_findings_and_stack(world):
    hub, eng, _s, case = world
    bug = hub.bugs.create(eng, case.key, root_cause="parse_header trusts the length field",
                          suggested_fix="check len <= buf_size before memcpy in parse_header()")
    f = bug["fields"]
    assert bug["title"] == "[server 7.2.1] Crash after upgrade"
    assert f["facts"] == {"case": case.key, "product": "server", "version": "7.2.1", "customer": "acme",
                          "severity": "S1"}
    assert f["steps_to_reproduce"] == INTAKE["steps_to_reproduce"] and f["actual"] == INTAKE["actual"]
    assert [e["code"] for e in f["evidence_summary"]] == ["DUMP.NULL_READ", "LOG.ERROR"]
    assert f["evidence_summary"][0]["excerpts"] == ["core.1234 thread:1/frame:0: libparse.so!parse_header + 0x1c"]
    assert f["crash_signature"] == "parse_header | read_request | main"
    assert [fr["blamed"] for fr in f["crashing_stack"]] == [False, True, False, False]
    assert f["attachments"][0]["filename"] == "core.1234"

    md = hub.bugs.render(eng, bug["id"], "markdown")
    for needle in ("# [server 7.2.1] Crash after upgrade", "## Steps to reproduce", "**DUMP.NULL_READ**",
                   "=>  1 libparse.so!parse_header + 0x1c", "## Suggested fix", "check len <= buf_size",
                   "## Attachments", "**Expected:** Starts"):
        assert needle in md, needle
    jira = hub.bugs.render(eng, bug["id"], "jira")
    jsonschema.validate(jira, JIRA_SCHEMA)
    assert jira["fields"]["priority"] == {"name": "Highest"} and jira["fields"]["versions"] == [{"name": "7.2.1"}]
    assert "{code}" in jira["fields"]["description"] and "```" not in jira["fields"]["description"]
    gh = hub.bugs.render(eng, bug["id"], "github")
    jsonschema.validate(gh, GITHUB_SCHEMA)
    assert gh["body"] == md and "severity:S1" in gh["labels"]


def test_edit_and_link_to_tracker(world):
    hub, eng, sup, case = world
    bug = hub.bugs.create(eng, case.key)
    edited = hub.bugs.edit(eng, bug["id"], {"fields": {"root_cause": "length not checked"},
                                            "tracker": "jira", "external_key": "SRV-812",
                                            "external_url": "https://jira.example/browse/SRV-812",
                                            "external_status": "Open"}, expected_version=1)
    assert edited["fields"]["root_cause"] == "length not checked" and edited["external_key"] == "SRV-812"
    assert edited["fields"]["symptoms"] == INTAKE["symptoms"]          # other fields kept
    with pytest.raises(Conflict):
        hub.bugs.edit(eng, bug["id"], {"external_status": "Done"}, expected_version=1)
    with pytest.raises(CaseError, match="unknown bug report field"):
        hub.bugs.edit(eng, bug["id"], {"fields": {"bogus": "x"}})
    with pytest.raises(PermissionDenied):
        hub.bugs.edit(sup, bug["id"], {"external_status": "Done"})
    assert [b["id"] for b in hub.bugs.list(sup, case.key)] == [bug["id"]]
    assert [e.action for e in hub.cases.audit_log(eng, case.key) if e.entity == "bug"] == ["create", "edit"]


def test_renderers_without_crash_or_findings():
    fields = {"summary": "s", "facts": {"case": "ESC-1", "severity": "S4"}, "evidence_summary": [],
              "crash_signature": "", "crashing_stack": [], "attachments": []}
    md = render_markdown("T", fields)
    assert "## Crash" not in md and "## Evidence" not in md and md.startswith("# T\n")
    assert render_jira("T", fields)["fields"]["priority"] == {"name": "Low"}
    assert render_github("x" * 400, fields)["title"] == "x" * 256


def test_hotfix_lifecycle(world):
    hub, eng, sup, case = world
    bug = hub.bugs.create(eng, case.key)
    hf = hub.hotfixes.create(eng, "HF-7.2.1-3", build="7.2.1.3-hf3", bug_ids=[bug["id"]],
                             affected_versions=["7.2.0", "7.2.1"], fixed_versions=["7.2.2"], delivered_to=[case.key])
    assert hf["verification"] == "pending" and [d["org"] for d in hf["delivered_to"]] == ["acme"]
    hf = hub.hotfixes.set_verification(eng, "HF-7.2.1-3", "verified")
    assert hf["verification"] == "verified"
    with pytest.raises(CaseError, match="already exists"):
        hub.hotfixes.create(eng, "HF-7.2.1-3", build="x")
    with pytest.raises(CaseError, match="no bug report"):
        hub.hotfixes.create(eng, "HF-9", build="x", bug_ids=[999])
    assert [h["name"] for h in hub.hotfixes.list(sup)] == ["HF-7.2.1-3"]
    assert hub.hotfixes.deliver(eng, "HF-7.2.1-3", case.key)["delivered_to"] == hf["delivered_to"]  # idempotent
