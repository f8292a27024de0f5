"""The logs.evtx analyzer on real event logs, and the event classification rules."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from backline.analyzers.base import AnalysisContext
from backline.analyzers.logs.evtx_analyzer import EvtxRecord, LogsEvtxAnalyzer, _classify, analyze_evtx
from backline.analyzers.registry import analyzer_by_name
from backline.errors import FormatError
from backline.model import Event, Fact, Finding


def _run(corpus, name):
    ctx = AnalysisContext()
    out = list(analyze_evtx(corpus / "logs" / "evtx" / name, name, ctx))
    facts = {o.name: o.value for o in out if isinstance(o, Fact)}
    return out, facts, ctx


def test_dirty_file_with_bad_chunk_slots(corpus):
    # SOURCES.md: sysmon.evtx has 8 invalid/empty chunk slots and a too-low header chunk count
    out, facts, ctx = _run(corpus, "sysmon.evtx")
    assert facts["evtx.bad_chunks"] == 8
    assert facts["evtx.records"] > 0
    assert any("8 bad chunk(s)" in w for w in ctx.warnings)


def test_system_log_disk_errors_and_top_errors(corpus):
    out, facts, ctx = _run(corpus, "system.evtx")
    assert facts["evtx.bad_chunks"] == 0 and ctx.warnings == []
    disk = [o for o in out if isinstance(o, Finding) and o.code == "EVTX.DISK_ERROR"]
    # three 'Disk' event 51 records; Kernel-Processor-Power 55 and Kernel-Boot 153 are not disk errors
    assert [(f.data["provider"], f.data["event_id"], f.count) for f in disk] == [("Disk", 51, 3)]
    assert all(e.locator.startswith("record:") for e in disk[0].evidence)
    top = [o for o in out if isinstance(o, Finding) and o.code == "EVTX.TOP_ERRORS"]
    assert top and [f.data["rank"] for f in top] == list(range(1, len(top) + 1))
    assert [f.count for f in top] == sorted((f.count for f in top), reverse=True)
    events = [o for o in out if isinstance(o, Event)]
    assert events and all(e.ref.locator.startswith("record:") for e in events)
    assert facts["evtx.time_range"]["start"] < facts["evtx.time_range"]["end"]


def test_event_data_fields_kept(corpus):
    from backline.analyzers.logs.evtx_analyzer import read_evtx

    problems: list[str] = []
    recs = list(read_evtx(corpus / "logs" / "evtx" / "new-user-security.evtx", "x", problems))
    assert problems == [] and len(recs) == 4
    created = [r for r in recs if r.event_id == 4720]
    assert created and isinstance(created[0].data, dict) and "TargetUserName" in created[0].data


def _rec(provider, eid, data, level=2):
    return EvtxRecord(7, datetime(2024, 1, 1, tzinfo=timezone.utc), provider, eid, level, "System", "pc", data)


@pytest.mark.parametrize("rec,code,key", [
    (_rec("Service Control Manager", 7031, {"param1": "Spooler", "param2": "1"}), "EVTX.SERVICE_CRASH", ("Spooler",)),
    (_rec("Service Control Manager", 7034, ["W3SVC", "2"]), "EVTX.SERVICE_CRASH", ("W3SVC",)),
    (_rec("Application Error", 1000, ["app.exe", "1.2.3.4", "5f0", "ntdll.dll", "10.0.1", "x", "c0000005", "0x1a"]),
     "EVTX.APP_CRASH", ("crash", "app.exe", "ntdll.dll", "10.0.1")),
    (_rec("Application Hang", 1002, ["app.exe", "1.2", "1f4"]), "EVTX.APP_CRASH", ("hang", "app.exe")),
    (_rec("EventLog", 6008, ["10:00", "1/1/2024"]), "EVTX.UNEXPECTED_SHUTDOWN", ("6008",)),
    (_rec("Microsoft-Windows-Kernel-Power", 41, {"BugcheckCode": "0"}, 1), "EVTX.UNEXPECTED_SHUTDOWN", ("41",)),
    (_rec("Ntfs", 55, ["C:"]), "EVTX.DISK_ERROR", ("Ntfs", "55")),
    (_rec("disk", 7, ["\\Device\\Harddisk0\\DR0"]), "EVTX.DISK_ERROR", ("disk", "7")),
])
def test_classification(rec, code, key):
    got = _classify(rec)
    assert got is not None and got[0] == code and got[1] == key


def test_crash_finding_names_faulting_module():
    rec = _rec("Application Error", 1000, ["app.exe", "1.2.3.4", "5f0", "ntdll.dll", "10.0.1", "x", "c0000005", "0x1a"])
    code, _key, data = _classify(rec)
    assert (data["module"], data["module_version"], data["exception_code"]) == ("ntdll.dll", "10.0.1", "c0000005")


@pytest.mark.parametrize("rec", [
    _rec("Microsoft-Windows-Kernel-Processor-Power", 55, []),
    _rec("e1iexpress", 7, []),
    _rec("Some-App", 1000, []),
])
def test_same_ids_from_other_providers_are_not_special(rec):
    assert _classify(rec) is None


def test_not_an_evtx_file(tmp_path):
    p = tmp_path / "fake.evtx"
    p.write_bytes(b"this is not an event log" * 100)
    with pytest.raises(FormatError):
        list(analyze_evtx(p, "fake.evtx", AnalysisContext()))


def test_registered():
    assert analyzer_by_name("logs.evtx") is LogsEvtxAnalyzer
