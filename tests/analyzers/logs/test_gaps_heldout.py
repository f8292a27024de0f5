"""Analyzer gaps found on unseen incident drills, each tested on small inputs written here
(never the drills' files), with near-misses: a runtime's last words without a time stamp
or level, supervisor death wording, glog layout and repeated traces, multi-line exception
messages, a Python trace forwarded one record per line, nginx connection numbers, and a log
that ends when the bundle was collected."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from backline.analyzers.base import AnalysisContext
from backline.analyzers.dumps.text import parse_text_crash_text
from backline.analyzers.logs import deaths
from backline.analyzers.logs.anomalies import stops_at_collection
from backline.analyzers.logs.masking import mask
from backline.analyzers.logs.records import message_severity
from backline.analyzers.logs.text_analyzer import analyze_text_log
from backline.model import Finding, Severity


def _findings(tmp_path: Path, name: str, text: str) -> list[Finding]:
    p = tmp_path / name
    p.write_text(text)
    return [o for o in analyze_text_log(p, name, AnalysisContext()) if isinstance(o, Finding)]


# 1. last words of a runtime, in a log with no stamps or between stamped lines

def test_runtime_last_words_are_process_exits_each_its_own_group(tmp_path):
    text = "\n".join([
        "2026-12-07 10:00:00,000 INFO worker started",
        "Terminating due to java.lang.OutOfMemoryError: Java heap space",
        "2026-12-07 10:00:01,000 INFO worker started",
        "terminate called after throwing an instance of 'std::out_of_range'",
        "  what():  vector::_M_range_check: __n (which is 7) >= this->size() (which is 3)",
        "2026-12-07 10:00:02,000 INFO worker started",
        "free(): invalid size",
        "2026-12-07 10:00:03,000 INFO worker started",
        "double free or corruption (out)",
        "2026-12-07 10:00:04,000 INFO worker started",
        "*** stack smashing detected ***: terminated",
        "Segmentation fault (core dumped)",
        "2026-12-07 10:00:05,000 INFO worker started",
    ]) + "\n"
    exits = [f for f in _findings(tmp_path, "run.log", text) if f.code == "LOG.PROCESS_EXIT"]
    said = sorted(f.data["said"] for f in exits)
    assert len(exits) == 6, [f.title for f in exits]
    assert any("OutOfMemoryError" in s for s in said)
    assert any(s.startswith("terminate called") for s in said)
    assert "free(): invalid size" in said and "double free or corruption (out)" in said


def test_last_words_near_misses_are_not_deaths():
    for line in ("we free(): invalid entries later",            # words mid-sentence
                 "the terminate called handler was installed",
                 "Terminating due to maintenance window",        # no throwable named
                 "cache entry freed: invalid size guard ok",
                 "double free or corruption is checked by glibc"):
        assert deaths.death(line) is None, line


def test_a_bare_throwable_line_without_level_is_an_error_and_near_misses_are_not():
    assert message_severity("java.lang.OutOfMemoryError: Java heap space") == Severity.HIGH
    assert message_severity("KeyError: 'port'") == Severity.HIGH
    assert message_severity("ErrorHandler registered for /api") == Severity.INFO
    assert message_severity("NoErrors reported by the checker") == Severity.INFO


def test_syslog_short_level_names_in_a_message_are_levels_only_as_written_as_one(tmp_path):
    # a journal export: the program's own level is inside the message ("crit:", "<err>"), never a
    # key of a key=value pair ("err=<nil>")
    lines = []
    for k in range(40):
        lines.append(f"Dec 07 14:{k:02d}:00 rates01 ratecard[1412]: ratecard(1412) info: served {k} lookups "
                     f"err=<nil>")
    for k in range(5):
        lines.append(f"Dec 07 15:00:0{k} rates01 ratecard[{3974 + k}]: ratecard({3974 + k}) crit: cannot open "
                     f"rate table /srv/rates.tsv: Permission denied (errno 13)")
    found = _findings(tmp_path, "journal-ratecard.txt", "\n".join(lines) + "\n")
    errors = [f for f in found if f.code == "LOG.ERROR_TEMPLATE"]
    assert any("Permission denied" in f.title for f in errors), [f.title for f in found]
    assert not any("served" in f.title for f in found)
    assert message_severity("ratecard(3974) crit: cannot open") == Severity.CRITICAL
    assert message_severity("<err> shipd (pid 7) terminated") == Severity.HIGH
    assert message_severity("request done err=<nil> stderr: none") == Severity.INFO


# 2. supervisor wording

def test_supervisor_death_wordings():
    d = deaths.death("2026-12-07 10:00:01 procmon: thumbd pid 4242 died: signal 11")
    assert d == {"reason": "signal", "process": ["thumbd"], "pid": "4242", "signal": "11"}
    d = deaths.death("mgr: renderd (pid 77) terminated by signal SIGSEGV")
    assert (d["process"], d["signal"]) == (["renderd"], "SEGV")
    d = deaths.death("master: child 4242 exited with code 3")
    assert (d["pid"], d["status"]) == ("4242", 3)
    d = deaths.death("2026-12-07_18:17:11.995 relayd: exited with code 3, restarting in 1s")
    assert (d["process"], d["status"]) == (["relayd"], 3)
    # requested or clean ends
    assert deaths.death("procmon: thumbd pid 4242 died: signal 15") is None
    assert deaths.death("master: child 4242 exited with code 0") is None


# 3. glog layout, repeated identical traces

def _glog(n: int) -> str:
    out = []
    for k in range(n):
        out += [f"I1207 17:25:{k:02d}.100000 12345 server.py:10] handling request {k}",
                f"E1207 17:25:{k:02d}.379799 12345 server.py:42] request {k} failed",
                "Traceback (most recent call last):",
                '  File "/srv/app/server.py", line 40, in handle',
                "    do(x)",
                "ValueError: bad input",
                f"W1207 17:25:{k:02d}.500000 12345 server.py:50] retry budget low"]
    return "\n".join(out) + "\n"


def test_glog_lines_are_read_with_level_and_date_and_traces_grouped(tmp_path):
    found = _findings(tmp_path, "server.log", _glog(20))
    exc = [f for f in found if f.code == "DUMP.PYTHON_EXCEPTION"]
    assert len(exc) == 1 and exc[0].count == 20
    errs = [f for f in found if f.code == "LOG.ERROR_TEMPLATE"]
    assert len(errs) == 1 and errs[0].count == 20 and "failed" in errs[0].title
    assert errs[0].first_seen.month == 12 and errs[0].first_seen.day == 7
    # the W and I lines are not errors
    assert not any("retry budget" in f.title or "handling" in f.title for f in errs)


def test_repeated_traces_in_a_plain_stderr_file_are_one_finding(tmp_path):
    from backline.analyzers.dumps.text.analyzer import TextCrashAnalyzer
    from backline.model import Artifact, ArtifactKind

    tb = ("Traceback (most recent call last):\n  File \"/srv/w.py\", line 3, in run\n    go()\n"
          "KeyError: 'job'\n")
    other = ("Traceback (most recent call last):\n  File \"/srv/w.py\", line 9, in stop\n    end()\n"
             "OSError: [Errno 5] Input/output error\n")
    p = tmp_path / "worker.stderr"
    p.write_text(tb * 12 + other)
    art = Artifact(path="worker.stderr", kind=ArtifactKind.CRASH_TRACE, size=p.stat().st_size, sha256="0" * 64,
                   local_path=p)
    out = [o for o in TextCrashAnalyzer().analyze(art, AnalysisContext()) if isinstance(o, Finding)]
    assert sorted((f.count, f.title) for f in out) == [(1, "OSError: [Errno 5] Input/output error"),
                                                       (12, "KeyError: 'job'")]


# 4. multi-line exception messages

def test_exception_message_continuation_lines_are_kept_and_bounded():
    text = ("Traceback (most recent call last):\n  File \"/srv/cfg.py\", line 8, in load\n    yaml.safe_load(f)\n"
            "yaml.scanner.ScannerError: while scanning for the next token\n"
            "found character '\\t' that cannot start any token\n"
            "  in \"settings.yaml\", line 3, column 1\n"
            "\n"
            "worker stopped\n")
    rep, = parse_text_crash_text(text)
    assert rep.exception.message.splitlines()[:2] == ["while scanning for the next token",
                                                      "found character '\\t' that cannot start any token"]
    assert "worker stopped" not in rep.exception.message           # a blank line ends it
    long = "Traceback (most recent call last):\n  File \"a.py\", line 1, in f\n    g()\nValueError: x\n" + \
        "".join(f"more text {i}\n" for i in range(50))
    rep, = parse_text_crash_text(long)
    assert len(rep.exception.message.splitlines()) <= 7
    # a line that starts a new stamped record is not part of the message
    stamped = ("Traceback (most recent call last):\n  File \"a.py\", line 1, in f\n    g()\nValueError: x\n"
               "2026-12-07 10:00:00 INFO next record\n")
    rep, = parse_text_crash_text(stamped)
    assert rep.exception.message == "x"


# 5. a trace forwarded one syslog record per line

def test_syslog_trace_head_line_is_not_an_error_template_or_burst(tmp_path):
    lines = []
    t0 = datetime(2026, 12, 7, 10, 0, 0)
    for k in range(40):
        ts = (t0 + timedelta(seconds=30 * k)).strftime("%b %d %H:%M:%S").replace(" 0", "  ", 1) \
            if False else (t0 + timedelta(seconds=30 * k)).strftime("%b %d %H:%M:%S")
        pid = 2000 + k
        lines += [f"{ts} host1 jobd[{pid}]: starting job {k}",
                  f"{ts} host1 jobd[{pid}]: Traceback (most recent call last):",
                  f"{ts} host1 jobd[{pid}]:   File \"/srv/jobd.py\", line 12, in main",
                  f"{ts} host1 jobd[{pid}]:     run()",
                  f"{ts} host1 jobd[{pid}]: RuntimeError: queue {k} unavailable"]
    found = _findings(tmp_path, "syslog", "\n".join(lines) + "\n")
    titles = [f.title for f in found if f.code in ("LOG.ERROR_TEMPLATE", "LOG.BURST")]
    assert not any("Traceback" in t for t in titles), titles
    assert any(f.code == "DUMP.PYTHON_EXCEPTION" for f in found)


# 6. nginx connection numbers

def test_connection_numbers_are_masked_and_near_misses_kept():
    assert mask("12#12: *42 upstream timed out (110: Connection timed out)") == \
        mask("12#12: *4711 upstream timed out (110: Connection timed out)")
    assert mask("a*42 b") == "a*42 b"                    # not a word of its own
    assert mask("**bold** *x*") == "**bold** *x*"


# 7. the log ends when the bundle was collected

def test_logging_stops_is_dropped_only_when_the_bundle_ends_there_too():
    t = datetime(2026, 12, 7, 10, 0, 0, tzinfo=timezone.utc)
    f = Finding(code="LOG.SILENCE", title="logging stops after an error: x", severity=Severity.HIGH,
                artifact="a.log", last_seen=t, data={"kind": "stops"})
    gap = Finding(code="LOG.SILENCE", title="no records for 2 h", severity=Severity.MEDIUM,
                  artifact="a.log", last_seen=t, data={"kind": "gap"})
    assert stops_at_collection([f, gap], t + timedelta(seconds=10)) == [gap]
    assert stops_at_collection([f, gap], t + timedelta(minutes=10)) == [f, gap]   # others went on
    assert stops_at_collection([f], None) == [f]


# 8. a gcore of a thread waiting for a file lock

def test_thread_in_a_file_lock_call_is_blocked_and_near_misses_are_not():
    from backline.analyzers.dumps.analysis import _wait_kind
    from backline.analyzers.dumps.elfcore.analysis import _with_waits
    from backline.analyzers.dumps.elfcore.reader import EM_X86_64
    from backline.analyzers.dumps.model import CrashThread, StackFrame

    class Core:                                   # no futex syscall in these threads: memory never read
        machine = EM_X86_64

        def read_u32(self, addr):
            return None

    def th(tid, *names):
        return CrashThread(id=tid, frames=tuple(StackFrame(i, "cfi", function=n) for i, n in enumerate(names)),
                           registers={"orig_rax": 73})
    assert _wait_kind("flock") == "file_lock" and _wait_kind("__fcntl64_nocancel_adjusted") == "file_lock"
    assert _wait_kind("flockfile") is None                     # stdio's stream lock: another thing
    out = {t.id: t.wait for t in _with_waits(Core(), [th(1, "flock", "main"), th(2, "read", "main"),
                                                       th(3, "compute", "flockfile_user", "main")])}
    assert out[1] is not None and out[1].kind == "file_lock" and out[1].function == "flock"
    assert out[2] is None and out[3] is None


def test_syslog_trace_keeps_the_message_lines_written_with_it_not_later_records(tmp_path):
    def rec(sec, msg):
        return f"2026-12-07T10:00:{sec:02d}+0000 host1 cfgd[77]: {msg}"
    lines = [rec(1, "starting"),
             rec(2, "Traceback (most recent call last):"),
             rec(2, '  File "/srv/cfgd.py", line 5, in load'),
             rec(2, "    parse(text)"),
             rec(2, "yaml.scanner.ScannerError: while scanning for the next token"),
             rec(2, "found character '\\t' that cannot start any token"),
             rec(2, '  in "cfg.yaml", line 9, column 1'),
             rec(3, "retrying in 1 s"),                      # a later record: not the message
             rec(4, "starting")]
    found = _findings(tmp_path, "journal.txt", "\n".join(lines) + "\n")
    exc = [f for f in found if f.code == "DUMP.PYTHON_EXCEPTION"]
    assert len(exc) == 1, [f.title for f in found]
    assert "found character" in exc[0].title and "cfg.yaml" in exc[0].title
    assert "retrying" not in exc[0].title
