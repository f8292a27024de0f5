"""What every drill needs: a work folder, real processes, cores, mounts (capture.py and bundle.py
hold the loopback capture and the packaging; their names are re-exported here).

A drill is built inside ``with Drill(name, seed) as d:``.  Leaving the block, normally or by
an exception, kills every process the drill started (by its process group, which the drill
created), unmounts what it mounted and removes the work folder.

Needs root: the capture is a raw ``AF_PACKET`` socket on ``lo`` (as in
``scripts/make_example.py``), the disk-full drill mounts a tmpfs, the DNS drills give a client
its own ``/etc/resolv.conf`` in a private mount namespace (``unshare -m``).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bundle import Bundle, write_truth
from capture import Capture

HERE = Path(__file__).resolve().parent
__all__ = ["Bundle", "Capture", "Drill", "DrillError", "write_truth", "roles", "ticks", "request", "old_crash",
           "kill_tree", "descendants", "kernel_cores", "allow_cores", "take_core", "listening", "need_root",
           "need_tools"]


class DrillError(RuntimeError):
    """A drill could not be built (a tool is missing, a service did not come up, ...)."""


def need_root() -> None:
    if os.geteuid() != 0:
        raise DrillError("drills need root: raw loopback capture (AF_PACKET), tmpfs mounts, unshare -m")


def need_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise DrillError(f"missing tool(s): {', '.join(missing)} (see docs/drills.md for the Debian packages)")


@dataclass
class Drill:
    """The scratch space and the live processes of one drill build."""

    name: str
    seed: int
    work: Path = field(init=False)
    rng: random.Random = field(init=False)
    procs: list[subprocess.Popen] = field(default_factory=list)
    mounts: list[Path] = field(default_factory=list)
    capture: Capture | None = None

    def __post_init__(self) -> None:
        need_root()
        self.rng = random.Random(self.seed)
        self.work = Path(tempfile.mkdtemp(prefix=f"drill-{self.name}-"))

    def __enter__(self) -> "Drill":
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()

    # -- files ---------------------------------------------------------------------------
    def path(self, rel: str) -> Path:
        p = self.work / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write(self, rel: str, text: str) -> Path:
        p = self.path(rel)
        p.write_text(text)
        return p

    # -- processes -------------------------------------------------------------------------
    def spawn(self, argv: list[str], *, out: str | None = None, env: dict | None = None,
              cwd: Path | None = None, resolv: Path | None = None, stdin=subprocess.DEVNULL,
              preexec_fn=None) -> subprocess.Popen:
        """Start a process in its own process group; ``out``: file (in the work folder) for
        its stdout and stderr; ``resolv``: run it with that file as ``/etc/resolv.conf``."""
        if resolv is not None:
            argv = ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/resolv.conf && exec "$@"',
                    str(resolv), *argv]
        full_env = dict(os.environ, PYTHONPATH=str(HERE), PYTHONUNBUFFERED="1")
        full_env.pop("PYTHONSTARTUP", None)
        full_env.update(env or {})
        sink = open(self.path(out), "ab") if out else subprocess.DEVNULL
        try:
            p = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT if out else subprocess.DEVNULL,
                                 stdin=stdin, env=full_env, cwd=cwd or self.work, start_new_session=True,
                                 preexec_fn=preexec_fn)
        finally:
            if out:
                sink.close()
        p.out_path = self.path(out) if out else None
        self.procs.append(p)
        return p

    def role(self, module_file: str, role: str, *args: object, **kw) -> subprocess.Popen:
        """Run ``python MODULE ROLE ARGS...``: a drill module's own program in a process of its own."""
        return self.spawn([sys.executable, module_file, role, *map(str, args)], **kw)

    def run(self, argv: list[str], timeout: float = 60, **kw) -> subprocess.CompletedProcess:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=kw.pop("cwd", self.work), **kw)
        if r.returncode != 0:
            raise DrillError(f"{' '.join(argv[:3])} failed ({r.returncode}): {r.stderr.strip()[-800:]}")
        return r

    @staticmethod
    def wait(p: subprocess.Popen, timeout: float = 30) -> int:
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            raise DrillError(f"process {p.args[:4]} did not finish within {timeout} s") from None

    @staticmethod
    def signal(p: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10) -> int | None:
        """Send ``sig`` to one process the drill started and wait for it to end."""
        if p.poll() is None:
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                return p.wait(timeout)
            except subprocess.TimeoutExpired:
                return None
        return p.returncode

    @staticmethod
    def wait_port(host: str, port: int, timeout: float = 15, proc: subprocess.Popen | None = None,
                  udp: bool = False) -> None:
        """Wait until something listens on host:port (read from /proc/net/tcp: no probe
        connection, so the capture shows no refused or half-open probes)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if proc is not None and proc.poll() is not None:
                raise DrillError(f"{proc.args[:4]} exited ({proc.returncode}) before listening on {host}:{port}"
                                 + _tail(proc))
            if listening(host, port, udp):
                return
            time.sleep(0.05)
        raise DrillError(f"nothing listening on {host}:{port} after {timeout} s" + (_tail(proc) if proc else ""))

    @staticmethod
    def wait_file(path: Path, text: str = "", timeout: float = 15) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if path.exists() and (not text or text in path.read_text(errors="replace")):
                return
            time.sleep(0.05)
        raise DrillError(f"{path.name} did not show {text!r} within {timeout} s")

    # -- capture ---------------------------------------------------------------------------
    def start_capture(self, *endpoints: tuple[str, int], snaplen: int = 65535) -> Capture:
        self.capture = Capture(set(endpoints), snaplen)
        self.capture.start()
        return self.capture

    def finish_capture(self, rel: str) -> Path:
        if self.capture is None:
            raise DrillError("no capture running")
        time.sleep(0.2)
        p = self.path(rel)
        n = self.capture.finish(p)
        self.capture = None
        if n == 0:
            raise DrillError("the capture saw no packet")
        return p

    # -- native programs, cores, mounts ----------------------------------------------------
    def cc(self, name: str, source: str, *flags: str, shared: bool = False) -> Path:
        """Compile C ``source`` into the work folder (debug info kept, as a customer's build
        with symbols would be)."""
        src = self.write(f"build/{name}.c", source)
        out = self.path(f"build/{name}")
        argv = ["gcc", "-g", "-fno-omit-frame-pointer", f"-fdebug-prefix-map={src.parent}=/usr/src/{name}",
                f"-fdebug-prefix-map={self.work}=/usr/src",
                *flags, "-o", str(out), str(src)]
        if shared:
            argv[1:1] = ["-shared", "-fPIC"]
        self.run(argv, timeout=120)
        return out

    def under_gdb(self, argv: list[str], core: Path, **kw) -> subprocess.Popen:
        """Run a program under gdb; when it stops on a fatal signal gdb writes ``core``
        (``generate-core-file``) and kills it."""
        core.parent.mkdir(parents=True, exist_ok=True)
        return self.spawn(["gdb", "-batch", "-nx", "-ex", "set pagination off", "-ex", "run",
                           "-ex", f"generate-core-file {core}", "-ex", "kill", "--args", *argv], **kw)

    def crash(self, argv: list[str], core: Path, timeout: float = 120, **kw) -> Path:
        """Run a program that crashes and keep its core: the kernel's when ``core_pattern``
        writes plain files (the real thing, one NT_SIGINFO for the faulting thread), else the
        one gdb writes at the fault."""
        core.parent.mkdir(parents=True, exist_ok=True)
        if kernel_cores():
            folder = Path(tempfile.mkdtemp(dir=self.work, prefix="cores-"))
            p = self.spawn(argv, cwd=folder, preexec_fn=allow_cores, **kw)
            self.wait(p, timeout)
            if take_core(folder, p.pid, core) is None:
                raise DrillError(f"{Path(argv[0]).name} exited {p.returncode} and left no core" + _tail(p))
            return core
        p = self.under_gdb(argv, core, **kw)
        self.wait(p, timeout)
        if not core.exists():
            raise DrillError(f"{Path(argv[0]).name} left no core under gdb" + _tail(p))
        return core

    def gcore(self, pid: int, core: Path) -> Path:
        """Snapshot a live (hung) process with gdb's ``gcore``."""
        core.parent.mkdir(parents=True, exist_ok=True)
        self.run(["gcore", "-o", str(core), str(pid)], timeout=120)
        made = core.with_name(f"{core.name}.{pid}")
        if not made.exists():
            raise DrillError("gcore wrote no core")
        made.rename(core)
        return core

    def start_nginx(self, http_body: str, *, error_level: str = "warn") -> subprocess.Popen:
        """Run the real nginx with ``http_body`` as its ``http {}`` block (logs in
        ``nginx/logs/``; ``{prefix}`` in the body is the nginx folder)."""
        need_tools("nginx")
        prefix = self.path("nginx/logs/x").parent.parent
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (prefix / "tmp" / sub).mkdir(parents=True, exist_ok=True)
        temps = "".join(f"{sub}_temp_path {prefix}/tmp/{sub};\n" for sub in ("proxy", "fastcgi", "uwsgi", "scgi"))
        conf = self.write("nginx/nginx.conf", (
            f"user root;\nworker_processes 1;\npid {prefix}/nginx.pid;\n"
            f"error_log {prefix}/logs/error.log {error_level};\nevents {{ worker_connections 128; }}\n"
            f"http {{\nclient_body_temp_path {prefix}/tmp/body;\n{temps}"
            + http_body.replace("{prefix}", str(prefix)) + "\n}\n"))
        p = self.spawn(["nginx", "-p", str(prefix), "-e", str(prefix / "logs" / "error.log"), "-c", str(conf),
                        "-g", "daemon off;"], out="nginx/stdout.txt")
        return p

    def mount_tmpfs(self, rel: str, size: str) -> Path:
        p = self.path(rel + "/x").parent
        self.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(p)])
        self.mounts.append(p)
        return p

    # -- the end ---------------------------------------------------------------------------
    def stop_all(self) -> None:
        """Kill every process this drill started and their descendants (a program under gdb
        has a process group of its own, and outlives a killed gdb)."""
        for p in reversed(self.procs):
            kill_tree(p.pid)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self.procs.clear()

    def cleanup(self) -> None:
        self.stop_all()
        if self.capture is not None:
            self.capture.stop_flag.set()
            self.capture.join(2)
            self.capture.sock.close()
            self.capture = None
        for m in reversed(self.mounts):
            subprocess.run(["umount", "-l", str(m)], capture_output=True)
        self.mounts.clear()
        if os.environ.get("DRILL_KEEP"):                 # debugging a generator: keep its scratch folder
            print(f"kept {self.work}", file=sys.stderr)
        else:
            shutil.rmtree(self.work, ignore_errors=True)


def kernel_cores() -> bool:
    """Does the kernel write cores as plain files in the crashing process's folder?"""
    try:
        pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    except OSError:
        return False
    return bool(pattern) and not pattern.startswith("|") and "/" not in pattern


def allow_cores() -> None:
    """``preexec_fn``: lift the core size limit (``ulimit -c unlimited``)."""
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def take_core(folder: Path, pid: int, dest: Path) -> Path | None:
    """Move the core the kernel wrote for ``pid`` in ``folder`` to ``dest``."""
    for name in (f"core.{pid}", "core"):
        p = folder / name
        if p.exists():
            p.rename(dest)
            return dest
    return None


def descendants(pid: int) -> list[int]:
    """Process ids below ``pid`` (children first found, then theirs), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def kill_tree(pid: int) -> None:
    """SIGKILL a process the drill started and everything it started."""
    for p in [pid, *descendants(pid)]:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def listening(host: str, port: int, udp: bool = False) -> bool:
    """Is a TCP socket listening (a UDP socket bound) on host:port or 0.0.0.0:port?  Dual-stack
    sockets (Java binds ``::ffff:a.b.c.d``) count too."""
    want = set()
    for a in (host, "0.0.0.0"):
        raw = socket.inet_aton(a)
        want.add(f"{raw[::-1].hex().upper()}:{port:04X}")
        mapped = b"\0" * 10 + b"\xff\xff" + raw                 # /proc prints IPv6 as 4 host-order words
        want.add("".join(mapped[i:i + 4][::-1].hex().upper() for i in range(0, 16, 4)) + f":{port:04X}")
    want.add("0" * 32 + f":{port:04X}")
    proto = "udp" if udp else "tcp"
    for table in (f"/proc/net/{proto}", f"/proc/net/{proto}6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if (udp or cols[3] == "0A") and cols[1] in want:
                        return True
        except OSError:
            continue
    return False


def _tail(p: subprocess.Popen) -> str:
    path = getattr(p, "out_path", None)
    if path is None or not path.exists():
        return ""
    return "; its output ends:\n" + path.read_text(errors="replace")[-1500:]


# -- time --------------------------------------------------------------------------------------
def ticks(rng: random.Random, start: float, end: float, every_s: float, jitter: float = 0.3) -> list[float]:
    """Times from ``start`` to ``end`` about ``every_s`` apart (± ``jitter`` of it)."""
    out, t = [], start + rng.uniform(0, every_s)
    while t < end:
        out.append(t)
        t += every_s * rng.uniform(1 - jitter, 1 + jitter)
    return out


def roles(table: dict) -> None:
    """``python MODULE ROLE ARGS...`` dispatch for a drill module's programs."""
    if len(sys.argv) < 2 or sys.argv[1] not in table:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(table)}}} ARGS...")
    table[sys.argv[1]](*sys.argv[2:])


def request(method: str, url: str, body: bytes | None = None, timeout: float = 5,
         agent: str = "Mozilla/5.0 (X11; Linux x86_64)") -> tuple[int, float]:
    """One real HTTP request; (status, seconds), status 0 when no answer came."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=body, method=method, headers={"User-Agent": agent})
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            r.read()
            status = r.status
    except urllib.error.HTTPError as exc:
        exc.read()
        status = exc.code
    except (OSError, TimeoutError):
        status = 0
    return status, time.monotonic() - t0


# -- an old, unrelated crash: small tools that crashed hours before an incident -------------------
OLD_CRASHERS = {
    "thumbnailer": r"""
#include <stdio.h>
#include <stdlib.h>
struct image { int width, height; unsigned char *pixels; };
static int scale_factor(const struct image *img, int target) { return img->width / target; }
int main(int argc, char **argv) {
    struct image img = { 640, 480, 0 };
    int target = argc > 1 ? atoi(argv[1]) : 0;       /* a missing size argument: 0 */
    printf("scaling by %d\n", scale_factor(&img, target));
    return 0;
}
""",
    "csvexport": r"""
#include <stdio.h>
#include <string.h>
struct row { char *cells[8]; int n; };
static void write_cell(struct row *r, int i, const char *text) { strcpy(r->cells[i], text); }
int main(void) {
    struct row r = { {0}, 0 };
    write_cell(&r, 3, "2024-Q4");                      /* cell buffer never allocated */
    printf("%d\n", r.n);
    return 0;
}
""",
    "reportgen": r"""
#include <assert.h>
#include <stdio.h>
static int pages_for(int rows, int per_page) { assert(per_page > 0 && "per_page must be positive"); return (rows + per_page - 1) / per_page; }
int main(void) { printf("%d pages\n", pages_for(1200, 0)); return 0; }
""",
}


def old_crash(d: Drill, tool: str) -> tuple[Path, Path]:
    """Build one of :data:`OLD_CRASHERS` and crash it; (binary, core)."""
    exe = d.cc(tool, OLD_CRASHERS[tool], "-O0")
    return exe, d.crash([str(exe)], d.path(f"old/core.{tool}"), out=f"old/{tool}.out")
