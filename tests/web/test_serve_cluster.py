"""``backline serve --scheduler``: the service's analysis jobs run on a real Dask cluster (a
scheduler and two worker processes on 127.0.0.1) and store the findings a local job stores;
a task past the time limit is stopped on its worker as locally; an unreachable scheduler and a
cluster without workers end the job (never a wait without end); a worker lost in the middle of a
task is replaced by the other, as the module docstring of :mod:`backline.analyzers.cluster` says."""

from __future__ import annotations

import io
import os
import subprocess
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from backline.testing import backline_exe, corpus_dir, free_port, local_dask_cluster, serve_process

CORPUS = corpus_dir() / "logs" / "loghub-2k"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with local_dask_cluster(tmp_path_factory.mktemp("dask"), workers=2) as (addr, procs):
        yield addr, procs


def _bundle() -> bytes:
    """A zip of four real logs (loghub-2k, read in place): four analyzer tasks."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for system in ("HDFS", "Spark", "Linux", "OpenSSH"):
            z.write(CORPUS / system / f"{system}_2k.log", f"bundle/{system.lower()}.log")
    return buf.getvalue()


def _run_job(base: str, auth: dict, data: bytes, seconds: float = 240.0) -> dict:
    case = httpx.post(base + "/api/cases", headers=auth, timeout=30, json={
        "title": "Gateway errors", "product": "p", "version": "1", "org": "acme", "severity": "S2",
        "intake": {"symptoms": "x" * 20}}).json()
    key = case["key"]
    r = httpx.post(base + f"/api/cases/{key}/evidence", headers=auth, timeout=60,
                   files={"file": ("bundle.zip", data)})
    assert r.status_code == 201, r.text
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ev = httpx.get(base + f"/api/cases/{key}/evidence", headers=auth, timeout=30).json()["evidence"][0]
        if ev["job"]["status"] in ("done", "failed"):
            break
        time.sleep(0.3)
    got = httpx.get(base + f"/api/cases/{key}/findings", headers=auth, timeout=30).json()
    return {"job": ev["job"], "findings": got["findings"], "facts": got["facts"]}


def _view(out: dict):
    findings = sorted((f["code"], f["artifact"], f["title"], f["severity"], f["count"], f["detail"],
                       tuple((r["artifact"], r["locator"], r.get("excerpt")) for r in f["refs"] or ()))
                      for f in out["findings"])
    facts = sorted((f["artifact"], f["name"], repr(f["value"])) for f in out["facts"] if f["name"] != "log.parquet")
    return findings, facts


def _server(home: Path, extra: list[str], env_extra: dict | None = None):
    env = {**os.environ, "BACKLINE_HOME": str(home), **(env_extra or {})}
    env.pop("BACKLINE_DATABASE_URL", None)
    env.pop("BACKLINE_DASK_SCHEDULER", None)
    token = subprocess.run(backline_exe() + ["user", "add", "erin", "--role", "engineer"], env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    return serve_process(extra, env), {"Authorization": f"Bearer {token}"}


def _task_names(addr: str) -> set[str]:
    from distributed import Client

    with Client(addr, set_as_default=False) as c:
        done = c.run(lambda dask_worker: sorted({str(k).split("-")[0] for k in dask_worker.state.log_keys()})
                     if hasattr(dask_worker.state, "log_keys") else
                     sorted({str(e[0]).split("-")[0] for e in dask_worker.state.log}))
    return {w: set(v) for w, v in done.items()}


def test_serve_runs_its_jobs_on_the_cluster_with_the_local_findings(cluster, tmp_path):
    addr, _procs = cluster
    data = _bundle()
    before = _task_names(addr)
    running, auth = _server(tmp_path / "home-cluster", ["--scheduler", addr])
    with running as (base, _proc):
        remote = _run_job(base, auth, data)
    running, auth = _server(tmp_path / "home-local", [])
    with running as (base, _proc):
        local = _run_job(base, auth, data)
    assert remote["job"]["status"] == "done", remote["job"]
    assert local["job"]["status"] == "done", local["job"]
    lf, lfacts = _view(local)
    rf, rfacts = _view(remote)
    assert len(lf) >= 4 and rf == lf                       # same findings, with their evidence lines
    assert len(lfacts) > 10 and rfacts == lfacts           # same counts, templates, time ranges
    # the job's analyzer tasks ran on both workers of the cluster (and nowhere before this job)
    after = _task_names(addr)
    ran = {w: after[w] - before.get(w, set()) for w in after}
    assert all("run_task_isolated" in names for names in ran.values()), ran
    # the job's work folder was made in the store's folder (the path the workers see) and removed
    shared = tmp_path / "home-cluster" / "blobs" / "work"
    assert shared.is_dir() and not list(shared.iterdir())
    assert not (tmp_path / "home-local" / "blobs" / "work").exists()


# --- the job runner in this process, against the same cluster: limits and failures

@pytest.fixture
def world(engine, tmp_path):
    from backline.cases.hub import Hub
    from backline.cases.model import CaseSeverity, Role
    from backline.cases.service import NewCase

    hub = Hub.build(engine, blob_root=tmp_path / "blobs")
    eng, _ = hub.users.add("erin", Role.ENGINEER)
    case = hub.cases.create(eng, NewCase("Crash", "p", "7.2", "acme", CaseSeverity.S2, {"symptoms": "x" * 20}))
    return hub, eng, case


def _job(hub, eng, case, data: bytes, name: str = "app.log"):
    hub.evidence.upload(eng, case.key, name, io.BytesIO(data))
    return hub.evidence.list(eng, case.key)[-1]


def _options(timeout_s):
    def make(work_dir, store):
        from backline.pipeline import AnalyzeOptions
        return AnalyzeOptions(work_dir=work_dir, store=store, isolate=True, timeout_s=timeout_s, memory_mb=2048)
    return make


def _error(hub, job_id: int) -> tuple[str, str]:
    from sqlalchemy import select

    from backline.storage import tables as T
    with hub.engine.connect() as c:
        row = c.execute(select(T.jobs).where(T.jobs.c.id == job_id)).mappings().one()
    return row["status"], row["error"] or ""


def _slow_log() -> bytes:
    """A log that takes an analyzer well over a tenth of a second (generated, 60,000 lines)."""
    import random
    rng = random.Random(5)
    lines = [f"2026-05-04 03:{i // 3600 % 60:02d}:{i // 60 % 60:02d},{i % 1000:03d} "
             f"{'ERROR' if rng.random() < 0.05 else 'INFO'} [w-{rng.randint(1, 9)}] a.B: item {rng.randint(1, 10**6)} "
             f"moved to shelf {rng.randint(1, 99)} after {rng.randint(1, 5000)} ms" for i in range(60_000)]
    return ("\n".join(lines) + "\n").encode()


def test_a_task_past_the_time_limit_is_stopped_on_its_worker_as_locally(cluster, world, tmp_path):
    from backline.cases.evidence import JobRunner

    addr, _procs = cluster
    hub, eng, case = world
    data = _slow_log()
    item = _job(hub, eng, case, data)
    runner = JobRunner(hub.cases, hub.store, options_factory=_options(0.1), scheduler=addr)
    t0 = time.monotonic()
    assert runner.run_pending() == 1
    assert time.monotonic() - t0 < 120
    status, error = _error(hub, item.job_id)
    found = [f for f in hub.evidence.findings(eng, case.key) if f["code"] == "ANALYZER.LIMIT_REACHED"]
    # the same as a local job: the run is recorded as stopped at the limit; the job stands
    assert status == "done" and len(found) == 1, (status, error, found)
    assert "time limit" in found[0]["title"] and found[0]["data"]["timeout_s"] == 0.1
    local = JobRunner(hub.cases, hub.store, options_factory=_options(0.1))
    item2 = _job(hub, eng, case, data, "again.log")
    assert local.run_pending() == 1 and _error(hub, item2.job_id)[0] == "done"
    found2 = [f for f in hub.evidence.findings(eng, case.key) if f["code"] == "ANALYZER.LIMIT_REACHED"]
    assert len(found2) == 2 and {f["title"].split(" stopped")[0] for f in found2} == {"logs.text"}


def test_an_unreachable_scheduler_fails_the_job_with_a_clear_error(world):
    from backline.cases.evidence import JobRunner

    hub, eng, case = world
    item = _job(hub, eng, case, b"2026-05-04 03:02:01,000 ERROR [main] a.B: disk full\n")
    address = f"tcp://127.0.0.1:{free_port()}"
    runner = JobRunner(hub.cases, hub.store, options_factory=_options(30), scheduler=address)
    t0 = time.monotonic()
    assert runner.run_pending() == 1
    assert time.monotonic() - t0 < 60
    status, error = _error(hub, item.job_id)
    assert status == "failed" and f"cannot reach the Dask scheduler at {address}" in error, error


def test_a_cluster_without_workers_fails_the_analysis_instead_of_waiting(tmp_path, monkeypatch):
    from backline.analyzers import cluster as C
    from backline.errors import ClusterError
    from backline.pipeline import AnalyzeOptions, analyze

    monkeypatch.setattr(C, "LOST_S", 3.0)
    (tmp_path / "a.log").write_text("2026-05-04 03:02:01,000 ERROR [main] a.B: disk full\n")
    with local_dask_cluster(tmp_path / "dask", workers=1) as (addr, procs):
        procs[1].kill()                                 # the only worker is lost before the job
        procs[1].wait(10)
        t0 = time.monotonic()
        with pytest.raises(ClusterError, match="has no workers"):
            analyze([tmp_path / "a.log"], AnalyzeOptions(jobs=1, isolate=True, timeout_s=30,
                                                         work_dir=tmp_path / "w", scheduler=addr))
        assert time.monotonic() - t0 < 60


def test_a_worker_lost_during_a_task_is_replaced_by_the_other(tmp_path):
    """The worker running a task is killed: Dask runs the task again on the other worker and
    the analysis ends with every run done (the report of a run without the loss)."""
    import threading

    from distributed import Client

    from backline.pipeline import AnalyzeOptions, analyze

    ev = tmp_path / "ev"
    ev.mkdir()
    for n in range(3):
        (ev / f"app{n}.log").write_bytes(_slow_log() * 2)
    opts = dict(jobs=1, isolate=True, timeout_s=120, memory_mb=2048)
    local = analyze([ev], AnalyzeOptions(work_dir=tmp_path / "w-local", **opts))
    with local_dask_cluster(tmp_path / "dask", workers=2) as (addr, procs):
        out: dict = {}
        th = threading.Thread(target=lambda: out.update(r=analyze([ev], AnalyzeOptions(
            work_dir=tmp_path / "w-cluster", scheduler=addr, **opts))))
        th.start()
        with Client(addr, set_as_default=False) as c:
            deadline = time.monotonic() + 60
            busy = []
            while not busy and time.monotonic() < deadline:
                busy = [w for w, keys in c.processing().items() if keys]
                time.sleep(0.1)
            assert busy, "no task started"
            pid = c.run(os.getpid)[busy[0]]
        victim = next(p for p in procs[1:] if p.pid == pid)
        victim.kill()
        th.join(300)
        assert not th.is_alive()
    remote = out["r"]
    assert all(r.status.value == "ok" for r in remote.runs), [(r.artifact, r.reason) for r in remote.runs]
    key = lambda f: (f.code, f.artifact, f.title, f.count, tuple(x.locator for x in f.evidence))  # noqa: E731
    assert sorted(map(key, remote.findings)) == sorted(map(key, local.findings))
    assert len(remote.events) == len(local.events) > 0
