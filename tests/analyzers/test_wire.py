"""A task's result crosses processes (task process -> runner, Dask worker -> client) with its
events packed in columns (:mod:`backline.analyzers.wire`): it must come back equal."""

from __future__ import annotations

import pickle
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from backline.analyzers.runner import RunSettings, TaskResult, run_task
from backline.analyzers.wire import pack_events
from backline.evidence import collect
from backline.model import AnalyzerRun, Event, EvidenceRef, Fact, RunStatus, Severity
from backline.model.core import TsQuality

from .logs.test_ranges import make_log


def test_a_real_result_comes_back_equal_and_smaller(tmp_path):
    from backline.analyzers.logs.text_analyzer import LogsTextAnalyzer

    make_log(tmp_path / "server.log", n=4000)
    art = collect([tmp_path / "server.log"], tmp_path / "ev").artifacts[0]
    res = run_task(LogsTextAnalyzer, art, RunSettings(work_dir=str(tmp_path / "runs")))
    assert len(res.events) > 100
    back = pickle.loads(pickle.dumps(res, protocol=pickle.HIGHEST_PROTOCOL))
    assert back.run == res.run and back.events == res.events and back.findings == res.findings
    assert back.facts == res.facts
    assert [type(e.ts.tzinfo) for e in back.events if e.ts] == [type(e.ts.tzinfo) for e in res.events if e.ts]
    plain = pickle.dumps((res.run, list(res.events), res.findings, res.facts), protocol=pickle.HIGHEST_PROTOCOL)
    assert len(pickle.dumps(res, protocol=pickle.HIGHEST_PROTOCOL)) < len(plain)


class Marked(Event):
    __slots__ = ()


def test_unusual_events_are_kept_as_they_are():
    utc = timezone.utc
    odd = [
        Event(datetime(2026, 3, 29, 2, 30, tzinfo=ZoneInfo("Europe/Berlin")), "a.log", "log.x", "local time"),
        Event(datetime(2026, 1, 1, 0, 0, 0, 1), "a.log", "log.x", "naive", Severity.LOW,
              EvidenceRef("a.log", "line:1"), TsQuality.INFERRED_YEAR, "x"),
        Event(datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=utc), "b.log", "log.y", "before 1970",
              Severity.CRITICAL, None, TsQuality.INFERRED),
        Event(datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2))), "b.log", "log.y", "+02:00"),
        Event(None, "b.log", "log.y", "no time", ts_quality=TsQuality.NONE),
    ]
    res = TaskResult(AnalyzerRun("x", "1", "a.log", RunStatus.OK), odd, [], [Fact("n", 1, "a.log")])
    back = pickle.loads(pickle.dumps(res))
    assert back.events == odd
    assert [e.ts.utcoffset() if e.ts else None for e in back.events] == \
        [e.ts.utcoffset() if e.ts else None for e in odd]
    # a subclass of Event: the list is pickled as it is
    sub = [Marked(None, "a", "k", "s")]
    assert pack_events(sub) == sub
    assert type(pickle.loads(pickle.dumps(TaskResult(res.run, sub))).events[0]) is Marked
