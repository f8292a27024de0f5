"""Evidence uploads (streamed into the blob store) and the durable analysis job table."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import pytest

from backline.cases.evidence import MAX_ATTEMPTS, JobRunner
from backline.cases.hub import Hub
from backline.cases.model import CaseSeverity, Role
from backline.cases.service import NewCase
from backline.errors import FormatError, StorageError
from backline.model.core import AnalysisResult, EvidenceRef, Finding, Severity

INTAKE = {"symptoms": "Crash on startup after upgrade", "business_impact": "Production down for 300 users",
          "environment": "7.2 on RHEL 9", "steps_to_reproduce": "Start the service after upgrade",
          "already_tried": "Rollback", "expected": "Starts", "actual": "Crashes", "evidence": ["core.1234"]}


def _result(paths, findings=()):
    return AnalysisResult(inputs=tuple(map(str, paths)), artifacts=(), runs=(), findings=tuple(findings),
                          events=(), facts=())


class FakeAnalyze:
    """Reads the uploaded file and reports one finding per line containing ERROR (line-exact refs)."""

    def __init__(self):
        self.calls = []

    def __call__(self, paths, options):
        self.calls.append([Path(p).name for p in paths])
        out = []
        for p in paths:
            for n, line in enumerate(Path(p).read_text().splitlines(), 1):
                if "ERROR" in line:
                    out.append(Finding("LOG.ERROR", "error line", Severity.HIGH, f"{p}",
                                       (EvidenceRef.line(str(p), n, line),), analyzer="fake"))
        return _result(paths, out)


@pytest.fixture
def hub(engine, tmp_path):
    return Hub.build(engine, blob_root=tmp_path / "blobs", max_upload=64 * 1024 * 1024)


@pytest.fixture
def world(hub):
    eng, _ = hub.users.add("erin", Role.ENGINEER)
    cust, _ = hub.users.add("carl", Role.CUSTOMER, org="acme")
    case = hub.cases.create(eng, NewCase("Crash", "p", "7.2", "acme", CaseSeverity.S2, INTAKE))
    return hub, eng, cust, case


def _opts(work_dir, store):
    return {"work_dir": work_dir}


def test_upload_queue_and_findings(world, tmp_path):
    hub, eng, cust, case = world
    item = hub.evidence.upload(cust, case.key, "../app.log", io.BytesIO(b"ok\nERROR disk full\nok\nERROR again\n"))
    assert item.filename == "app.log" and item.job_status == "queued" and item.size == 34
    fake = FakeAnalyze()
    runner = JobRunner(hub.cases, hub.store, analyze=fake, options_factory=_opts, work_root=tmp_path)
    assert runner.run_pending() == 1 and fake.calls == [["app.log"]]
    found = hub.evidence.findings(eng, case.key)
    assert [(f["code"], f["refs"][0]["locator"], f["refs"][0]["excerpt"]) for f in found] == [
        ("LOG.ERROR", "line:2", "ERROR disk full"), ("LOG.ERROR", "line:4", "ERROR again")]
    assert found[0]["refs"][0]["artifact"] == "app.log"         # scratch folder stripped
    assert hub.evidence.list(eng, case.key)[0].job_status == "done"
    assert not list(tmp_path.glob("job*"))                      # scratch removed


def test_jobs_survive_a_restart(world, engine, tmp_path):
    hub, eng, _c, case = world
    hub.evidence.upload(eng, case.key, "a.log", io.BytesIO(b"ERROR one\n"))
    hub.evidence.upload(eng, case.key, "b.log", io.BytesIO(b"ERROR two\n"))
    first = JobRunner(hub.cases, hub.store, analyze=FakeAnalyze(), options_factory=_opts, worker="w1")
    claimed = first.claim()                 # the server dies while this job runs
    assert claimed is not None
    assert [e.job_status for e in hub.evidence.list(eng, case.key)] == ["running", "queued"]
    # a new server over the same database and store
    hub2 = Hub.build(engine, blob_root=hub.store.root)
    second = JobRunner(hub2.cases, hub2.store, analyze=FakeAnalyze(), options_factory=_opts, worker="w2")
    assert second.recover() == 1
    assert second.run_pending() == 2
    assert [e.job_status for e in hub2.evidence.list(eng, case.key)] == ["done", "done"]
    assert sorted(f["refs"][0]["excerpt"] for f in hub2.evidence.findings(eng, case.key)) == ["ERROR one", "ERROR two"]


def test_background_thread_runs_jobs(world, tmp_path):
    hub, eng, _c, case = world
    hub.evidence.upload(eng, case.key, "a.log", io.BytesIO(b"ERROR one\n"))
    runner = JobRunner(hub.cases, hub.store, analyze=FakeAnalyze(), options_factory=_opts)
    runner.start(poll_seconds=0.05)
    try:
        import time
        for _ in range(200):
            if hub.evidence.list(eng, case.key)[0].job_status == "done":
                break
            time.sleep(0.02)
    finally:
        runner.stop()
    assert hub.evidence.list(eng, case.key)[0].job_status == "done"


def test_failures_are_recorded_and_crashes_retried(world):
    hub, eng, cust, case = world
    hub.evidence.upload(eng, case.key, "bad.pcap", io.BytesIO(b"\x00\x01"))

    def bad_format(paths, options):
        raise FormatError("bad magic", artifact="bad.pcap", locator="offset:0")
    JobRunner(hub.cases, hub.store, analyze=bad_format, options_factory=_opts).run_pending()
    item = hub.evidence.list(eng, case.key)[0]
    assert item.job_status == "failed" and "bad magic" in item.job_error
    assert hub.evidence.list(cust, case.key)[0].job_error is None      # customers do not see internals

    hub.evidence.upload(eng, case.key, "x.log", io.BytesIO(b"x"))
    calls = []

    def crash(paths, options):
        calls.append(1)
        raise RuntimeError("analyzer bug")
    JobRunner(hub.cases, hub.store, analyze=crash, options_factory=_opts).run_pending()
    assert len(calls) == MAX_ATTEMPTS
    assert hub.evidence.list(eng, case.key)[1].job_status == "failed"


class Zeros(io.RawIOBase):
    """A large upload that exists only as a stream."""

    def __init__(self, size):
        self.left = size

    def readable(self):
        return True

    def readinto(self, b):
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n


def test_uploads_are_streamed_not_held_in_memory(world):
    hub, eng, _c, case = world
    size = 48 * 1024 * 1024
    tracemalloc.start()
    try:
        item = hub.evidence.upload(eng, case.key, "big.dmp", io.BufferedReader(Zeros(size), 1 << 20))
        _cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert item.size == size and hub.store.path(item.sha256).stat().st_size == size
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes while storing {size}"


def test_upload_limit(world):
    hub, eng, _c, case = world
    hub.evidence.max_bytes = 1000
    with pytest.raises(StorageError, match="limit"):
        hub.evidence.upload(eng, case.key, "big", io.BytesIO(b"x" * 1001))
    assert hub.evidence.list(eng, case.key) == []


def test_real_pipeline_on_a_corpus_file(world, corpus, tmp_path):
    """A real minidump from the corpus goes through the real pipeline in the job runner; the
    stored findings are exactly what the pipeline reports for that file run directly, and the
    bug report drafted from them carries the crash signature and the blamed frame."""
    from backline.knowledge.kb import load_pack
    from backline.pipeline import AnalyzeOptions, analyze

    hub, eng, _c, case = world
    src = corpus / "dumps" / "breakpad" / "linux_null_dereference.dmp"
    with open(src, "rb") as f:
        hub.evidence.upload(eng, case.key, src.name, f)
    runner = JobRunner(hub.cases, hub.store, work_root=tmp_path)
    assert runner.run_pending() == 1
    item = hub.evidence.list(eng, case.key)[0]
    assert item.job_status == "done", item.job_error
    # the service matches its known issues (here: the starter pack) as `backline analyze` does
    direct = analyze([src], AnalyzeOptions(work_dir=tmp_path / "direct", kb=tuple(load_pack())))
    assert "KB.MATCH" in {f.code for f in direct.findings}
    assert direct.findings, "the pipeline found nothing in a crash dump"
    stored = hub.evidence.findings(eng, case.key)
    key = lambda f: (f["code"], f["count"], f["title"], f["artifact"])  # noqa: E731
    assert sorted(key(f) for f in stored) == sorted((f.code, f.count, f.title, f.artifact) for f in direct.findings)
    by_code = {f["code"]: f for f in stored}
    for f in direct.findings:
        assert [(r["locator"], r["excerpt"]) for r in by_code[f.code]["refs"]] == \
            [(r.locator, r.excerpt) for r in f.evidence[:20]]
    done = [e for e in hub.cases.audit_log(eng, case.key) if e.entity == "job"]
    assert done and done[0].after["artifacts"] == len(direct.artifacts) >= 1

    crash = next(f for f in direct.findings if f.data.get("signature"))
    bug = hub.bugs.create(eng, case.key)
    assert bug["fields"]["crash_signature"] == crash.data["signature"]
    assert [fr["frame"] for fr in bug["fields"]["crashing_stack"] if fr["blamed"]] == [crash.data["blamed_frame"]]
    facts = {x["name"]: x["value"] for x in hub.evidence.facts(eng, case.key)}
    assert facts == {x.name: x.value for x in direct.facts}
    env = {x["name"]: x["value"] for x in bug["fields"]["evidence_facts"]}
    assert env and all(facts[k] == v for k, v in env.items())
    if "dump.os" in facts:
        assert f"dump.os: {facts['dump.os']}" in hub.bugs.render(eng, bug["id"], "markdown")
