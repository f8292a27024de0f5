"""``backline analyze --scheduler``: the analysis on a real Dask cluster (a scheduler and two
worker processes started here on 127.0.0.1) gives the report of a local run, and a large
log's byte ranges run as tasks of the cluster."""

from __future__ import annotations


import pytest

from backline.pipeline import AnalyzeOptions, analyze
from backline.testing import free_port, local_dask_cluster

from .test_ranges import make_log




@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    with local_dask_cluster(tmp_path_factory.mktemp("dask"), workers=2) as (addr, _procs):
        yield addr


def _view(result):
    findings = sorted((f.code, f.artifact, f.title, f.detail, f.count,
                       tuple(r.locator for r in f.evidence)) for f in result.findings)
    facts = sorted((x.artifact, x.name, repr(x.value)) for x in result.facts if x.name != "log.parquet")
    events = sorted((e.artifact, e.kind, e.ref.locator if e.ref else "", e.summary) for e in result.events)
    runs = sorted((r.analyzer, r.artifact, r.status.value, r.findings, r.events, r.facts) for r in result.runs)
    return findings, facts, events, runs


def _json(result, work, event_texts=None) -> str:
    """The JSON report of ``result`` without the times it ran and with its work folder as ``W``
    (written with the events' texts made ahead, when given)."""
    import json
    import re
    from datetime import datetime, timezone

    from backline.report import build_report, iter_json

    text = "".join(iter_json(build_report(result, now=lambda: datetime(2026, 1, 1, tzinfo=timezone.utc),
                                          event_texts=event_texts)))
    text = re.sub(r'"(duration_s|started_at|finished_at)": [^,\n]*', r'"\1": null', text.replace(str(work), "W"))
    json.loads(text)                                 # still one document
    return text


def test_the_cluster_gives_the_local_report(scheduler, tmp_path, monkeypatch):
    from distributed import Client

    ev = tmp_path / "evidence"
    ev.mkdir()
    make_log(ev / "server.log", n=6000)
    make_log(ev / "client.log", n=800, seed=3)
    (ev / "notes.log").write_text("2026-05-04 03:02:01,000 ERROR [main] a.B: disk full on /var\n" * 30)
    monkeypatch.setenv("BACKLINE_LOGS_SPLIT_MIN_BYTES", "200000")    # server.log (~0.6 MB) is split
    local = analyze([ev], AnalyzeOptions(work_dir=tmp_path / "w-local", jobs=1, keep_work_dir=True))
    remote = analyze([ev], AnalyzeOptions(work_dir=tmp_path / "w-cluster", jobs=1, keep_work_dir=True,
                                          scheduler=scheduler))
    assert all(r.status.value == "ok" for r in remote.runs), [r.reason for r in remote.runs]
    lv, rv = _view(local), _view(remote)
    assert lv[0] == rv[0] and len(lv[0]) > 5                  # findings and their evidence lines
    assert lv[1] == rv[1]                                     # facts: counts, templates, index
    assert lv[2] == rv[2] and lv[3] == rv[3]
    assert not any("one pass" in w for r in remote.runs for w in r.warnings)
    # the JSON report: the same bytes (the skew digests made on the workers), but for the times the
    # analysis ran and the work folder's name
    texts = [_json(r, tmp_path / w) for r, w in ((local, "w-local"), (remote, "w-cluster"))]
    assert texts[0] == texts[1] and '"events": [' in texts[0]
    # the records tables hold the same rows
    from backline.analyzers.logs.store import query

    def rows(result):
        p = next(x.value for x in result.facts if x.name == "log.parquet" and x.artifact.endswith("server.log"))
        return query([p], "SELECT line, template_id, template, message FROM records ORDER BY line")

    assert rows(local) == rows(remote)
    # the large log's byte ranges and the other logs ran as tasks on the two workers
    with Client(scheduler, set_as_default=False) as c:
        done = c.run(lambda dask_worker: sorted({str(k).split("-")[0] for k in dask_worker.state.log_keys()})
                     if hasattr(dask_worker.state, "log_keys") else
                     sorted({str(e[0]).split("-")[0] for e in dask_worker.state.log}))
    names = set().union(*map(set, done.values()))
    assert {"scan_range", "count_newlines", "run_task_isolated"} <= names, done
    assert all(done.values()), done


def test_results_that_arrive_in_another_order_make_the_same_report(scheduler, tmp_path, monkeypatch):
    """The client takes each task's result as it arrives (the events' JSON texts are made then):
    here the results are handed on in the reverse of the task order, and the report is still
    the local one, byte for byte."""
    from backline.analyzers import cluster
    from backline.report.json_report import EventTexts

    ev = tmp_path / "evidence"
    ev.mkdir()
    for n, name in enumerate(("a.log", "b.log", "c.log", "d.log")):
        make_log(ev / name, n=300 + 200 * n, seed=n)
    real_wait = cluster._wait_all

    def backwards(client, futures, address, hard_s, on_done):
        ended = []
        real_wait(client, futures, address, hard_s, lambda fut, i: ended.append((fut, i)))
        for fut, i in sorted(ended, key=lambda it: -it[1]):
            on_done(fut, i)

    local_texts, remote_texts, arrived = EventTexts(), EventTexts(), []
    local = analyze([ev], AnalyzeOptions(work_dir=tmp_path / "w-local", jobs=1, keep_work_dir=True),
                    on_result=lambda r: local_texts.add(r.events))
    monkeypatch.setattr(cluster, "_wait_all", backwards)

    def took(r):
        arrived.append(r.run.artifact.rsplit("/", 1)[-1])
        remote_texts.add(r.events)

    remote = analyze([ev], AnalyzeOptions(work_dir=tmp_path / "w-cluster", jobs=1, keep_work_dir=True,
                                          scheduler=scheduler), on_result=took)
    assert arrived == ["d.log", "c.log", "b.log", "a.log"]             # the reverse of the task order
    assert [r.artifact for r in remote.runs] == [r.artifact for r in local.runs]          # task order
    assert [r.artifact.rsplit("/", 1)[-1] for r in remote.runs] == sorted(arrived)
    assert len(remote_texts) == len(remote.events) > 1000               # every event's text made ahead
    plain = _json(local, tmp_path / "w-local")
    assert '"events": [' in plain
    assert _json(local, tmp_path / "w-local", local_texts) == plain
    assert _json(remote, tmp_path / "w-cluster", remote_texts) == plain
    assert _json(remote, tmp_path / "w-cluster") == plain


def test_the_command_on_the_cluster_writes_the_local_json_report(scheduler, tmp_path):
    """``backline analyze --scheduler --format json``: the events' texts made as the results
    arrive, the report file the same bytes as the local run's but for the times it ran."""
    import re

    from typer.testing import CliRunner

    from backline.cli import app

    ev = tmp_path / "evidence"
    ev.mkdir()
    for n, name in enumerate(("x.log", "y.log", "z.log")):
        make_log(ev / name, n=400 + 300 * n, seed=10 + n)
    texts = []
    for where, extra in (("local", []), ("cluster", ["--scheduler", scheduler])):
        res = CliRunner().invoke(app, ["analyze", str(ev), "-q", "--no-store", "--no-kb-pack", "--format", "json",
                                       "--jobs", "1", "--work-dir", str(tmp_path / f"w-{where}"),
                                       "--out", str(tmp_path / where), *extra])
        assert res.exit_code == 0, res.output
        text = (tmp_path / where / "report.json").read_text(encoding="utf-8")
        text = text.replace(str(tmp_path / f"w-{where}"), "W")
        texts.append(re.sub(r'"(duration_s|started_at|finished_at|generated_at)": [^,\n]*', r'"\1": -', text))
    assert texts[0] == texts[1] and texts[0].count('"kind": "log.') > 100


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path):
    from backline.errors import UsageError

    (tmp_path / "a.log").write_text("2026-05-04 03:02:01,000 INFO [main] a.B: hello\n")
    with pytest.raises(UsageError, match="cannot reach the Dask scheduler"):
        analyze([tmp_path / "a.log"], AnalyzeOptions(jobs=1, scheduler=f"tcp://127.0.0.1:{free_port()}"))


def test_the_connection_made_during_the_intake_is_closed_when_the_intake_fails(scheduler, tmp_path):
    import threading

    from backline.errors import NothingReadable

    (tmp_path / "empty.log").write_text("")
    with pytest.raises(NothingReadable):
        analyze([tmp_path / "empty.log"], AnalyzeOptions(jobs=1, scheduler=scheduler))
    assert not [t for t in threading.enumerate() if t.name == "backline-dask-connect"]
