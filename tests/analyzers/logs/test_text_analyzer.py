"""The logs.text analyzer on a log whose anomalies are known because the test wrote them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from backline.analyzers.base import AnalysisContext
from backline.analyzers.logs.store import query
from backline.analyzers.logs.text_analyzer import LogsTextAnalyzer, analyze_text_log
from backline.analyzers.registry import analyzer_by_name
from backline.model import Artifact, ArtifactKind, Event, Fact, Finding, Severity

T0 = datetime(2024, 3, 1, 8, 0, 0, tzinfo=timezone.utc)


def _write_log(path: Path) -> dict[str, object]:
    """Heartbeats every 10 s; a burst; a 2-hour silence; a late new error; one rare critical line."""
    lines: list[str] = []
    marks: dict[str, object] = {}
    t = T0

    def emit(ts: datetime, level: str, comp: str, msg: str) -> int:
        lines.append(f"{ts:%Y-%m-%d %H:%M:%S},{ts.microsecond // 1000:03d} {level} [main] {comp}: {msg}")
        return len(lines)

    for i in range(1500):
        if i == 700:                                   # 2-hour silence
            marks["silence_before"] = len(lines)
            t += timedelta(hours=2)
            marks["silence_after"] = len(lines) + 1
        emit(t, "INFO", "svc.Heartbeat", f"heartbeat seq={i} latency={i % 17}ms")
        if i == 300:                                   # burst: 80 warnings in ~40 s
            for k in range(80):
                n = emit(t + timedelta(milliseconds=500 * k), "WARN", "db.Pool",
                         f"connection pool exhausted (active={50 + k % 3})")
                marks.setdefault("burst_first", n)
        if i % 400 == 0:                               # same warning, rarely, elsewhere
            emit(t, "WARN", "db.Pool", f"connection pool exhausted (active={i % 7})")
        if i == 500:
            marks["rare"] = emit(t, "FATAL", "kernel.Disk", "disk /dev/sda failing, remapping sector 12345")
        if i >= 1200 and i % 10 == 0:                  # new behaviour late in the file
            n = emit(t, "ERROR", "api.Client", f"upstream timeout after {3000 + i} ms")
            marks.setdefault("new_first", n)
        t += timedelta(seconds=10)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    marks["lines"] = len(lines)
    return marks


@pytest.fixture(scope="module")
def analyzed(tmp_path_factory):
    d = tmp_path_factory.mktemp("textlog")
    p = d / "service.log"
    marks = _write_log(p)
    ctx = AnalysisContext(work_dir=d / "work", max_events=50)
    (d / "work").mkdir()
    out = list(analyze_text_log(p, "bundle!/service.log", ctx))
    return marks, out, ctx


def _findings(out, code):
    return [o for o in out if isinstance(o, Finding) and o.code == code]


def _fact(out, name):
    return next(o.value for o in out if isinstance(o, Fact) and o.name == name)


def test_counts_and_facts(analyzed):
    marks, out, _ = analyzed
    assert _fact(out, "log.lines") == marks["lines"] == _fact(out, "log.records")
    assert _fact(out, "log.format") == "log4j"
    assert _fact(out, "log.encoding") == "utf-8"
    assert _fact(out, "log.templates") == 4
    assert _fact(out, "log.ts_backwards") == 1      # the burst runs past the next heartbeat
    tr = _fact(out, "log.time_range")
    assert tr["start"] == T0.isoformat()


def test_error_templates_ranked_with_first_occurrence(analyzed):
    marks, out, _ = analyzed
    errs = _findings(out, "LOG.ERROR_TEMPLATE")
    assert [f.data["template"] for f in errs] == ["upstream timeout after <*> ms",
                                                  "disk <*> failing, remapping sector <*>"]
    assert errs[0].count == 30 and errs[0].evidence[0].locator == f"line:{marks['new_first']}"
    assert errs[1].severity is Severity.CRITICAL


def test_first_error(analyzed):
    marks, out, _ = analyzed
    (f,) = _findings(out, "LOG.FIRST_ERROR")
    assert f.evidence[0].locator == f"line:{marks['rare']}"


def test_burst_found_with_start_and_end(analyzed):
    marks, out, _ = analyzed
    bursts = _findings(out, "LOG.BURST")
    assert bursts and bursts[0].data["template"] == "connection pool exhausted (active=<*>)"
    assert bursts[0].count >= 60
    assert bursts[0].first_seen <= bursts[0].last_seen
    assert all(f.data["template"] != "heartbeat seq=<*> latency=<*>ms" for f in bursts)


def test_silence(analyzed):
    marks, out, _ = analyzed
    (s,) = _findings(out, "LOG.SILENCE")
    assert [e.locator for e in s.evidence] == [f"line:{marks['silence_before']}", f"line:{marks['silence_after']}"]
    assert 7190 <= s.data["seconds"] <= 7210


def test_new_and_rare_templates(analyzed):
    marks, out, _ = analyzed
    new = _findings(out, "LOG.NEW_TEMPLATE")
    assert [f.data["template"] for f in new] == ["upstream timeout after <*> ms"]
    rare = _findings(out, "LOG.RARE_TEMPLATE")
    assert rare and rare[0].evidence[0].locator == f"line:{marks['rare']}"


def test_events_capped_with_dropped_count(analyzed):
    marks, out, _ = analyzed
    events = [o for o in out if isinstance(o, Event)]
    assert len(events) == 50
    warn_or_worse = 80 + 4 + 1 + 30
    assert _fact(out, "log.events_dropped") == warn_or_worse - 50
    assert all(e.severity >= Severity.MEDIUM and e.ref.locator.startswith("line:") for e in events)


def test_parquet_records_queryable(analyzed):
    marks, out, _ = analyzed
    pq = _fact(out, "log.parquet")
    names, rows = query([pq], "SELECT count(*), count(template_id), count(DISTINCT template_id), "
                              "min(ts), sum(CASE WHEN level = 'ERROR' THEN 1 ELSE 0 END) FROM records")
    n, with_tid, distinct, first, errors = rows[0]
    assert n == with_tid == marks["lines"] and distinct == 4 and errors == 30
    assert first.astimezone(timezone.utc) == T0
    names, rows = query([pq], "SELECT line FROM records WHERE component = 'kernel.Disk'")
    assert rows == [(marks["rare"],)]


def test_registered_and_runs_on_artifact(tmp_path):
    cls = analyzer_by_name("logs.text")
    assert cls is LogsTextAnalyzer
    p = tmp_path / "x.log"
    p.write_text("Jun 14 15:16:01 combo sshd[1]: authentication failure for root\n", encoding="utf-8")
    art = Artifact("x.log", ArtifactKind.TEXT_LOG, p.stat().st_size, "0" * 64, local_path=p)
    a = cls()
    assert a.applies_to(art)
    out = list(a.analyze(art, AnalysisContext()))
    assert any(isinstance(o, Finding) and o.code == "LOG.FIRST_ERROR" for o in out)


def test_stack_trace_fact(corpus, tmp_path):
    trace = (corpus / "dumps" / "text" / "gen" / "java_caused_by.txt").read_text(encoding="utf-8").strip("\n")
    p = tmp_path / "app.log"
    p.write_text("2024-01-02 03:04:05,000 INFO [main] app.Main: start\n"
                 "2024-01-02 03:04:06,000 ERROR [main] app.Main: failed\n" + trace + "\n", encoding="utf-8")
    out = list(analyze_text_log(p, "app.log", AnalysisContext()))
    (st,) = [o for o in out if isinstance(o, Fact) and o.name == "log.stack_trace"]
    assert st.value["line"] == 2 and st.value["kind"] == "java"
    assert "Caused by: java.lang.NumberFormatException" in st.value["text"]


def test_histograms_stay_bounded_over_long_spans():
    from backline.analyzers.logs.records import LogRecord
    from backline.analyzers.logs.stats import MAX_BUCKETS, LogStats
    from backline.model import TsQuality

    st = LogStats()
    for i in range(40_000):                         # one record per minute for 4 weeks
        ts = T0 + timedelta(minutes=i)
        st.add(LogRecord(i + 1, i + 1, ts, TsQuality.EXACT, "INFO", Severity.INFO, "", "", "", "", "m", "m"), 0)
    assert len(st.shapes[0].buckets) <= MAX_BUCKETS and st.bucket_s >= 300
    assert sum(st.shapes[0].buckets.values()) == 40_000


def test_utf16_windows_cbs_log(tmp_path):
    lines = [f"2016-09-28 04:30:{i:02d}, Info                  CBS    Loaded Servicing Stack v6.1.7601.{23505 + i} "
             f"with Core: C:\\Windows\\winsxs\\amd64_{i}\\cbscore.dll" for i in range(30)]
    lines.append("2016-09-28 04:31:00, Error                 CBS    Failed to resolve package [HRESULT = 0x800f0805]")
    p = tmp_path / "CBS.log"
    p.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-16"))       # BOM + UTF-16-LE, CRLF
    out = list(analyze_text_log(p, "CBS.log", AnalysisContext()))
    facts = {o.name: o.value for o in out if isinstance(o, Fact)}
    assert facts["log.encoding"] == "utf-16-le" and facts["log.format"] == "iso-comma-level"
    assert facts["log.records"] == 31 and facts["log.templates"] == 2
    (first,) = [o for o in out if isinstance(o, Finding) and o.code == "LOG.FIRST_ERROR"]
    assert first.evidence[0].locator == "line:31"


def test_logging_stops_after_an_error(corpus, tmp_path):
    trace = (corpus / "dumps" / "text" / "gen" / "py_traceback_explicit.txt").read_text(encoding="utf-8").strip("\n")
    lines = [f"2024-01-02 03:04:{i:02d},000 INFO [main] app.Worker: job {i} done" for i in range(20)]
    lines.append("2024-01-02 03:04:30,000 ERROR [main] app.Worker: unhandled error, shutting down")
    p = tmp_path / "app.log"
    p.write_text("\n".join(lines) + "\n" + trace + "\n", encoding="utf-8")
    out = list(analyze_text_log(p, "app.log", AnalysisContext()))
    stops = [o for o in out if isinstance(o, Finding) and o.code == "LOG.SILENCE" and o.data["kind"] == "stops"]
    assert len(stops) == 1 and stops[0].evidence[0].locator == "line:21"
    # a file that goes on after its errors does not get it
    p.write_text("\n".join(lines) + "\n" + "\n".join(
        f"2024-01-02 03:05:{i:02d},000 INFO [main] app.Worker: job {i} done" for i in range(10)) + "\n",
        encoding="utf-8")
    out = list(analyze_text_log(p, "app.log", AnalysisContext()))
    assert not [o for o in out if isinstance(o, Finding) and o.code == "LOG.SILENCE"]
