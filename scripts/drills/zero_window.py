"""Zero-window stall: the metrics archiver stops reading during a compaction; the relay's sends block.

Real programs: ``archiver`` (Python TCP server on 127.0.8.2:9100 with a 4 KiB receive buffer,
ISO-stamped log) whose reader thread needs the segment lock that a compaction holds for
seconds; ``alerting`` (the same program on 127.0.8.3:9100, no compaction: it keeps reading);
``metrics-relay`` (Python, syslog layout) streaming samples to both with a 3 s send timeout.
During the compaction the archiver's receive window drops to zero and stays there, the
relay's sends time out and it starts dropping samples.  Noise: a chronic future-timestamp
warning, an old UnicodeDecodeError traceback in the archiver's log, healthy streaming to
alerting.  Layout: a folder with a zip of the archiver logs, a gzip-compressed relay log and
the capture.
"""

from __future__ import annotations

import gzip
import logging
import socket
import threading
import time
from pathlib import Path

from kit import Bundle, Drill, roles, ticks, write_truth
from logfmt import at, close, setup

NAME = "zero-window"
CLASS = "zero-window stall"
SEED = 1109
ARCHIVER = ("127.0.8.2", 9100)
ALERTING = ("127.0.8.3", 9100)


def archiver(log_path: str, host: str, compact_after: str) -> None:
    name = "archiver" if host == ARCHIVER[0] else "alerting"
    log = setup(log_path, "iso", f"{name}.ingest", f"{name}.compactor", program=name)
    segment_lock = threading.Lock()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    srv.bind((host, 9100))
    srv.listen(8)
    log.info("%s 3.3.1 accepting samples on %s:9100", name, host)
    samples = [0]

    def compactor() -> None:
        clog = logging.getLogger(f"{name}.compactor")
        if float(compact_after) <= 0:
            return
        time.sleep(float(compact_after))
        clog.info("compaction of segments 0412-0419 started")
        with segment_lock:
            time.sleep(7.5)                            # merging on a slow volume
        clog.info("compaction finished")

    def reader(conn: socket.socket, peer) -> None:
        log.info("relay connected from %s:%d", *peer)
        f = conn.makefile("rb")
        while True:
            line = f.readline()
            if not line:
                break
            with segment_lock:
                samples[0] += 1
            if samples[0] % 5000 == 0:
                log.debug("%d samples appended", samples[0])
        log.info("relay %s:%d disconnected after %d samples", *peer, samples[0])

    threading.Thread(target=compactor, daemon=True, name="compactor").start()
    while True:
        conn, peer = srv.accept()
        threading.Thread(target=reader, args=(conn, peer), daemon=True, name="reader").start()


def relay(log_path: str, seconds: str) -> None:
    log = setup(log_path, "syslog", "relay", program="metrics-relay")
    conns = {}
    for target in (ARCHIVER, ALERTING):
        s = socket.create_connection(target, timeout=3.0)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        conns[target] = s
        log.info("streaming to %s:%d", *target)
    dropped = {t: 0 for t in conns}
    end = time.time() + float(seconds)
    seq = 0
    while time.time() < end and conns:
        seq += 1
        chunk = b"".join(b"cpu.host%03d.user %d.%02d %d\n" % (i % 120, seq % 97, i % 100, seq) for i in range(60))
        for target, s in list(conns.items()):
            try:
                s.sendall(chunk)
            except (socket.timeout, TimeoutError):
                dropped[target] += 60
                log.error("send to %s:%d timed out after 3.0 s; %d samples dropped so far", *target, dropped[target])
                if dropped[target] >= 180:
                    log.error("giving up on %s:%d: receiver not reading", *target)
                    s.close()
                    del conns[target]
        time.sleep(0.01)
    for s in conns.values():
        s.close()


def history(d: Drill, arch_log: Path, relay_log: Path, start: float, end: float) -> None:
    rng = d.rng
    alog = setup(arch_log, "iso", "archiver.ingest", program="archiver")
    rlog = setup(relay_log, "syslog", "relay", program="metrics-relay")
    events = [(t, "future") for t in ticks(rng, start, end, 700)]
    events += [(t, "ok") for t in ticks(rng, start, end, 300)]
    events.append((end - 3.6 * 3600, "crash"))
    for t, what in sorted(events):
        with at(t):
            if what == "future":
                rlog.warning("sample from db%02d has a timestamp %d s in the future; dropped", rng.randint(1, 9),
                             rng.randint(31, 90))
            elif what == "ok":
                alog.info("segment %04d sealed (%d samples)", rng.randint(300, 411), rng.randint(40000, 90000))
            else:
                raw = b"mem.host\xff01.used 12\n"
                try:
                    parse_sample(raw)
                except UnicodeDecodeError:
                    alog.exception("rejecting malformed sample line")
    close(alog, rlog)


def parse_sample(raw: bytes) -> tuple[str, float]:
    name, value = raw.decode("utf-8").split()
    return name, float(value)


def build(out: Path) -> None:
    with Drill(NAME, SEED) as d:
        now = time.time()
        alog, llog, rlog = d.path("logs/archiver.log"), d.path("logs/alerting.log"), d.path("logs/relay.log")
        history(d, alog, rlog, now - 6 * 3600, now - 20)
        arch = d.role(__file__, "archiver", alog, ARCHIVER[0], 2.5, out="archiver.out")
        alert = d.role(__file__, "archiver", llog, ALERTING[0], 0, out="alerting.out")
        d.wait_port(*ARCHIVER, proc=arch)
        d.wait_port(*ALERTING, proc=alert)
        d.start_capture(ARCHIVER, ALERTING, snaplen=256)
        rel = d.role(__file__, "relay", rlog, 11, out="relay.out")
        d.wait(rel, 40)
        time.sleep(0.3)
        pcap = d.finish_capture("relay-to-archiver.pcap")
        d.signal(arch)
        d.signal(alert)
        if "timed out" not in rlog.read_text():
            raise RuntimeError("the relay never blocked")
        bundle = out / "bundle"
        (Bundle()
         .add("archiver-logs.zip", Bundle().add("archiver.log", alog).add("alerting.log", llog).zip_bytes())
         .add("metrics-relay.log.gz", gzip.compress(rlog.read_bytes(), mtime=0))
         .add("relay-to-archiver.pcap", pcap)).write_dir(bundle)
        write_truth(out, NAME, codes=["NET.TCP.ZERO_WINDOW_STALL"], artifact="*.pcap",
                    contains=["127.0.8.2"], data_at_least={"duration_s": 1.0},
                    description="The archiver (127.0.8.2:9100) stopped reading its socket while a compaction held "
                                "the segment lock; its receive window went to zero, the relay's sends timed out and "
                                "it dropped samples, then gave up on the archiver.")


if __name__ == "__main__":
    roles({"archiver": archiver, "relay": relay})
