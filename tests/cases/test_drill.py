"""Drill-down from evidence references: the example case analysed by the real pipeline in
the job runner, then every reference opened (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import re
import zipfile

import pytest

from backline.cases.drill import LogQuery
from backline.cases.drill.store import DerivedStore
from backline.cases.evidence import JobRunner
from backline.cases.hub import Hub
from backline.cases.model import CaseSeverity, Role
from backline.cases.service import NewCase
from backline.errors import NotFound
from backline.testing import EXAMPLE_INTAKE, example_bundle

EXAMPLE = example_bundle()
LOG = "bundle.zip!/logs/orders-service.log"
PCAP = "bundle.zip!/capture/orders-lo.pcap"
CORE = "bundle.zip!/crash.tar.gz!/crash/core.stockcalc"
TRACE = "bundle.zip!/crash.tar.gz!/crash/orders-crash.txt"
INTAKE = EXAMPLE_INTAKE


@pytest.fixture
def hub(engine, tmp_path):
    return Hub.build(engine, blob_root=tmp_path / "blobs", max_upload=64 * 1024 * 1024)


@pytest.fixture
def analysed(hub):
    eng, _ = hub.users.add("erin", Role.ENGINEER)
    cust, _ = hub.users.add("carl", Role.CUSTOMER, org="acme")
    other, _ = hub.users.add("sue", Role.SUPPORT, team="apac")
    case = hub.cases.create(eng, NewCase("Orders fail", "orders", "4.2.1", "acme", CaseSeverity.S2, INTAKE))
    with open(EXAMPLE, "rb") as f:
        item = hub.evidence.upload(cust, case.key, "bundle.zip", f)
    assert JobRunner(hub.cases, hub.store).run_pending() == 1
    assert hub.evidence.list(eng, case.key)[0].job_status == "done"
    return hub, eng, cust, other, case, item


def _raw_lines(name: str) -> list[str]:
    with zipfile.ZipFile(EXAMPLE) as z:
        return z.read(name).decode().splitlines()


def test_every_reference_of_the_example_case_opens(analysed):
    hub, eng, _c, _o, case, item = analysed
    kinds, seen = {}, set()
    for f in hub.evidence.findings(eng, case.key):
        for r in f["refs"]:
            if (r["artifact"], r["locator"]) in seen:
                continue
            seen.add((r["artifact"], r["locator"]))
            v = hub.drill.view(eng, case.key, item.id, r["artifact"], r["locator"])
            kinds[r["locator"].split(":")[0]] = v.kind
            assert v.kind not in ("raw", "unavailable"), (r, v.notes)
            assert any(c["code"] == f["code"] for c in v.cited_by)
    assert kinds == {"line": kinds["line"], "packet": "packet", "thread": "frame"}
    assert kinds["line"] in ("log", "lines")


def test_log_view_at_a_line_with_filters_and_search(analysed):
    hub, eng, _c, _o, case, item = analysed
    raw = _raw_lines("logs/orders-service.log")
    v = hub.drill.view(eng, case.key, item.id, LOG, "line:9")
    assert v.kind == "log"
    body = v.body
    assert body["target"]["line"] == 9 and body["target"]["level"] == "ERROR"
    assert body["target"]["message"] in raw[8]
    lines = [r["line"] for r in body["records"]]
    assert lines == sorted(lines) and 9 in lines and [r["line"] for r in body["records"] if r["target"]] == [9]
    assert body["total"] == body["matching"]

    errors = [n for n, text in enumerate(raw, 1) if re.match(r"\S+ \S+ ERROR ", text)]
    v = hub.drill.view(eng, case.key, item.id, LOG, "line:9", LogQuery(levels=("ERROR",), before=100, after=100))
    assert [r["line"] for r in v.body["records"]] == errors and v.body["matching"] == len(errors)
    assert {"level": "ERROR", "count": len(errors)} in v.body["levels"]

    v = hub.drill.view(eng, case.key, item.id, LOG, "line:1", LogQuery(search="http 500", before=0, after=100))
    hits = [n for n, text in enumerate(raw, 1) if "http 500" in text.lower()]
    assert [r["line"] for r in v.body["records"] if not r["target"]] == hits and v.body["matching"] == len(hits)

    tid = hub.drill.view(eng, case.key, item.id, LOG, "line:8").body["target"]["template_id"]
    v = hub.drill.view(eng, case.key, item.id, LOG, "line:8", LogQuery(template=tid, before=100, after=100))
    assert [r["line"] for r in v.body["records"]] == [8, 9, 10]          # the three connection attempts
    assert v.body["query"]["template"] == tid and any(t["id"] == tid for t in v.body["templates"])

    # a line inside a multi-line record (the stack trace) lands on its record
    v = hub.drill.view(eng, case.key, item.id, LOG, "line:20")
    assert v.body["target"]["line"] == 13 and v.body["target"]["end_line"] >= 20
    lines = v.body["target_lines"]                                         # the trace's own lines
    assert [ln["text"] for ln in lines] == raw[12:v.body["target"]["end_line"]]
    assert [ln["number"] for ln in lines if ln["target"]] == [20]
    # SQL-looking search text is a value, never SQL
    v = hub.drill.view(eng, case.key, item.id, LOG, "line:1", LogQuery(search="') OR 1=1 --"))
    assert v.body["matching"] == 0


def test_text_trace_line_view(analysed):
    hub, eng, _c, _o, case, item = analysed
    v = hub.drill.view(eng, case.key, item.id, TRACE, "line:1")
    assert v.kind == "lines" and v.body["lines"][0] == {"number": 1, "text": "Traceback (most recent call last):",
                                                        "target": True}


def test_packet_view_shows_the_connection_and_the_fields(analysed):
    hub, eng, _c, _o, case, item = analysed
    v = hub.drill.view(eng, case.key, item.id, PCAP, "packet:73")       # the SYN that was refused
    assert v.kind == "packet"
    pkt, conv = v.body["packet"], v.body["conversation"]
    assert pkt["tcp"]["flags"] == "SYN" and pkt["ip"]["src"] == "127.0.0.1"
    assert [p["number"] for p in conv["packets"] if p["this"]] == [73]
    ports = {pkt["tcp"]["src_port"], pkt["tcp"]["dst_port"]}
    assert all({p["sport"], p["dport"]} == ports for p in conv["packets"])
    after = [p for p in conv["packets"] if p["number"] > 73]
    assert after and "RST" in after[0]["flags"]                           # refused: answered by a reset

    v = hub.drill.view(eng, case.key, item.id, PCAP, "packet:86")       # NET.HTTP.5XX
    assert {"protocol": "HTTP response", "status": 500, "frame": 86} in v.body["packet"]["application"]
    v = hub.drill.view(eng, case.key, item.id, PCAP, "packet:99999")
    assert v.kind == "raw" and "no packet 99999" in v.notes[0]


def test_frame_view_disassembles_around_the_fault(analysed):
    hub, eng, _c, _o, case, item = analysed
    v = hub.drill.view(eng, case.key, item.id, CORE, "thread:0/frame:0")
    assert v.kind == "frame"
    b = v.body
    this = [i for i in b["disassembly"] if i["this"]]
    assert len(this) == 1 and this[0]["address"] == b["registers"]["rip"]
    assert this[0]["text"] == b["crashing_instruction"]
    assert [f["index"] for f in b["frames"] if f["this"]] == [0] and b["exception"]["type"] == "SIGSEGV"
    before = [i for i in b["disassembly"] if int(i["address"], 16) < int(this[0]["address"], 16)]
    assert len(before) >= 4                                               # context before the fault
    v = hub.drill.view(eng, case.key, item.id, CORE, "thread:0/frame:1")
    call = [i for i in v.body["disassembly"] if i["this"]]
    assert len(call) == 1 and call[0]["text"].startswith("call")        # a caller frame shows its call
    v = hub.drill.view(eng, case.key, item.id, CORE, "thread:7/frame:0")
    assert v.body["thread"] is None and "not in the dump" in v.notes[0]


def test_frame_view_shows_the_debugger_on_the_uploaded_core(analysed):
    hub, eng, _c, _o, case, item = analysed
    out = {o["command"]: o for o in hub.drill.view(eng, case.key, item.id, CORE, "thread:0/frame:0").body["debugger"]}
    assert list(out) == ["!analyze -v", "~*k", "lm", ".ecxr", "!locks"]
    assert all(o["error"] is None for o in out.values()), out
    assert "NULL_POINTER" in out["!analyze -v"]["text"] and "stockcalc!reserve" in out["~*k"]["text"]
    assert "stockcalc" in out["lm"]["text"]
    one = hub.drill.view(eng, case.key, item.id, CORE, "thread:0/frame:0", debugger="u @rip L2").body["debugger"]
    assert len(one) == 1 and one[0]["error"] is None and "mov" in one[0]["text"]
    bad = hub.drill.view(eng, case.key, item.id, CORE, "thread:0/frame:0", debugger="nonsense").body["debugger"]
    assert bad[0]["error"].startswith("unknown command")


def test_references_nobody_can_follow(analysed):
    hub, eng, cust, other, case, item = analysed
    with pytest.raises(NotFound):
        hub.drill.view(cust, case.key, item.id, LOG, "line:8")             # customers never see findings
    with pytest.raises(NotFound):
        hub.drill.view(other, case.key, item.id, LOG, "line:8")            # support of another team
    with pytest.raises(NotFound, match="not .*part of"):
        hub.drill.view(eng, case.key, item.id + 1, LOG, "line:8")
    with pytest.raises(NotFound, match="no artifact"):
        hub.drill.view(eng, case.key, item.id, "bundle.zip!/nope.log", "line:8")
    v = hub.drill.view(eng, case.key, item.id, CORE, "offset:0x1f0")
    assert v.kind == "raw" and v.body["reference"] == "offset:0x1f0"
    # the bytes gone from the store: a message, not a traceback
    art = hub.drill.view(eng, case.key, item.id, PCAP, "offset:0").body["artifact"]
    hub.store.path(art["sha256"]).unlink()
    v = hub.drill.view(eng, case.key, item.id, PCAP, "packet:73")
    assert v.kind == "raw" and "not in the evidence store" in v.notes[0]


def test_derived_data_is_bounded_and_replaced(hub, tmp_path):
    eng, _ = hub.users.add("erin", Role.ENGINEER)
    case = hub.cases.create(eng, NewCase("Orders fail", "orders", "4.2.1", "acme", CaseSeverity.S2, INTAKE))
    item = hub.evidence.upload(eng, case.key, "bundle.zip", io.BytesIO(EXAMPLE.read_bytes()))
    tiny = DerivedStore(hub.drill.derived.root, max_bytes=10)
    JobRunner(hub.cases, hub.store, derived=tiny).run_pending()
    v = hub.drill.view(eng, case.key, item.id, LOG, "line:8")
    assert v.kind == "lines" and "limit of 10 bytes" in " ".join(v.notes)   # raw lines instead of records
    assert [ln["number"] for ln in v.body["lines"] if ln["target"]] == [8]
    assert tiny.used(item.id) == 0
    # analysed again with room: the records are kept, the folder replaced
    from sqlalchemy import update
    from backline.storage import tables as T
    with hub.engine.begin() as conn:
        conn.execute(update(T.jobs).values(status="queued"))
    JobRunner(hub.cases, hub.store).run_pending()
    assert hub.drill.view(eng, case.key, item.id, LOG, "line:8").kind == "log"
    assert 0 < hub.drill.derived.used(item.id) < 1_000_000


def test_frame_disassembly_agrees_with_gdb(analysed, tmp_path):
    """gdb on the same core and binary: the faulting instruction, and frame 1's return address
    right after the call the view marks."""
    import shutil
    import subprocess
    import tarfile

    hub, eng, _c, _o, case, item = analysed
    with zipfile.ZipFile(EXAMPLE) as z:
        z.extract("crash.tar.gz", tmp_path)
    with tarfile.open(tmp_path / "crash.tar.gz") as t:
        t.extractall(tmp_path, filter="data")
    out = subprocess.run([shutil.which("gdb") or "gdb", "-q", "-batch", "-ex", "set disassembly-flavor intel",
                          "-ex", "x/i $pc", "-ex", "frame 1", "-ex", "p/x $pc",
                          str(tmp_path / "crash/stockcalc"), str(tmp_path / "crash/core.stockcalc")],
                         capture_output=True, text=True, timeout=60).stdout
    fault = re.search(r"=> (0x[0-9a-f]+) <[^>]*>:\s+(\w+)", out)
    ret = int(re.search(r"\$1 = (0x[0-9a-f]+)", out).group(1), 16)
    v0 = hub.drill.view(eng, case.key, item.id, CORE, "thread:0/frame:0").body["disassembly"]
    this = next(i for i in v0 if i["this"])
    assert (int(this["address"], 16), this["text"].split()[0]) == (int(fault.group(1), 16), fault.group(2))
    v1 = hub.drill.view(eng, case.key, item.id, CORE, "thread:0/frame:1").body["disassembly"]
    k = next(n for n, i in enumerate(v1) if i["this"])
    assert v1[k]["text"].startswith("call") and int(v1[k + 1]["address"], 16) == ret


def test_event_log_record_view(hub, corpus):
    eng, _ = hub.users.add("erin", Role.ENGINEER)
    case = hub.cases.create(eng, NewCase("Disk errors", "orders", "4.2.1", "acme", CaseSeverity.S2, INTAKE))
    with open(corpus / "logs/evtx/system.evtx", "rb") as f:
        item = hub.evidence.upload(eng, case.key, "system.evtx", f)
    JobRunner(hub.cases, hub.store).run_pending()
    refs = [r for f in hub.evidence.findings(eng, case.key) for r in f["refs"] if r["locator"].startswith("record:")]
    assert len(refs) >= 10
    for r in refs[:10]:
        v = hub.drill.view(eng, case.key, item.id, r["artifact"], r["locator"])
        assert v.kind == "record", v.notes
        assert v.body["record_id"] == int(r["locator"].split(":")[1])
        # the finding's excerpt is "<provider> <event id>: <values>" of the same record
        assert r["excerpt"].startswith(f"{v.body['provider']} {v.body['event_id']}:")
    v = hub.drill.view(eng, case.key, item.id, refs[0]["artifact"], "record:999999")
    assert v.kind == "raw" and "no record 999999" in v.notes[0]


def test_the_packet_index_is_built_by_the_job(analysed):
    hub, eng, _c, _o, case, item = analysed
    built = list(hub.drill.derived.folder(item.id).glob("packets-*.parquet"))
    assert len(built) == 1                                    # one capture in the bundle, indexed already
    mtime = built[0].stat().st_mtime_ns
    hub.drill.view(eng, case.key, item.id, PCAP, "packet:73")
    assert built[0].stat().st_mtime_ns == mtime               # the view read it, did not rebuild it


def test_a_reference_into_other_evidence_of_the_case(analysed):
    """Findings made over the whole case (known-issue matches) cite files of other evidence."""
    hub, eng, _c, _o, case, item = analysed
    other = hub.evidence.upload(eng, case.key, "extra.log", io.BytesIO(b"2026-11-23 10:00:00 INFO up\n"))
    JobRunner(hub.cases, hub.store).run_pending()
    v = hub.drill.view(eng, case.key, other.id, PCAP, "packet:73")
    assert v.kind == "packet" and v.evidence_id == item.id
    assert v.notes[0] == f"this file is part of evidence {item.id} (bundle.zip)"
