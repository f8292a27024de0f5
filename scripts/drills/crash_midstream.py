"""Crash causing mid-stream resets: the ingest server aborts on an oversized frame while sensors stream.

Real programs: ``ingestd`` (C, a thread per connection on 127.0.9.1:7070, JSON-lines log written
with ``fprintf``) asserts that a frame fits its buffer; ``sensor-gw`` (Python, four streaming
connections) sends frames continuously and, after a firmware rollout on one sensor, a frame
larger than the limit: the assertion fails, ingestd aborts (SIGABRT, kernel core kept), every
connection with unread data is reset by the server, and the gateways' reconnects are refused.
Noise: a chronic late-heartbeat warning, an old ConnectionResetError traceback from a brief
network blip hours earlier, one sensor closing normally.  Layout: tar.xz with the core and
the binary.
"""

from __future__ import annotations

import io
import logging
import socket
import struct
import tarfile
import threading
import time
from pathlib import Path

from kit import Bundle, Drill, allow_cores, kernel_cores, roles, take_core, ticks, write_truth
from logfmt import at, setup

NAME = "crash-midstream"
CLASS = "crash causing mid-stream resets"
SEED = 1110
INGEST = ("127.0.9.1", 7070)

C_SOURCE = r"""
#include <arpa/inet.h>
#include <assert.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_FRAME 65536
static FILE *logf;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static long frames_total;

static void logj(const char *lvl, const char *msg, const char *peer, long n) {
    struct timeval tv; gettimeofday(&tv, NULL);
    struct tm tm; gmtime_r(&tv.tv_sec, &tm);
    char stamp[32]; strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    pthread_mutex_lock(&log_lock);
    fprintf(logf, "{\"time\":\"%s.%03ldZ\",\"lvl\":\"%s\",\"component\":\"ingestd\",\"msg\":\"%s\",\"peer\":\"%s\",\"n\":%ld}\n",
            stamp, (long)tv.tv_usec / 1000, lvl, msg, peer ? peer : "", n);
    fflush(logf);
    pthread_mutex_unlock(&log_lock);
}

static int read_full(int fd, void *buf, size_t len) {
    size_t got = 0;
    while (got < len) { ssize_t n = read(fd, (char *)buf + got, len - got); if (n <= 0) return -1; got += n; }
    return 0;
}

struct conn { int fd; char peer[32]; };

static void store_frame(const unsigned char *payload, uint32_t len, uint8_t *scratch) {
    assert(len <= MAX_FRAME && "frame larger than the scratch buffer");
    memcpy(scratch, payload, len);
    __sync_fetch_and_add(&frames_total, 1);
}

static void *stream(void *arg) {
    struct conn *c = arg;
    uint8_t *scratch = malloc(MAX_FRAME);
    unsigned char *payload = malloc(1 << 17);
    logj("info", "sensor stream opened", c->peer, 0);
    long frames = 0;
    for (;;) {
        unsigned char hdr[8];
        if (read_full(c->fd, hdr, sizeof hdr)) break;
        uint32_t magic = ntohl(*(uint32_t *)hdr), len = ntohl(*(uint32_t *)(hdr + 4));
        if (magic != 0x53454e53 || len > (1 << 17)) { logj("warn", "bad frame header, closing", c->peer, frames); break; }
        if (read_full(c->fd, payload, len)) break;
        store_frame(payload, len, scratch);
        if (++frames % 500 == 0) logj("debug", "frames stored", c->peer, frames);
    }
    logj("info", "sensor stream closed", c->peer, frames);
    close(c->fd); free(scratch); free(payload); free(c);
    return NULL;
}

int main(int argc, char **argv) {
    logf = fopen(argc > 1 ? argv[1] : "ingestd.log", "a");
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(7070) };
    inet_pton(AF_INET, "127.0.9.1", &a.sin_addr);
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 32)) { perror("bind"); return 1; }
    logj("info", "ingestd 1.8.3 listening on 127.0.9.1:7070", NULL, 0);
    for (;;) {
        struct sockaddr_in p; socklen_t pl = sizeof p;
        int fd = accept(s, (struct sockaddr *)&p, &pl);
        if (fd < 0) continue;
        struct conn *c = malloc(sizeof *c); c->fd = fd;
        snprintf(c->peer, sizeof c->peer, "%s:%d", inet_ntoa(p.sin_addr), ntohs(p.sin_port));
        pthread_t t; pthread_attr_t at; pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&at, 128 * 1024);
        pthread_create(&t, &at, stream, c);
    }
}
"""


def frame(payload: bytes) -> bytes:
    return struct.pack("!II", 0x53454E53, len(payload)) + payload


def sensor_gw(log_path: str, seconds: str, big_after: str) -> None:
    log = setup(log_path, "python-threads", "sensorgw.stream", program="sensor-gw")
    end = time.time() + float(seconds)
    big = {"at": time.time() + float(big_after)}

    def run(sensor: int) -> None:
        backlog = 0
        sock = None
        while time.time() < end:
            if sock is None:
                try:
                    sock = socket.create_connection(INGEST, timeout=2)
                    log.info("sensor %d: stream to %s:%d open", sensor, *INGEST)
                except OSError as exc:
                    log.error("sensor %d: reconnect to ingestd %s:%d failed: %s", sensor, *INGEST, exc)
                    time.sleep(0.5)
                    continue
            if sensor == 4 and time.time() > end - 2:
                sock.close()                               # a sensor going to sleep: a normal close
                log.info("sensor 4: stream closed (power save)")
                return
            size = 70000 if (sensor == 2 and time.time() > big["at"]) else 2048
            try:
                sock.sendall(frame(bytes([sensor]) * size))
                if size > 65536:
                    log.debug("sensor 2: sent a %d-byte frame (firmware 5.1 batch mode)", size)
                    big["at"] = float("inf")
            except OSError as exc:
                backlog += 1
                log.error("sensor %d: stream to ingestd lost: %s; %d frame(s) buffered", sensor, exc, backlog)
                sock.close()
                sock = None
                time.sleep(0.3)
                continue
            time.sleep(0.004)

    threads = [threading.Thread(target=run, args=(n,), name=f"sensor-{n}") for n in (1, 2, 3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def history(d: Drill, ing_log: Path, gw_log: Path, start: float, end: float) -> None:
    import json

    rng = d.rng
    log = setup(gw_log, "python-threads", "sensorgw.stream", program="sensor-gw")
    events = [(t, "late") for t in ticks(rng, start, end, 800)]
    events += [(t, "ok") for t in ticks(rng, start, end, 400)]
    events.append((end - 6.1 * 3600, "blip"))
    with open(ing_log, "w") as ing:
        for t, what in sorted(events):
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"
            if what == "late":
                ing.write(json.dumps({"time": stamp, "lvl": "warn", "component": "ingestd",
                                      "msg": "heartbeat late", "peer": f"127.0.0.1:{rng.randint(40000, 60000)}",
                                      "n": rng.randint(2, 9)}, separators=(",", ":")) + "\n")
            elif what == "ok":
                ing.write(json.dumps({"time": stamp, "lvl": "debug", "component": "ingestd", "msg": "frames stored",
                                      "peer": f"127.0.0.1:{rng.randint(40000, 60000)}", "n": rng.randint(500, 90000)},
                                     separators=(",", ":")) + "\n")
            else:
                with at(t):
                    srv = socket.socket()
                    srv.bind(("127.0.9.5", 0))
                    srv.listen(1)

                    def reset_one() -> None:
                        conn, _ = srv.accept()
                        conn.recv(64)
                        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        conn.close()                       # RST: the blip

                    th = threading.Thread(target=reset_one)
                    th.start()
                    try:
                        read_uplink(srv.getsockname())
                    except ConnectionResetError:
                        logging.getLogger("sensorgw.stream").exception("sensor 3: uplink read failed, reconnecting")
                    th.join()
                    srv.close()
    for h in log.handlers[:]:
        h.close()
        log.removeHandler(h)


def read_uplink(addr: tuple[str, int]) -> bytes:
    with socket.create_connection(addr, timeout=2) as s:
        s.sendall(b"HELLO sensor-3\n")
        time.sleep(0.05)
        return s.recv(64)


def build(out: Path, fault: bool = True, name: str = NAME, seed: int = SEED) -> None:
    """The incident; with ``fault=False`` the same services on a normal day (a healthy bundle)."""
    with Drill(name, seed) as d:
        now = time.time()
        exe = d.cc("ingestd", C_SOURCE, "-O1", "-pthread")
        ing_log, gw_log = d.path("logs/ingestd.log"), d.path("logs/sensor-gw.log")
        history(d, ing_log, gw_log, now - 8 * 3600, now - 20)
        core = d.path("crash/core.ingestd")
        if kernel_cores():
            srv = d.spawn([str(exe), str(ing_log)], cwd=core.parent, preexec_fn=allow_cores, out="ingestd.out",
                          env={"MALLOC_ARENA_MAX": "1"})
        else:
            srv = d.under_gdb([str(exe), str(ing_log)], core, out="ingestd.out")
        d.wait_port(*INGEST, timeout=30, proc=srv)
        d.start_capture(INGEST, snaplen=128)
        gw = d.role(__file__, "sensor_gw", gw_log, 6, 2.5 if fault else 1e9, out="gw.out")
        d.wait(gw, 40)
        if fault:
            d.wait(srv, 30)
        else:
            d.signal(srv)                      # a clean stop after the streams ended
        time.sleep(0.2)
        pcap = d.finish_capture("sensor-streams.pcap")
        if fault and kernel_cores() and take_core(core.parent, srv.pid, core) is None:
            raise RuntimeError("ingestd left no core")
        if core.exists() != fault:
            raise RuntimeError("ingestd crashed or not, not as the drill wants")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:xz") as tar:
            b = (Bundle()
                 .add("ingest01/log/ingestd.log", ing_log)
                 .add("ingest01/log/sensor-gw.log", gw_log)
                 .add("ingest01/bin/ingestd", exe)
                 .add("ingest01/net/sensor-streams.pcap", pcap))
            if fault:
                b.add("ingest01/cores/core.ingestd", core)
            for entry, data, mt in b.entries:
                info = tarfile.TarInfo(entry)
                info.size, info.mtime, info.mode = len(data), int(mt), 0o644
                tar.addfile(info, io.BytesIO(data))
        (out / ("ingest-incident.tar.xz" if fault else "ingest01-weekly.tar.xz")).write_bytes(buf.getvalue())
        if not fault:
            return
        write_truth(out, NAME, codes=["DUMP.CRASH", "DUMP.ABORT"], artifact="*core.ingestd", contains=["ingestd"],
                    description="ingestd hit its assertion that a frame fits the 64 KiB scratch buffer when a sensor "
                                "on new firmware sent a 70,000-byte frame; it aborted (SIGABRT), every streaming "
                                "connection was reset by the server and reconnects were refused.")


if __name__ == "__main__":
    roles({"sensor_gw": sensor_gw})
