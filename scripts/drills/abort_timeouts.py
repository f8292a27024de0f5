"""A native service aborts (no core) behind a socket its supervisor holds: its clients see
timeouts, not refusals.

Real programs: ``unitd`` (Python, a systemd-like supervisor with socket activation: it owns the
listening socket 127.0.33.2:8080 and hands it to the service as fd 3, ``LISTEN_FDS=1``; cores
are off, ``LimitCORE=0``; ``RestartSec=5``; its journal in syslog layout, the service's stdout
and stderr in it) and ``geoindexd`` (C, built with the stack protector) that copies a place name
into a 32-byte buffer.  ``dispatch-api`` (Python, log4j layout) asks geoindexd for the nearest
depot of each order with a 1 s timeout.  An order for a place with a long name overflows the
buffer: glibc's ``*** stack smashing detected ***: terminated``, SIGABRT, no core.  The socket
stays open in unitd, so the kernel keeps completing handshakes: dispatch-api's requests wait
and time out for the 5 s until geoindexd is back (which then answers connections whose clients
had given up).  Noise: a chronic stale-index warning, 404s for unknown places, healthy lookups,
an old unrelated core.  Layout: a tar.gz of the geo host and the API's zip inside one zip.
"""

from __future__ import annotations

import http.client
import logging
import os
import resource
import socket
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

from kit import Bundle, Drill, DrillError, old_crash, roles, ticks, write_truth
from logfmt import Syslog, at, close, setup

NAME = "abort-timeouts"
CLASS = "native abort without a core behind a held socket (timeouts)"
SEED = 1115
GEO = ("127.0.33.2", 8080)
HOST = "geo01"

GEOINDEXD = r"""
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *places[] = { "lyon", "paris", "nantes", "lille", "dijon", "rennes", "metz", "nice" };

/* the name's hash bucket; names are "at most 31 characters" */
static unsigned place_hash(const char *name) {
    char key[32];
    strcpy(key, name);
    for (char *p = key; *p; p++) *p = (char)tolower((unsigned char)*p);
    unsigned h = 5381;
    for (char *p = key; *p; p++) h = h * 33u + (unsigned char)*p;
    return h;
}

static int known(const char *name) {
    for (size_t i = 0; i < sizeof places / sizeof places[0]; i++) if (strcasecmp(places[i], name) == 0) return 1;
    return 0;
}

static void reply(int fd, int code, const char *status, const char *body) {
    char buf[512];
    int n = snprintf(buf, sizeof buf, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s", code, status, strlen(body), body);
    write(fd, buf, n);
}

int main(void) {
    const char *fds = getenv("LISTEN_FDS");
    if (!fds || atoi(fds) < 1) { fprintf(stderr, "geoindexd: no socket passed (LISTEN_FDS unset)\n"); return 1; }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("geoindexd 0.9.4: serving 48211 places on the socket passed as fd 3\n");
    char req[4096];
    for (;;) {
        int c = accept(3, NULL, NULL);
        if (c < 0) continue;
        ssize_t n = read(c, req, sizeof req - 1);
        if (n <= 0) { close(c); continue; }
        req[n] = 0;
        char name[256] = "";
        if (sscanf(req, "GET /near?place=%255[^& ]", name) != 1) { reply(c, 400, "Bad Request", "{}"); close(c); continue; }
        unsigned h = place_hash(name);
        if (!known(name)) { reply(c, 404, "Not Found", "{\"error\":\"unknown place\"}"); close(c); continue; }
        char body[128]; snprintf(body, sizeof body, "{\"depot\":\"D%03u\",\"km\":%u}", h % 400, h % 37);
        reply(c, 200, "OK", body);
        close(c);
    }
}
"""


def unitd(journal: str, exe: str, seconds: str) -> None:
    """systemd-like: own the socket, start the service with it as fd 3, restart 5 s after it dies."""
    jlog = setup(journal, "syslog", "unitd", program="unitd")
    svc = logging.getLogger("geoindexd")
    end = time.time() + float(seconds)
    unit = "geoindexd.service"
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(GEO)
    sock.listen(64)
    jlog.info("Listening on geoindexd.socket - Geo index socket (%s:%d).", *GEO)

    def child_setup() -> None:
        os.dup2(fd, 3)
        os.environ["LISTEN_PID"] = str(os.getpid())
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))          # LimitCORE=0

    fd = sock.fileno()
    while time.time() < end:
        p = subprocess.Popen([exe], preexec_fn=child_setup, close_fds=False,
                             env=dict(os.environ, LISTEN_FDS="1"), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        if not svc.handlers:
            h = logging.FileHandler(journal)
            h.setFormatter(Syslog("geoindexd"))
            svc.addHandler(h)
            svc.setLevel(logging.INFO)
            svc.propagate = False
        jlog.info("Started %s - Geo index service.", unit)

        def pump(proc=p) -> None:
            for line in proc.stdout:
                rec = svc.makeRecord("geoindexd", logging.INFO, "", 0, "%s", (line.rstrip(),), None)
                rec.process = proc.pid
                svc.handle(rec)

        t = threading.Thread(target=pump, daemon=True)
        t.start()
        while p.poll() is None and time.time() < end:
            time.sleep(0.02)
        if p.poll() is None:
            p.terminate()
            p.wait()
            t.join(2)
            jlog.info("Stopping %s - Geo index service...", unit)
            jlog.info("%s: Deactivated successfully.", unit)
            break
        t.join(2)
        rc = p.returncode
        if rc < 0:
            import signal as _signal
            name = _signal.Signals(-rc).name.removeprefix("SIG")
            jlog.warning("%s: Main process exited, code=killed, status=%d/%s", unit, -rc, name)
            jlog.warning("%s: Failed with result 'signal'.", unit)
        else:
            jlog.warning("%s: Main process exited, code=exited, status=%d/FAILURE", unit, rc)
            jlog.warning("%s: Failed with result 'exit-code'.", unit)
        time.sleep(5.0)                                             # RestartSec=5
        jlog.info("%s: Scheduled restart job, restart counter is at 1.", unit)
    sock.close()


def dispatch_api(log_path: str, seconds: str, long_after: str) -> None:
    setup(log_path, "log4j", "dispatch.OrderRouter", program="dispatch-api")
    log = logging.getLogger("dispatch.OrderRouter")
    end = time.time() + float(seconds)
    long_at = time.time() + float(long_after)
    order = [77100]
    lock = threading.Lock()
    names = ["Lyon", "Paris", "Nantes", "Lille", "Dijon", "Rennes", "Metz", "Nice", "Quimper"]

    def worker(n: int) -> None:
        while time.time() < end:
            with lock:
                order[0] += 1
                o = order[0]
                if time.time() >= long_at and not globals().get("_long"):
                    globals()["_long"] = True
                    place = "Saint-Remy-en-Bouzemont-Saint-Genest-et-Isson"
                else:
                    place = names[o % len(names)]
            t0 = time.monotonic()
            try:
                c = http.client.HTTPConnection(*GEO, timeout=1.0)
                c.request("GET", "/near?place=" + urllib.parse.quote(place))
                r = c.getresponse()
                r.read()
                c.close()
                if r.status == 404:
                    log.warning("order %d: no depot known near %s", o, place)
                else:
                    log.info("order %d routed (%.0f ms)", o, (time.monotonic() - t0) * 1000)
            except TimeoutError:
                log.error("order %d: geo lookup timed out after 1.0 s (%s:%d), dispatching without a depot",
                          o, *GEO)
            except OSError as exc:
                log.error("order %d: geo lookup failed: %s", o, exc)
            time.sleep(0.2)

    threads = [threading.Thread(target=worker, args=(i,), name=f"router-{i}") for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def history(d: Drill, journal: Path, api_log: Path, start: float, end: float) -> None:
    rng = d.rng
    jl = setup(journal, "syslog", "hist.geo", program="geoindexd")
    pid = rng.randint(700, 999)
    al = setup(api_log, "log4j", "dispatch.OrderRouter", program="dispatch-api")
    events = [(t, "stale") for t in ticks(rng, start, end, 1800)]
    events += [(t, "ok") for t in ticks(rng, start, end, 200)]
    events += [(t, "404") for t in ticks(rng, start, end, 1500)]
    for t, what in sorted(events):
        with at(t):
            if what == "stale":
                rec = jl.makeRecord("hist.geo", logging.WARNING, "", 0,
                                    "warning: places index is %d days old (refresh overdue)",
                                    (rng.randint(40, 42),), None)
                rec.process = pid
                jl.handle(rec)
            elif what == "ok":
                al.info("%d orders routed in the last 3 min", rng.randint(60, 140))
            else:
                al.warning("order %d: no depot known near Quimper", rng.randint(60000, 77000))
    close(jl, al)


def build(out: Path) -> None:
    with Drill(NAME, SEED) as d:
        now = time.time()
        exe = d.cc("geoindexd", GEOINDEXD, "-O0", "-fstack-protector-strong", "-U_FORTIFY_SOURCE")
        journal, api_log = d.path("geo/journal.txt"), d.path("api/dispatch-api.log")
        history(d, journal, api_log, now - 7 * 3600, now - 25)
        old_exe, old_core = old_crash(d, "reportgen")
        d.start_capture(GEO)
        unit = d.role(__file__, "unitd", journal, exe, 14, out="unitd.out")
        d.wait_port(*GEO, timeout=20, proc=unit)
        api = d.role(__file__, "dispatch_api", api_log, 10, 2.5, out="api.out")
        d.wait(api, 40)
        pcap = d.finish_capture("dispatch-to-geo.pcap")
        d.wait(unit, 30)
        jtext = journal.read_text()
        if "status=6/ABRT" not in jtext or "stack smashing" not in jtext:
            raise DrillError("geoindexd did not abort as planned" + jtext[-800:])
        api_zip = (Bundle()
                   .add("dispatch-api/logs/dispatch-api.log", api_log)
                   .add("dispatch-api/capture/dispatch-to-geo.pcap", pcap)
                   .zip_bytes())
        old_at = now - 4.6 * 3600
        geo_tgz = (Bundle()
                   .add(f"{HOST}/journal-geoindexd.txt", journal)
                   .add(f"{HOST}/var/lib/systemd/coredump/core.reportgen", old_core, mtime=old_at)
                   .add(f"{HOST}/usr/bin/reportgen", old_exe, mtime=old_at)
                   .tgz_bytes())
        out.mkdir(parents=True, exist_ok=True)
        (out / "ticket-4471-evidence.zip").write_bytes(
            Bundle().add(f"{HOST}-sosreport.tar.gz", geo_tgz).add("dispatch-api.zip", api_zip).zip_bytes())
        write_truth(out, NAME, codes=["LOG.PROCESS_EXIT", "LOG.ERROR_TEMPLATE", "LOG.FIRST_ERROR",
                                      "LOG.RARE_TEMPLATE", "LOG.NEW_TEMPLATE", "LOG.BURST"],
                    artifact="*journal-geoindexd*", contains=["status=6/ABRT"],
                    alternatives=[{"codes": ["LOG.PROCESS_EXIT", "LOG.ERROR_TEMPLATE", "LOG.FIRST_ERROR",
                                             "LOG.RARE_TEMPLATE", "LOG.NEW_TEMPLATE", "LOG.BURST"],
                                   "artifact": "*journal-geoindexd*", "contains": ["stack smashing"]}],
                    description="geoindexd copied a 45-character place name into a 32-byte buffer; the stack "
                                "protector aborted it (SIGABRT, cores off). unitd held the listening socket "
                                "127.0.33.2:8080 and restarted it 5 s later; meanwhile dispatch-api's lookups "
                                "were accepted by the kernel and timed out.")


if __name__ == "__main__":
    roles({"unitd": unitd, "dispatch_api": dispatch_api})
