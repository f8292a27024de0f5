"""Build the corpus's Linux crash programs, make cores, and ask gdb for their backtraces.

Fixtures for every test folder that needs real cores (ELF core reader, debugger); imported by
``tests/conftest.py``.

Cores are made once per test session: a kernel core when ``core_pattern`` is a
plain file name, otherwise gdb's ``generate-core-file`` at the fatal signal;
the deadlock is gcore'd while it hangs.  gdb is only the oracle here.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CFLAGS = ["-g", "-O0", "-fno-omit-frame-pointer"]
PROGRAMS = ("null_deref", "abort_assert", "stack_overflow", "deadlock")

#: Programs written for these tests (not corpus files): C++ names, a crash inside a signal handler.
OWN_PROGRAMS = {
    "cpp_crash.cpp": """
#include <cstdio>
#include <vector>
namespace shop {
struct Order { int id; std::vector<int> items; };
class Basket {
 public:
  __attribute__((noinline)) int total(const Order* o) const { return o->items[0] + o->id; }
};
namespace {
__attribute__((noinline)) int checkout(const Basket& b, const Order* o) { return b.total(o) * 2; }
}
template <typename T> __attribute__((noinline)) T run(const Basket& b, const Order* o) {
  return checkout(b, o);
}
}  // namespace shop
int main() { shop::Basket b; std::puts("cpp_crash"); return shop::run<int>(b, nullptr); }
""",
    "handler.c": """
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
static void on_fault(int sig) { (void)sig; abort(); }
__attribute__((noinline)) static void poke(int *p) { *p = 7; }
__attribute__((noinline)) static void work(void) { poke(NULL); }
int main(void) { signal(SIGSEGV, on_fault); puts("handler"); work(); return 0; }
""",
}


@dataclass
class GdbThread:
    lwp: int
    functions: list[str] = field(default_factory=list)
    frames: int = 0


@dataclass
class Built:
    exe: Path
    core: Path
    how: str
    gdb_threads: dict[int, GdbThread]
    gdb_signal: int | None
    gdb_text: str


GDB_THREAD = re.compile(r"^Thread \d+ \((?:Thread 0x[0-9a-f]+ )?\(?LWP (\d+)\)?\)?.*:$")
GDB_FRAME = re.compile(r"^#(\d+)\s+(?:0x[0-9a-f]+ in )?(<signal handler called>$|.+?(?= \())")
GDB_SIGNAL = re.compile(r"^Program terminated with signal (SIG\w+)")


def parse_gdb_bt(text: str) -> tuple[dict[int, GdbThread], int | None]:
    threads: dict[int, GdbThread] = {}
    cur = None
    sig = None
    for line in text.splitlines():
        m = GDB_THREAD.match(line)
        if m:
            cur = threads.setdefault(int(m[1]), GdbThread(int(m[1])))
            continue
        m = GDB_SIGNAL.match(line)
        if m:
            sig = getattr(signal, m[1]).value
        m = GDB_FRAME.match(line)
        if m and cur is not None:
            cur.frames += 1
            if len(cur.functions) < 64:
                cur.functions.append(m[2])
    return threads, sig


def _plain_core_pattern() -> bool:
    try:
        pat = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    except OSError:
        return False
    return bool(pat) and not pat.startswith("|") and "/" not in pat and "%" not in pat


def _unlimited_core():
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def _crash(exe: Path, out: Path, gdb_pass: tuple[str, ...] = ()) -> tuple[Path, str]:
    core = out / f"{exe.name}.core"
    # BACKLINE_TEST_CORES=gdb forces gdb's cores (what CI gets when core_pattern pipes elsewhere)
    if os.environ.get("BACKLINE_TEST_CORES") != "gdb" and _plain_core_pattern():
        work = out / f"run-{exe.name}"
        work.mkdir()
        subprocess.run([str(exe)], cwd=work, preexec_fn=_unlimited_core, capture_output=True, timeout=60)
        cands = sorted(work.glob("core*"), key=lambda p: p.stat().st_mtime)
        if cands:
            cands[-1].rename(core)
            return core, "kernel"
    handle = [a for sig in gdb_pass for a in ("-ex", f"handle {sig} nostop noprint pass")]
    subprocess.run(["gdb", "-q", "-batch", *handle, "-ex", "run", "-ex", f"generate-core-file {core}", str(exe)],
                   cwd=out, capture_output=True, timeout=300)
    return core, "gdb-generate-core-file"


def _wait_all_in_futex(pid: int, threads: int, timeout: float = 20.0) -> None:
    """Until ``threads`` threads of ``pid`` sit in the futex system call (x86-64: 202)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            calls = [Path(f"/proc/{pid}/task/{t}/syscall").read_text().split()[:1]
                     for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            calls = []
        if sum(c == ["202"] for c in calls) >= threads:
            return
        time.sleep(0.05)
    time.sleep(1.0)     # /proc/*/syscall unreadable here: give the threads time to block


def _gcore_hung(exe: Path, out: Path) -> tuple[Path, str]:
    proc = subprocess.Popen([str(exe)], cwd=out, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()          # "deadlock: pid ..." is printed after both threads started
        _wait_all_in_futex(proc.pid, threads=3)
        prefix = out / "deadlock.gcore"
        subprocess.run(["gcore", "-o", str(prefix), str(proc.pid)], capture_output=True, timeout=120)
        produced = out / f"deadlock.gcore.{proc.pid}"
        core = out / "deadlock.core"
        produced.rename(core)
        return core, "gcore"
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def killed_deadlock(linux_cores, tmp_path_factory) -> Path:
    """A kernel core of the hung deadlock program killed with SIGABRT from outside (what a
    customer does to get a dump of a hung process)."""
    if os.environ.get("BACKLINE_TEST_CORES") == "gdb" or not _plain_core_pattern():
        pytest.skip("kernel core dumps are not written to a plain file here (core_pattern)")
    out = tmp_path_factory.mktemp("killed")
    proc = subprocess.Popen([str(linux_cores["deadlock"].exe)], cwd=out, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, preexec_fn=_unlimited_core)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        _wait_all_in_futex(proc.pid, threads=3)
        proc.send_signal(signal.SIGABRT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    cores = sorted(out.glob("core*"))
    assert cores, "the kernel wrote no core for the killed process"
    return cores[-1]


@pytest.fixture(scope="session")
def linux_cores(corpus, tmp_path_factory) -> dict[str, Built]:
    for tool in ("gcc", "gdb", "gcore"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is needed to build the ELF core test programs (apt-get install gcc gdb)")
    src = corpus / "dumps" / "linux"
    out = tmp_path_factory.mktemp("elfcores")
    built: dict[str, Built] = {}
    for name in PROGRAMS:
        exe = out / name
        flags = CFLAGS + (["-pthread"] if name == "deadlock" else [])
        subprocess.run(["gcc", *flags, "-o", str(exe), str(src / f"{name}.c")], check=True,
                       capture_output=True, timeout=120)
        core, how = _gcore_hung(exe, out) if name == "deadlock" else _crash(exe, out)
        assert core.is_file(), f"no core made for {name}"
        gdb = subprocess.run(["gdb", "-q", "-batch", "-ex", "thread apply all bt", str(exe), str(core)],
                             capture_output=True, text=True, timeout=300, env={**os.environ, "LC_ALL": "C"})
        threads, sig = parse_gdb_bt(gdb.stdout)
        built[name] = Built(exe, core, how, threads, sig, gdb.stdout)
    for fname, text in OWN_PROGRAMS.items():
        name, ext = fname.rsplit(".", 1)
        source = out / fname
        source.write_text(text)
        exe = out / name
        compiler = "g++" if ext == "cpp" else "gcc"
        if shutil.which(compiler) is None:
            continue            # the tests that need it say so (g++ is optional)
        subprocess.run([compiler, *CFLAGS, "-o", str(exe), str(source)], check=True,
                       capture_output=True, timeout=120)
        # the handler program's own SIGSEGV must reach its handler, not stop gdb
        core, how = _crash(exe, out, ("SIGSEGV",) if name == "handler" else ())
        gdb = subprocess.run(["gdb", "-q", "-batch", "-ex", "thread apply all bt", str(exe), str(core)],
                             capture_output=True, text=True, timeout=300, env={**os.environ, "LC_ALL": "C"})
        threads, sig = parse_gdb_bt(gdb.stdout)
        built[name] = Built(exe, core, how, threads, sig, gdb.stdout)
    return built
