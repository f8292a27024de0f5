"""Traces whose every line is a log record of its own (logcat, syslog-forwarded) are joined.

Oracles: real traces from the corpus (OpenJDK and CPython output, see dumps
SOURCES.md) written here one record per line the way syslog forwards them,
parsed on their own by the dumps area's parser for comparison; a logcat crash
excerpt in Android's own format (its trace lines as AndroidRuntime prints them);
loghub Android, whose exception lines carry no frames.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from backline.analyzers.base import AnalysisContext
from backline.analyzers.dumps.text import parse_text_crash_text
from backline.analyzers.dumps.text.analyzer import describe
from backline.analyzers.logs.reader import open_log
from backline.analyzers.logs.records import read_record_rows
from backline.analyzers.logs.text_analyzer import analyze_text_log
from backline.analyzers.logs.trace_join import TraceJoiner
from backline.model import Event, Fact, Finding

LOGCAT = """\
03-17 16:13:38.811  1702  2395 I ActivityManager: Start proc 4321:com.example.app/u0a77 for activity com.example.app/.Main
03-17 16:13:38.900  4321  4321 D AndroidRuntime: Shutting down VM
03-17 16:13:38.901  4321  4321 E AndroidRuntime: FATAL EXCEPTION: main
03-17 16:13:38.901  4321  4321 E AndroidRuntime: Process: com.example.app, PID: 4321
03-17 16:13:38.901  4321  4321 E AndroidRuntime: java.lang.RuntimeException: Unable to start activity ComponentInfo{com.example.app/com.example.app.Main}: java.lang.NullPointerException
03-17 16:13:38.901  4321  4321 E AndroidRuntime: \tat android.app.ActivityThread.performLaunchActivity(ActivityThread.java:2416)
03-17 16:13:38.902  1702  1720 W ActivityManager:   Force finishing activity com.example.app/.Main
03-17 16:13:38.901  4321  4321 E AndroidRuntime: \tat android.app.ActivityThread.handleLaunchActivity(ActivityThread.java:2476)
03-17 16:13:38.901  4321  4321 E AndroidRuntime: \tat android.os.Looper.loop(Looper.java:148)
03-17 16:13:38.901  4321  4321 E AndroidRuntime: Caused by: java.lang.NullPointerException: Attempt to invoke virtual method 'int java.lang.String.length()' on a null object reference
03-17 16:13:38.901  4321  4321 E AndroidRuntime: \tat com.example.app.Main.onCreate(Main.java:42)
03-17 16:13:38.901  4321  4321 E AndroidRuntime: \tat android.app.Activity.performCreate(Activity.java:6237)
03-17 16:13:38.901  4321  4321 E AndroidRuntime: \t... 9 more
03-17 16:13:38.950  1702  1720 I ActivityManager: Process com.example.app (pid 4321) has died
"""


def _crash(out):
    return [o for o in out if isinstance(o, Finding) and o.code.startswith("DUMP.")]


def _message_of(line: str) -> str:
    return line.split(": ", 1)[1]


def test_logcat_crash_is_one_trace(tmp_path):
    p = tmp_path / "crash.logcat"
    p.write_text(LOGCAT)
    lines = LOGCAT.splitlines()
    mine = [n for n, t in enumerate(lines, 1) if " 4321  4321 E AndroidRuntime" in t]
    out = list(analyze_text_log(p, "crash.logcat", AnalysisContext()))
    [f] = _crash(out)
    # the same reading as the trace without its log headers
    [alone] = parse_text_crash_text("\n".join(_message_of(lines[n - 1]) for n in mine))
    assert f.code == "DUMP.JAVA_EXCEPTION" and f.title == describe(alone) and f.detail == alone.signature
    assert f.data["causes"] == ["java.lang.NullPointerException"]
    exc_line = next(n for n in mine if "java.lang.RuntimeException" in lines[n - 1])
    assert [e.locator for e in f.evidence] == [f"line:{exc_line}"]
    [ev] = [o for o in out if isinstance(o, Event) and o.kind == "dump.exception"]
    assert ev.ref.locator == f"line:{exc_line}" and ev.ts is not None
    # the trace's frame lines (each an E record) are the crash finding's, not error templates
    tpl_lines = {int(e.locator[5:]) for o in out if isinstance(o, Finding) and o.code == "LOG.ERROR_TEMPLATE"
                 for e in o.evidence}
    assert tpl_lines and not any(_message_of(lines[n - 1]).lstrip().startswith(("at ", "..."))
                                 for n in tpl_lines)
    [fact] = [o for o in out if isinstance(o, Fact) and o.name == "log.stack_trace"]
    assert fact.value["kind"] == "java" and fact.value["joined"] and fact.value["line"] == mine[0]


def test_joined_lines_skip_other_sources(tmp_path):
    p = tmp_path / "crash.logcat"
    p.write_text(LOGCAT)
    rows = list(read_record_rows(open_log(p)))
    j = TraceJoiner()
    [t] = j.feed_rows(rows) + j.finish()
    want = [n for n, line in enumerate(LOGCAT.splitlines(), 1) if " 4321  4321 E AndroidRuntime" in line]
    assert t.lines == want and 7 not in t.lines       # line 7 is ActivityManager's, in between
    assert t.text.splitlines()[3] == "\tat android.app.ActivityThread.performLaunchActivity(ActivityThread.java:2416)"


@pytest.fixture()
def syslog(corpus, tmp_path):
    """Real Java and Python traces forwarded by syslog, one record per line (tab as #011),
    a kernel line in the middle of the Java one."""
    gen = corpus / "dumps" / "text" / "gen"
    java = (gen / "java_caused_by.txt").read_text(encoding="utf-8").strip("\n").split("\n")
    py = (gen / "py_traceback_explicit.txt").read_text(encoding="utf-8").strip("\n").split("\n")
    lines = [f"Jan  5 10:00:{i:02d} web01 cron[99]: (root) CMD (run-parts /etc/cron.hourly)" for i in range(5)]
    starts = {"java": len(lines) + 1}
    for k, line in enumerate(java):
        lines.append("Jan  5 10:00:10 web01 app[4242]: " + line.replace("\t", "#011"))
        if k == 2:
            lines.append("Jan  5 10:00:10 web01 kernel: [    1.000000] e1000e: eth0 NIC Link is Up")
    starts["python"] = len(lines) + 1
    lines += [f"Jan  5 10:00:20 web01 worker[77]: {line}" for line in py]
    lines.append("Jan  5 10:00:30 web01 systemd[1]: worker.service: Main process exited, status=1/FAILURE")
    p = tmp_path / "syslog"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p, starts, {"java": gen / "java_caused_by.txt", "python": gen / "py_traceback_explicit.txt"}


def test_syslog_forwarded_traces(syslog):
    p, starts, files = syslog
    out = list(analyze_text_log(p, "syslog", AnalysisContext()))
    found = {f.code: f for f in _crash(out)}
    assert set(found) == {"DUMP.JAVA_EXCEPTION", "DUMP.PYTHON_EXCEPTION"}
    for kind, code in (("java", "DUMP.JAVA_EXCEPTION"), ("python", "DUMP.PYTHON_EXCEPTION")):
        [alone] = parse_text_crash_text(files[kind].read_text(encoding="utf-8"))
        f = found[code]
        assert f.title == describe(alone) and f.detail == alone.signature
        assert f.data["causes"] == [c.type for c in alone.exception.causes]
        assert f.evidence[0].locator == f"line:{starts[kind]}"
    kinds = sorted(e.kind for e in out if isinstance(e, Event) and e.kind.startswith("dump."))
    assert kinds == ["dump.exception", "dump.exception"]


def test_android_exception_lines_without_frames_are_no_crash(corpus):
    """loghub Android logs exception lines (ClassCastException, AndroidRuntimeException)
    without frames: they are not traces."""
    p = corpus / "logs" / "loghub-2k" / "Android" / "Android_2k.log"
    assert "Exception: " in p.read_text(encoding="utf-8")
    rows = list(read_record_rows(open_log(p)))
    j = TraceJoiner()
    assert j.feed_rows(rows) + j.finish() == []
    assert _crash(analyze_text_log(p, "Android_2k.log", AnalysisContext())) == []


def test_a_head_without_frames_closes_when_its_source_goes_on(tmp_path):
    p = tmp_path / "a.logcat"
    p.write_text("03-17 16:13:38.901  4321  4321 W Foo: java.lang.IllegalStateException: x\n"
                 "03-17 16:13:38.902  4321  4321 W Foo: retrying\n"
                 "03-17 16:13:38.903  4321  4321 W Foo: \tat a.B.c(B.java:1)\n")
    j = TraceJoiner()
    assert j.feed_rows(list(read_record_rows(open_log(p)))) + j.finish() == []


def test_runaway_and_interleaved_groups_are_bounded(tmp_path, monkeypatch):
    """A trace that never ends is closed at MAX_LINES; at most MAX_OPEN sources are open at once."""
    from backline.analyzers.logs import trace_join
    monkeypatch.setattr(trace_join, "MAX_LINES", 10)
    monkeypatch.setattr(trace_join, "MAX_OPEN", 3)
    lines = ["03-17 16:13:38.901  9  9 E Run: java.lang.IllegalStateException: loop"]
    lines += [f"03-17 16:13:38.901  9  9 E Run: \tat a.B.m{i}(B.java:{i})" for i in range(25)]
    for pid in range(10, 16):                       # six sources with a trace each, interleaved
        lines.append(f"03-17 16:13:39.000  {pid}  {pid} E S: java.lang.RuntimeException: p{pid}")
    for pid in range(10, 16):
        lines.append(f"03-17 16:13:39.001  {pid}  {pid} E S: \tat a.C.run(C.java:{pid})")
    p = tmp_path / "a.logcat"
    p.write_text("\n".join(lines) + "\n")
    j = TraceJoiner()
    got = j.feed_rows(list(read_record_rows(open_log(p))))
    assert len(j.open) <= 3
    got += j.finish()
    first = got[0]
    assert first.lines == list(range(1, 11))        # closed at 10 lines; the rest has no head
    # the three sources still open when their frames came are joined; evicted ones had no frame
    assert sorted(t.text.split("\n")[0] for t in got[1:]) == [
        f"java.lang.RuntimeException: p{pid}" for pid in (13, 14, 15)]
