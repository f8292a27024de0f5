"""LOG.PROCESS_EXIT: a process ending abnormally, told at any level (supervisor, kernel, init
system, container runtime, C library), read record by record; clean and requested ends are not
deaths.  The lines are the wording those programs write (the drills' generators print them for
real: scripts/drills/oom_tiler.py, config_exit.py, abort_timeouts.py, container_exit.py)."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

from backline.analyzers.base import AnalysisContext
from backline.analyzers.logs import deaths
from backline.analyzers.logs.text_analyzer import analyze_text_log
from backline.model import Event, Finding, Severity


def _exits(tmp_path: Path, name: str, text: str) -> list[Finding]:
    p = tmp_path / name
    p.write_text(text)
    return [o for o in analyze_text_log(p, name, AnalysisContext())
            if isinstance(o, Finding) and o.code == "LOG.PROCESS_EXIT"]


def test_doctests():
    assert doctest.testmod(deaths).failed == 0


def test_supervisor_lines_at_info_level_say_the_process_died_and_clean_ends_do_not(tmp_path):
    lines = []
    for h in range(6):                              # an hourly job that ends cleanly: never a death
        lines.append(f"2026-12-07 0{h}:00:00,100 INFO spawned: 'report-export' with pid {3000 + h}")
        lines.append(f"2026-12-07 0{h}:00:30,100 INFO exited: report-export (exit status 0; expected)")
    lines.append("2026-12-07 14:53:24,979 INFO stopped: invoicer (terminated by SIGTERM)")
    for i, t in enumerate(("25,291", "25,952", "27,023", "28,442")):
        lines.append(f"2026-12-07 14:53:{t} INFO spawned: 'invoicer' with pid {1800 + i}")
        lines.append(f"2026-12-07 14:53:{t} INFO exited: invoicer (exit status 1; not expected)")
    lines.append("2026-12-07 14:53:28,442 INFO gave up: invoicer entered FATAL state, too many start retries too quickly")
    found = _exits(tmp_path, "procsup.log", "\n".join(lines) + "\n")
    exited = [f for f in found if f.data["reason"] == "exit-status"]
    assert len(exited) == 1 and exited[0].count == 4 and exited[0].data["process"] == ["invoicer"]
    assert exited[0].data["status"] == 1 and exited[0].first_seen.second == 25 and exited[0].last_seen.second == 28
    assert {f.data["reason"] for f in found} == {"exit-status", "gave-up"}
    assert all("report-export" not in f.title for f in found)
    p = tmp_path / "procsup.log"
    events = [o for o in analyze_text_log(p, "procsup.log", AnalysisContext())
              if isinstance(o, Event) and o.kind == "log.process_exit"]
    assert len(events) == 5 and all(e.severity == Severity.HIGH and e.ts is not None for e in events)


def test_a_kernel_oom_kill_and_a_json_exit_code_are_deaths(tmp_path):
    kern = ("Dec  7 14:52:23 tiles01 kernel: oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,"
            "mems_allowed=0,oom_memcg=/x,task_memcg=/x,task=tilerd,pid=15632,uid=0\n"
            "Dec  7 14:52:23 tiles01 kernel: Memory cgroup out of memory: Killed process 15632 (tilerd) "
            "total-vm:70784kB, anon-rss:65280kB\n")
    (oom,) = _exits(tmp_path, "kern.log", kern)
    assert oom.data["reason"] == "oom-kill" and oom.data["process"] == ["tilerd"] and oom.count == 2
    # one event template for a sidecar's clean exits and the service's failures: read per record
    events = [{"time": f"2026-12-07T0{h}:00:00Z", "level": "info", "msg": "task exit", "container": "sync",
               "exitCode": 0} for h in range(5)]
    events += [{"time": "2026-12-07T15:10:13Z", "level": "info", "msg": "task stopped for update",
                "container": "quotes", "exitCode": -15}]
    events += [{"time": f"2026-12-07T15:10:1{s}Z", "level": "info", "msg": "task exit", "container": "quotes",
                "pid": 2600 + s, "exitCode": 2} for s in (4, 5, 7)]
    (ex,) = _exits(tmp_path, "events.jsonl", "".join(json.dumps(e) + "\n" for e in events))
    assert ex.data["process"] == ["quotes"] and ex.data["status"] == 2 and ex.count == 3


def test_signals_crash_messages_and_requested_stops(tmp_path):
    text = ("Dec 07 14:54:56 geo01 geoindexd[21364]: *** stack smashing detected ***: terminated\n"
            "Dec 07 14:54:56 geo01 unitd[21362]: geoindexd.service: Main process exited, code=killed, status=6/ABRT\n"
            "Dec 07 14:55:08 geo01 unitd[21362]: geoindexd.service: Deactivated successfully.\n"
            "Dec 07 14:55:09 geo01 procmgr[88]: down: tilerd[15817] terminated by signal 15\n")
    found = _exits(tmp_path, "journal.txt", text)
    assert [(f.data["reason"], f.data["process"]) for f in found] == [
        ("crash-message", ["geoindexd"]), ("signal", ["geoindexd"])]
    assert found[1].data["signal"] == "ABRT"


def test_the_program_named_before_exited_is_the_one_that_died_and_its_own_exit_announcement_counts():
    assert deaths.death("2026-12-07T17:30:44Z svrun: relayd exited with status 78, restarting in 1 s") == {
        "reason": "exit-status", "process": ["relayd"], "status": 78}
    assert deaths.death("2026-12-07 17:30:44,093 ERROR relayd exiting with status 78")["process"] == ["relayd"]
    # words that stand before "exited" without naming a program name nothing; clean ends stay clean
    assert "process" not in deaths.death("ERROR worker exited with code 3")
    assert "process" not in deaths.death("WARN it exited with status 2")
    assert deaths.death("svrun: relayd exited with status 143, restarting in 0 s") is None
    assert deaths.death("INFO relayd exiting with status 0") is None


def test_a_writer_telling_another_programs_end_names_that_program_not_itself():
    # a shell supervisor's line: the prefix names the writer, the death words their own subject
    d = deaths.death("2026-12-07T18:15:00Z watchdog[21966]: relayd exited with status 1")
    assert d == {"reason": "exit-status", "process": ["relayd"], "status": 1}
    # near misses: the writer's own end, and a subject that names no program, keep the writer and its pid
    assert deaths.death("procmgr[88]: down: tilerd[15632] terminated by signal 9")["process"] == ["tilerd"]
    d = deaths.death("watchdog[21966]: worker exited with status 1")
    assert d["process"] == ["watchdog"] and d["pid"] == "21966"
    assert deaths.death("watchdog[21966]: exited with status 3")["process"] == ["watchdog"]


def test_a_supervisor_naming_a_childs_pid_tells_the_childs_death_not_its_own():
    """``svscan[6269]: notifyd pid 7080 exited with code 1``: the line's prefix names its writer, the
    program named (with its pid) right before the death words is the one that died."""
    d = deaths.death("Dec  7 20:23:11 mesa-ntf-01 svscan[6269]: notifyd pid 7080 exited with code 1")
    assert d["process"] == ["notifyd"] and d["pid"] == "7080" and d["status"] == 1
    d = deaths.death("2026-12-07T10:00:00Z runsv[88]: worker (pid 4121) terminated by signal 9")
    assert d["pid"] == "4121" and "runsv" not in d.get("process", [])     # "worker" names no program
    d = deaths.death("2026-12-07 21:40:02 runit[88]: imgproc: pid 6105 terminated by signal 11")
    assert d["process"] == ["imgproc"] and d["pid"] == "6105"
    own = deaths.death("Dec  7 20:23:11 host relayd[311]: exiting with status 2")
    assert own["process"] == ["relayd"] and own["pid"] == "311"
