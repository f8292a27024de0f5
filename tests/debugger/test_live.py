"""`backline dbg --pid` on real running programs: attach (gdb is the engine), read threads,
stacks, registers and variables, break, step, log with a logpoint, write a core, detach — and
the program keeps running."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from backline.debugger.live import attach
from backline.debugger.session import Session
from backline.debugger.target import open_target

C_PROGRAM = r"""
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
static volatile long counter;
__attribute__((noinline)) long work(long n) {
    long doubled = n * 2;
    counter += doubled;                 /* LOGPOINT LINE */
    return counter;
}
static void *spin(void *arg) { (void)arg; for (;;) { work(1); usleep(10000); } return NULL; }
int main(int argc, char **argv) {
    pthread_t t;
    pthread_create(&t, NULL, spin, NULL);
    for (long i = 0;; i++) {
        work(i);
        FILE *f = fopen(argv[1], "w"); if (f) { fprintf(f, "%ld\n", counter); fclose(f); }
        usleep(20000);
    }
}
"""

PY_PROGRAM = textwrap.dedent("""
    import sys, time
    def waiting_for_orders(n):
        time.sleep(n)
    def main_loop():
        while True:
            waiting_for_orders(0.05)
    print("ready", flush=True)
    main_loop()
""")


@pytest.fixture(scope="module")
def c_program(tmp_path_factory):
    if shutil.which("gdb") is None or shutil.which("gcc") is None:
        pytest.fail("gdb and gcc are needed (apt-get install gdb gcc)")
    d = tmp_path_factory.mktemp("live")
    src = d / "svc.c"
    src.write_text(C_PROGRAM)
    subprocess.run(["gcc", "-g", "-O0", "-pthread", "-o", str(d / "svc"), str(src)], check=True, timeout=120)
    line = next(i for i, t in enumerate(C_PROGRAM.splitlines(), 0) if "LOGPOINT LINE" in t)
    return d, line


def _start(cmd: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def _progress(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return -1


def test_attach_break_step_log_dump_detach(c_program):
    d, lp_line = c_program
    out = d / "counter.txt"
    proc = _start([str(d / "svc"), str(out)], d)
    try:
        deadline = time.monotonic() + 10
        while _progress(out) <= 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        log = d / "logpoints.log"
        t = attach(proc.pid, log_path=log)
        s = Session([t])
        s.extra.update(t.commands())
        try:
            threads = s.run("~").data["threads"]
            assert len(threads) == 2 and {th["tid"] for th in threads} >= {proc.pid}
            stacks = s.run("~*k").data["threads"]
            names = {f["function"] for th in stacks for f in th["frames"]}
            assert {"main", "spin"} <= names
            assert any(m["name"] == "svc" for m in s.run("lm").data["modules"])

            bp = s.run("bp work")
            assert bp.error is None, bp.error
            hit = s.run("g")
            assert hit.error is None and hit.data["reason"] == "breakpoint-hit", hit.text
            assert s.run("k").data["frames"][0]["function"] == "work"
            regs = s.run("r").data["registers"]
            assert regs["rip"] == int(bp.data["addr"], 16)
            assert "n" in {v["name"] for v in s.run("dv").data["variables"]}
            step = s.run("p")
            assert step.error is None, step.error
            assert s.run("?? n * 3").error is None
            assert s.run("bc *").error is None

            lp = s.run(f'lp svc.c:{lp_line} "n={{n}} doubled={{doubled:x}}"')
            assert lp.error is None, lp.error
            ran = s.run("g -t 1")
            assert ran.error is None and ran.data["interrupted"]
            core = d / "live.core"
            assert s.run(f".dump /ma {core}").error is None
            before = _progress(out)
            assert s.run(".detach").error is None
        finally:
            s.close()
        # the program runs on after the detach
        deadline = time.monotonic() + 10
        while _progress(out) <= before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None and _progress(out) > before

        lines = log.read_text().splitlines()
        assert len(lines) >= 10, lines[:3]
        pat = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z logpoint 1 svc\.c:\d+: n=\d+ doubled=0x[0-9a-f]+$")
        assert all(pat.match(x) for x in lines), lines[:3]
        # Backline's log reader takes the logpoint time stamps
        from backline.analyzers.logs.reader import open_log
        from backline.analyzers.logs.records import read_records
        recs = list(read_records(open_log(log)))
        assert recs and all(r.ts is not None for r in recs)

        dumped = Session([open_target(core, binaries=[d])])
        try:
            names = {f["function"] for th in dumped.run("~*k").data["threads"] for f in th["frames"]}
            assert {"main", "spin"} <= names
        finally:
            dumped.close()
    finally:
        proc.kill()
        proc.wait()


def test_python_process_shows_python_stacks(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(PY_PROGRAM)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        t = attach(proc.pid)
        s = Session([t])
        s.extra.update(t.commands())
        try:
            r = s.run("!pystack")
            assert r.error is None, r.error
            funcs = [f["name"] for th in r.data["threads"] for f in th["frames"]]
            assert "waiting_for_orders" in funcs and "main_loop" in funcs
            assert "waiting_for_orders" in r.text
        finally:
            s.close()
        time.sleep(0.2)
        assert proc.poll() is None, "the Python program must keep running after the session"
    finally:
        proc.kill()
        proc.wait()


def test_attach_to_a_missing_process_is_a_clear_error():
    from backline.errors import BacklineError
    with pytest.raises(BacklineError, match="no process with pid"):
        attach(2 ** 22 + 12345)
