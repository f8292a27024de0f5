"""The template and event indexes the known-issue matchers read (log.template_index, evtx.event_index)."""

from __future__ import annotations

import csv

from backline.analyzers.logs.evtx_analyzer import LogsEvtxAnalyzer
from backline.analyzers.logs.evtx_index import MAX_VALUES, EventIndex
from backline.analyzers.logs.stats import TemplateStats
from backline.analyzers.logs.template_index import template_index
from backline.analyzers.logs.text_analyzer import LogsTextAnalyzer
from backline.model import Severity
from backline.testing import run_analyzer


def _fact(res, name):
    (value,) = [f.value for f in res.facts if f.name == name]
    return value


def test_template_index_counts_every_line_of_a_real_log(corpus):
    log = corpus / "logs/loghub-2k/OpenSSH/OpenSSH_2k.log"
    idx = _fact(run_analyzer(LogsTextAnalyzer, log), "log.template_index")
    assert sum(t["count"] for t in idx) == 2000                 # every record is in exactly one template
    truth = list(csv.DictReader(open(corpus / "logs/loghub-2k/OpenSSH/OpenSSH_2k.log_structured_corrected.csv")))
    failed = sum(1 for row in truth if row["Content"].startswith("Failed password for invalid user"))
    mined = [t for t in idx if t["template"].startswith("Failed password for invalid user")]
    assert sum(t["count"] for t in mined) == failed
    first = min(int(r["LineId"]) for r in truth if r["Content"].startswith("Failed password for invalid user"))
    assert min(t["first_line"] for t in mined) == first


def test_template_index_keeps_the_severe_and_rare_when_capped():
    tpls = [TemplateStats(f"chatter {i}", f"c{i}", count=1000 + i, first_line=i + 1) for i in range(10)]
    tpls.append(TemplateStats("Out of memory: Killed process <*>", "oom", count=1, first_line=50))
    tpls.append(TemplateStats("disk failed", "disk", count=500, first_line=60, severity=Severity.HIGH))
    kept = {t["template_id"] for t in template_index(tpls, limit=3)}
    assert kept == {"disk", "oom", "c0"}


def test_event_index_agrees_with_the_top_errors_and_keeps_status_values(corpus):
    res = run_analyzer(LogsEvtxAnalyzer, corpus / "logs/evtx/system.evtx")
    idx = {(e["provider"], e["event_id"]): e for e in _fact(res, "evtx.event_index")}
    records = _fact(res, "evtx.records")
    assert sum(e["count"] for e in idx.values()) == records
    for f in res.findings:
        if f.code == "EVTX.TOP_ERRORS":
            assert idx[(f.data["provider"], f.data["event_id"])]["count"] == f.count
    scm = idx[("Service Control Manager", 7023)]
    assert "Spooler" in scm["fields"]["param1"] and scm["severity"] == "high"


def test_event_index_bounds_values_and_kinds():
    idx = EventIndex()
    for i in range(50):
        idx.add("P", 1, 2, i, "s", {"Status": f"0x{i:x}", "Other": "ignored"})
    (e,) = idx.entries()
    assert e["count"] == 50 and len(e["fields"]["Status"]) == MAX_VALUES and "Other" not in e["fields"]
    assert e["first_record"] == 0 and e["last_record"] == 49
