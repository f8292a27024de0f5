"""Deadlock: two threads of a C daemon take two mutexes in opposite orders; health checks time out.

Real programs: ``pricerd`` (C, pthreads, writes its own log with ``fprintf``) serving
``GET /health`` on 127.0.2.1:8088; its ``feed`` thread locks the order book then the stats,
its ``report`` thread (after a snapshot option turns on) locks the stats then the order book:
they deadlock, and the health handler blocks on the order book lock too.  ``watchdog`` (a Python
supervisor) sees its health checks time out, takes a core of the hung process with gdb's
``gcore`` and kills it.  Noise: a chronic feed-latency warning, an old handled "connection
refused" traceback of the watchdog's metrics push, healthy health checks.  Layout: a plain
folder with a gzip-compressed core and the binary.
"""

from __future__ import annotations

import gzip
import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from kit import Bundle, Drill, roles, ticks, write_truth
from logfmt import at, close, setup

NAME = "deadlock-pricer"
CLASS = "deadlock"
SEED = 1105
PRICER = ("127.0.2.1", 8088)

C_SOURCE = r"""
#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t book_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *logf;
static long quotes_applied, snapshots;
static volatile int snapshot_mode;

static void logmsg(const char *level, const char *who, const char *fmt, ...) {
    struct timeval tv; gettimeofday(&tv, NULL);
    struct tm tm; gmtime_r(&tv.tv_sec, &tm);
    char stamp[32]; strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    va_list ap; va_start(ap, fmt);
    pthread_mutex_lock(&log_lock);
    fprintf(logf, "[%s.%03ldZ] [%s] [%s] ", stamp, (long)(tv.tv_usec / 1000), level, who);
    vfprintf(logf, fmt, ap); fputc('\n', logf); fflush(logf);
    pthread_mutex_unlock(&log_lock);
    va_end(ap);
}

static void apply_quote_batch(int n) {
    pthread_mutex_lock(&book_lock);
    usleep(30000);                               /* rebuild the price ladder */
    pthread_mutex_lock(&stats_lock);
    quotes_applied += n;
    pthread_mutex_unlock(&stats_lock);
    pthread_mutex_unlock(&book_lock);
}

static void *feed_thread(void *arg) {
    (void)arg;
    for (int batch = 1;; batch++) {
        apply_quote_batch(40 + batch % 17);
        if (batch % 10 == 0) logmsg("info", "feed", "applied %ld quotes so far", quotes_applied);
        usleep(20000);
    }
    return NULL;
}

static void write_snapshot(void) {
    pthread_mutex_lock(&stats_lock);
    usleep(30000);                               /* serialise the counters */
    pthread_mutex_lock(&book_lock);              /* opposite order to apply_quote_batch */
    snapshots++;
    pthread_mutex_unlock(&book_lock);
    pthread_mutex_unlock(&stats_lock);
}

static void *report_thread(void *arg) {
    (void)arg;
    for (;;) {
        if (snapshot_mode) {
            write_snapshot();
            logmsg("info", "report", "snapshot %ld written", snapshots);
        } else {
            pthread_mutex_lock(&stats_lock);
            long q = quotes_applied;
            pthread_mutex_unlock(&stats_lock);
            logmsg("debug", "report", "quotes applied: %ld", q);
        }
        usleep(100000);
    }
    return NULL;
}

static void serve_health(int fd) {
    char req[512];
    ssize_t n = read(fd, req, sizeof req - 1);
    if (n <= 0) { close(fd); return; }
    req[n] = 0;
    if (strncmp(req, "GET /health ", 12) != 0) {           /* /version went away in 2.3 */
        const char *nf = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        write(fd, nf, strlen(nf));
        close(fd);
        return;
    }
    pthread_mutex_lock(&book_lock);
    long q = quotes_applied;
    pthread_mutex_unlock(&book_lock);
    char body[64], resp[256];
    int blen = snprintf(body, sizeof body, "ok quotes=%ld\n", q);
    int rlen = snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", blen, body);
    write(fd, resp, rlen);
    close(fd);
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: pricerd LOG SNAPSHOT_AFTER_S\n"); return 2; }
    logf = fopen(argv[1], "a");
    int snapshot_after = atoi(argv[2]);
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(8088) };
    inet_pton(AF_INET, "127.0.2.1", &a.sin_addr);
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 16)) { perror("bind"); return 1; }
    logmsg("info", "main", "pricerd 2.3.1 listening on 127.0.2.1:8088 (pid %d)", getpid());
    pthread_t feed, report;
    pthread_create(&feed, NULL, feed_thread, NULL);
    pthread_create(&report, NULL, report_thread, NULL);
    time_t start = time(NULL);
    for (;;) {
        if (!snapshot_mode && time(NULL) - start >= snapshot_after) {
            snapshot_mode = 1;
            logmsg("info", "main", "snapshot reporting enabled (report.snapshot=true)");
        }
        struct timeval tv = { 0, 200000 };
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        int c = accept(s, NULL, NULL);
        if (c >= 0) serve_health(c);
    }
}
"""


def probe(path: str = "/health") -> str:
    with socket.create_connection(PRICER, timeout=1.0) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: pricerd\r\n\r\n".encode())
        return s.recv(256).decode(errors="replace").split("\r\n", 1)[0]


def watchdog(log_path: str, pid: str, core_path: str, seconds: str) -> None:
    log = setup(log_path, "python", "watchdog", program="watchdog")
    log.info("watching pricerd pid %s via http://%s:%d/health", pid, *PRICER)
    misses = 0
    end = time.time() + float(seconds)
    checks = 0
    while time.time() < end:
        checks += 1
        if checks % 4 == 1:                    # the inventory job still asks the old version endpoint
            try:
                status = probe("/version")
                if " 404 " in status + " ":
                    log.warning("pricerd version probe: %s (endpoint removed in 2.3?)", status)
            except OSError:
                pass
        try:
            status = probe()
            misses = 0
            log.debug("health check ok: %s", status)
        except (socket.timeout, TimeoutError):
            misses += 1
            log.error("health check of pricerd (%s:%d) timed out after 1000 ms (%d/3)", *PRICER, misses)
            if misses == 3:
                log.critical("pricerd pid %s unresponsive; saving a core with gcore before restart", pid)
                r = subprocess.run(["gcore", "-o", core_path, pid], capture_output=True, text=True)
                log.info("gcore exit %d: %s", r.returncode, r.stdout.strip().splitlines()[-1:] or "")
                os.kill(int(pid), signal.SIGKILL)
                log.warning("pricerd pid %s killed; restart requested", pid)
                return
        time.sleep(0.4)


def history(d: Drill, pricer_log: Path, wd_log: Path, start: float, end: float) -> None:
    rng = d.rng
    wlog = setup(wd_log, "python", "watchdog", "watchdog.metrics")
    events = [(t, "lat") for t in ticks(rng, start, end, 1300)]
    events += [(t, "ok") for t in ticks(rng, start, end, 600)]
    events.append((end - 5.3 * 3600, "push"))
    with open(pricer_log, "w") as plog:
        for t, what in sorted(events):
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"
            if what == "lat":
                plog.write(f"[{stamp}] [warn] [feed] upstream quote feed latency {rng.randint(1100, 1900)} ms "
                           "above 1000 ms\n")
            elif what == "ok":
                with at(t):
                    wlog.info("health check ok: HTTP/1.1 200 OK")
            else:
                with at(t):
                    try:
                        push_metrics(("127.0.2.9", 2003))
                    except ConnectionRefusedError:
                        logging.getLogger("watchdog.metrics").exception("metrics push to graphite failed; "
                                                                        "dropping 60 samples")
    close(wlog, logging.getLogger("watchdog.metrics"))


def push_metrics(addr: tuple[str, int]) -> None:
    with socket.create_connection(addr, timeout=1) as s:
        s.sendall(b"pricerd.quotes 0 0\n")


def build(out: Path) -> None:
    with Drill(NAME, SEED) as d:
        now = time.time()
        exe = d.cc("pricerd", C_SOURCE, "-O0", "-pthread")
        plog, wlog = d.path("logs/pricerd.log"), d.path("logs/watchdog.log")
        history(d, plog, wlog, now - 9 * 3600, now - 15)
        d.start_capture(PRICER)
        pricer = d.spawn([str(exe), str(plog), "3"], out="pricerd.out")
        d.wait_port(*PRICER, proc=pricer)
        core = d.path("crash/core.pricerd")
        wd = d.role(__file__, "watchdog", wlog, pricer.pid, core, 20, out="watchdog.out")
        d.wait(wd, 60)
        pcap = d.finish_capture("health-8088.pcap")
        made = core.with_name(f"core.pricerd.{pricer.pid}")
        if not made.exists():
            raise RuntimeError("the watchdog took no core (no deadlock?)" + wlog.read_text()[-500:])
        out_dir = out / "case-88213"
        (Bundle()
         .add("pricerd.log", plog)
         .add("watchdog.log", wlog)
         .add("health-8088.pcap", pcap)
         .add("crash/core.pricerd.gz", gzip.compress(made.read_bytes(), 6, mtime=0))
         .add("crash/pricerd", exe)).write_dir(out_dir)
        write_truth(out, NAME, codes=["DUMP.DEADLOCK"], artifact="*core.pricerd*", contains=[],
                    description="pricerd's feed thread (order book lock, then stats lock) and its report thread "
                                "(stats lock, then order book lock, after snapshot reporting was enabled) "
                                "deadlocked; the health handler blocked on the order book lock, the watchdog's "
                                "health checks timed out and it killed the process after taking a core.")


if __name__ == "__main__":
    roles({"watchdog": watchdog})
