"""A process death by the kernel's OOM killer: a tile server leaks rasters until its memory cgroup
kills it; its clients see resets and then refused connections while it restarts.

Real programs: ``tilerd`` (C, HTTP on 127.0.31.2:8080, one request at a time) keeps every
rendered raster in a cache that never evicts; a heatmap layer rasterises 6 MiB per tile.
``procmgr`` (Python, a runit-like process manager with a log of its own) starts tilerd inside a
memory cgroup (64 MiB, made by the drill; cgroup v1 or v2) and restarts it 3 s after it ends; tilerd
loads its style sheets for 1.5 s before it listens.  ``tile-proxy`` (Python, log with thread
names) serves map viewers from tilerd and runs an export job that asks for heatmap tiles.  The
kernel kills tilerd (``Memory cgroup out of memory: Killed process ...``): the lines are taken
from the kernel's ring buffer (``dmesg``) and written as rsyslog writes ``kern.log``.  tilerd's
own log just stops; procmgr logs the signal 9; the capture's loudest evidence is the refused
SYNs of the restart window.  No core (SIGKILL leaves none).
Noise: chronic cache warnings, 404s for an unknown layer, boot-time kernel lines, healthy tiles,
an old unrelated core.  Layout: one tar.gz of the host's ``var/`` and the proxy's folder.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path

from kit import Bundle, Drill, DrillError, old_crash, roles, ticks, write_truth

NAME = "oom-tiler"
CLASS = "process killed by the kernel's OOM killer"
SEED = 1113
TILER = ("127.0.31.2", 8080)
HOST = "tiles01"

TILERD = r"""
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static FILE *logf;
static void logmsg(const char *level, const char *fmt, ...) {
    struct timeval tv; gettimeofday(&tv, NULL);
    struct tm tm; gmtime_r(&tv.tv_sec, &tm);
    char stamp[32]; strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(logf, "%s.%03ldZ %-5s tilerd[%d] ", stamp, (long)(tv.tv_usec / 1000), level, getpid());
    va_list ap; va_start(ap, fmt); vfprintf(logf, fmt, ap); va_end(ap);
    fputc('\n', logf); fflush(logf);
}

struct raster { char key[48]; unsigned char *pixels; size_t size; };
static struct raster cache[4096];
static int cached;

/* every rendered raster is kept: the cache has no eviction */
static const unsigned char *render(const char *layer, int z, int x, int y) {
    char key[48]; snprintf(key, sizeof key, "%s/%d/%d", layer, z, x);
    for (int i = 0; i < cached; i++) if (strcmp(cache[i].key, key) == 0) return cache[i].pixels;
    size_t size = strcmp(layer, "heatmap") == 0 ? (6u << 20) : (16u << 10);   /* heatmaps: the whole column */
    unsigned char *p = malloc(size);
    if (!p) { logmsg("ERROR", "raster allocation of %zu bytes failed for %s", size, key); return NULL; }
    memset(p, (x * 31 + y) & 0xff, size);
    if (cached < 4096) { snprintf(cache[cached].key, sizeof cache[cached].key, "%s", key);
                         cache[cached].pixels = p; cache[cached].size = size; cached++; }
    return p;
}

static void reply(int fd, int code, const char *status, const char *body) {
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "HTTP/1.1 %d %s\r\nContent-Type: application/octet-stream\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", code, status, strlen(body), body);
    write(fd, buf, n);
}

int main(int argc, char **argv) {
    logf = fopen(argc > 1 ? argv[1] : "tilerd.log", "a");
    logmsg("INFO", "tilerd 2.3.1 starting, loading style sheets");
    usleep(1500 * 1000);
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(8080) };
    inet_pton(AF_INET, "127.0.31.2", &a.sin_addr);
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 16)) { logmsg("ERROR", "bind: %m"); return 1; }
    logmsg("INFO", "listening on 127.0.31.2:8080 (layers: base roads heatmap)");
    char req[2048];
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) continue;
        ssize_t n = read(c, req, sizeof req - 1);
        if (n <= 0) { close(c); continue; }
        req[n] = 0;
        char layer[32] = ""; int z = 0, x = 0, y = 0;
        if (sscanf(req, "GET /tile/%31[a-z]/%d/%d/%d", layer, &z, &x, &y) != 4) {
            reply(c, 400, "Bad Request", "bad tile path"); close(c); continue;
        }
        if (strcmp(layer, "base") && strcmp(layer, "roads") && strcmp(layer, "heatmap")) {
            logmsg("WARN", "unknown layer '%s' requested", layer);
            reply(c, 404, "Not Found", "unknown layer"); close(c); continue;
        }
        const unsigned char *p = render(layer, z, x, y);
        if (!p) { reply(c, 503, "Service Unavailable", "no memory"); close(c); continue; }
        char body[257]; memset(body, 'A' + p[0] % 26, 256); body[256] = 0;
        reply(c, 200, "OK", body);
        close(c);
    }
}
"""


def procmgr(log_path: str, exe: str, tiler_log: str, cgroup: str, seconds: str) -> None:
    """A runit-like manager: start tilerd in its memory cgroup, restart it 3 s after it ends."""
    log = logging.getLogger("procmgr")
    h = logging.FileHandler(log_path)
    fmt = logging.Formatter("%(asctime)s procmgr[%(process)d]: %(message)s")
    fmt.converter = time.gmtime
    h.setFormatter(fmt)
    log.addHandler(h)
    log.setLevel(logging.INFO)
    end = time.time() + float(seconds)

    def enter_cgroup() -> None:
        Path(cgroup, "cgroup.procs").write_text(str(os.getpid()))

    while time.time() < end:
        p = subprocess.Popen([exe, tiler_log], preexec_fn=enter_cgroup, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        log.info("run: tilerd[%d] started (restart delay 3 s)", p.pid)
        while p.poll() is None and time.time() < end:
            time.sleep(0.02)
        if p.poll() is None:
            p.terminate()
            p.wait()
            log.info("down: tilerd[%d] stopped on request", p.pid)
            break
        if p.returncode < 0:
            log.info("down: tilerd[%d] terminated by signal %d", p.pid, -p.returncode)
        else:
            log.info("down: tilerd[%d] exited with status %d", p.pid, p.returncode)
        time.sleep(3.0)


def tile_proxy(log_path: str, seconds: str, export_after: str) -> None:
    fmt = logging.Formatter("%(asctime)s %(levelname)-8s [%(threadName)s] %(name)s %(message)s")
    fmt.converter = time.gmtime
    h = logging.FileHandler(log_path)
    h.setFormatter(fmt)
    for name in ("proxy.viewer", "proxy.export"):
        lg = logging.getLogger(name)
        lg.addHandler(h)
        lg.setLevel(logging.INFO)
    end = time.time() + float(seconds)
    export_at = time.time() + float(export_after)

    def fetch(path: str) -> int:
        c = http.client.HTTPConnection(*TILER, timeout=2)
        try:
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            return r.status
        finally:
            c.close()

    def viewer(n: int) -> None:
        log = logging.getLogger("proxy.viewer")
        i = 0
        while time.time() < end:
            i += 1
            layer = "satellite" if i % 23 == 0 else ("base", "roads")[i % 2]
            path = f"/tile/{layer}/12/{2040 + (i * 7 + n) % 16}/{1360 + i % 9}"
            try:
                st = fetch(path)
                if st != 200:
                    log.warning("tile %s answered HTTP %d", path, st)
            except OSError as exc:
                log.error("tile %s failed: %s", path, exc)
            time.sleep(0.12)

    def export() -> None:
        log = logging.getLogger("proxy.export")
        while time.time() < export_at:
            time.sleep(0.05)
        log.info("export job 4417 started: heatmap z12, 40 columns")
        failures = 0
        for x in range(2000, 2040):
            if time.time() >= end:
                break
            try:
                fetch(f"/tile/heatmap/12/{x}/1361")
            except OSError as exc:
                failures += 1
                log.error("export job 4417: column %d failed: %s", x, exc)
                if failures >= 3:
                    log.error("export job 4417 aborted after %d failures", failures)
                    return
            time.sleep(0.08)
        log.info("export job 4417 done")

    threads = [threading.Thread(target=viewer, args=(i,), name=f"viewer-{i}") for i in range(3)]
    threads.append(threading.Thread(target=export, name="export-1"))
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def history(d: Drill, tlog: Path, plog: Path, xlog: Path, start: float, end: float) -> None:
    """The hours before, in the same layouts: tilerd's chronic cache warnings, procmgr's start,
    the proxy's healthy traffic and its 404s for an unknown layer."""
    rng = d.rng
    pid = rng.randint(2000, 2999)
    lines: list[tuple[float, Path, str]] = []
    lines.append((start, plog, f"procmgr[{rng.randint(300, 399)}]: run: tilerd[{pid}] started (restart delay 3 s)"))
    for t in ticks(rng, start, end, 1500):
        lines.append((t, tlog, f"WARN  tilerd[{pid}] raster cache holds {rng.randint(900, 1400)} tiles "
                               f"(soft limit 800)"))
    for t in ticks(rng, start, end, 400):
        lines.append((t, tlog, f"INFO  tilerd[{pid}] served {rng.randint(4000, 9000)} tiles in the last 5 min"))
    for t in ticks(rng, start, end, 900):
        lines.append((t, xlog, f"WARNING  [viewer-{rng.randint(0, 2)}] proxy.viewer tile /tile/satellite/12/"
                               f"{rng.randint(2040, 2055)}/{rng.randint(1360, 1368)} answered HTTP 404"))
    for t in ticks(rng, start, end, 300):
        lines.append((t, xlog, f"INFO     [viewer-{rng.randint(0, 2)}] proxy.viewer {rng.randint(300, 900)} "
                               f"tiles served from cache in the last 5 min"))
    with open(tlog, "w") as ft, open(plog, "w") as fp, open(xlog, "w") as fx:
        files = {tlog: ft, plog: fp, xlog: fx}
        for t, path, text in sorted(lines, key=lambda x: x[0]):
            if path == tlog:
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"
                files[path].write(f"{stamp} {text}\n")
            else:
                stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + f",{int(t % 1 * 1000):03d}"
                files[path].write(f"{stamp} {text}\n")


def kernel_lines(pid: int, boot_lines: int = 25) -> str:
    """The kernel's ring buffer as rsyslog writes kern.log: the first lines since boot, then the
    OOM report that ends with the kill of ``pid``."""
    out = subprocess.run(["dmesg", "--time-format", "iso"], capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d),(\d+)[+-]\d\d:\d\d (.*)", line)
        if m:
            rows.append((m.group(1), m.group(3)))
    kill = next((i for i in range(len(rows) - 1, -1, -1)
                 if re.search(rf"Killed process {pid}\b", rows[i][1])), None)
    if kill is None:
        raise DrillError(f"no OOM kill of pid {pid} in the kernel's log")
    begin = next((i for i in range(kill, -1, -1) if "invoked oom-killer" in rows[i][1]), kill)
    keep = rows[:boot_lines] + rows[begin:kill + 1]
    keep += [r for r in rows[kill + 1:kill + 4] if f"process {pid} " in r[1] or f"process {pid}(" in r[1]]
    text = []
    for stamp, msg in keep:
        t = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S")
        text.append(f"{t.strftime('%b')} {t.day:2d} {t.strftime('%H:%M:%S')} {HOST} kernel: {msg}")
    return "\n".join(text) + "\n"


def build(out: Path) -> None:
    v1, v2 = Path("/sys/fs/cgroup/memory"), Path("/sys/fs/cgroup")
    if (v1 / "memory.limit_in_bytes").exists():
        memcg, limit_file, swap_file = v1, "memory.limit_in_bytes", "memory.memsw.limit_in_bytes"
    elif "memory" in ((v2 / "cgroup.controllers").read_text() if (v2 / "cgroup.controllers").exists() else ""):
        memcg, limit_file, swap_file = v2, "memory.max", "memory.swap.max"
    else:
        raise DrillError("needs a memory cgroup controller (v1 at /sys/fs/cgroup/memory or v2 at /sys/fs/cgroup)")
    with Drill(NAME, SEED) as d:
        now = time.time()
        exe = d.cc("tilerd", TILERD, "-O0")
        cg = memcg / f"drill-{NAME}-{os.getpid()}"
        cg.mkdir()
        try:
            (cg / limit_file).write_text(str(64 << 20))
            try:
                (cg / swap_file).write_text(str(64 << 20) if memcg is v1 else "0")
            except OSError:
                pass                                   # no swap accounting: the memory limit alone
            tlog, plog, xlog = d.path("var/log/tilerd.log"), d.path("var/log/procmgr.log"), d.path("proxy/proxy.log")
            history(d, tlog, plog, xlog, now - 8 * 3600, now - 20)
            old_exe, old_core = old_crash(d, "csvexport")
            d.start_capture(TILER)
            mgr = d.role(__file__, "procmgr", plog, exe, tlog, cg, 13, out="procmgr.out")
            d.wait_port(*TILER, timeout=20, proc=mgr)
            proxy = d.role(__file__, "tile_proxy", xlog, 10.5, 2.0, out="proxy.out")
            d.wait(proxy, 40)
            pcap = d.finish_capture("tiles01-8080.pcap")
            d.wait(mgr, 30)
            m = re.search(r"down: tilerd\[(\d+)\] terminated by signal 9", plog.read_text())
            if not m:
                raise DrillError("tilerd was not killed" + plog.read_text()[-600:])
            kern = d.write("var/log/kern.log", kernel_lines(int(m.group(1))))
        finally:
            d.stop_all()
            for _ in range(50):
                try:
                    cg.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)
        out.mkdir(parents=True, exist_ok=True)
        old_at = now - 5.2 * 3600
        (out / f"{HOST}-logs.tar.gz").write_bytes(
            Bundle()
            .add(f"{HOST}/var/log/kern.log", kern)
            .add(f"{HOST}/var/log/procmgr/current", plog)
            .add(f"{HOST}/var/log/tilerd/tilerd.log", tlog)
            .add(f"{HOST}/var/crash/core.csvexport", old_core, mtime=old_at)
            .add(f"{HOST}/usr/local/bin/csvexport", old_exe, mtime=old_at)
            .add("tile-proxy/proxy.log", xlog)
            .add("tile-proxy/capture/tiles01-8080.pcap", pcap)
            .tgz_bytes())
        write_truth(out, NAME, codes=["LOG.PROCESS_EXIT", "LOG.ERROR_TEMPLATE", "LOG.FIRST_ERROR",
                                      "LOG.RARE_TEMPLATE", "LOG.NEW_TEMPLATE"],
                    artifact="*kern.log", contains=["tilerd"],
                    alternatives=[{"codes": ["LOG.PROCESS_EXIT", "LOG.ERROR_TEMPLATE", "LOG.FIRST_ERROR",
                                             "LOG.RARE_TEMPLATE", "LOG.NEW_TEMPLATE"],
                                   "artifact": "*procmgr*", "contains": ["tilerd", "signal 9"]}],
                    description="tilerd keeps every rendered raster (no eviction); an export job's heatmap tiles "
                                "grew it past its 64 MiB memory cgroup and the kernel's OOM killer killed it "
                                "(kern.log); procmgr restarted it 3 s later, and until it listened again the "
                                "tile proxy's connections to 127.0.31.2:8080 were reset and refused.")


if __name__ == "__main__":
    roles({"procmgr": procmgr, "tile_proxy": tile_proxy})
