"""Descriptor exhaustion: a session service leaks a file per request until accept() fails with EMFILE.

Real programs: ``sessiond`` (Python HTTP service on 127.0.21.2:8080 with its own accept loop and
``RLIMIT_NOFILE`` 96, as its unit file sets) whose 2.1 release opens the audit file on every
login and never closes it; ``kiosk`` clients (Python, JSON lines) logging in.  When the
descriptors run out, ``accept()`` fails with ``[Errno 24] Too many open files`` (logged with
the traceback), the pending connections wait in the backlog unanswered, and the kiosks' requests
time out.  Noise: a chronic session-GC warning, an old core of an unrelated tool, 401s for wrong
PINs, healthy logins.  Layout: an uncompressed tar.
"""

from __future__ import annotations

import logging
import os
import resource
import socket
import threading
import time
from pathlib import Path

from kit import Bundle, Drill, old_crash, roles, ticks, write_truth
from logfmt import at, close, setup

NAME = "fd-exhaustion"
CLASS = "descriptor exhaustion"
SEED = 1111
SESSIOND = ("127.0.21.2", 8080)


def sessiond(log_path: str, audit_dir: str) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (96, 96))
    os.chdir(audit_dir)                             # the service runs in /var/lib/sessiond
    log = setup(log_path, "python-threads", "sessiond.http", "sessiond.accept", "sessiond.audit")
    alog = logging.getLogger("sessiond.accept")
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(SESSIOND)
    srv.listen(32)
    log.info("sessiond 2.1.0 listening on %s:%d (nofile limit 96)", *SESSIOND)
    audit_files = []

    def handle(conn: socket.socket) -> None:
        with conn:
            req = conn.recv(4096).decode(errors="replace")
            line = req.split("\r\n", 1)[0]
            pin_ok = "pin=0000" not in line
            try:
                audit = open("audit.log", "a")       # 2.1: opened per login, never closed
                audit_files.append(audit)
                audit.write(f"{time.time():.3f} {line}\n")
                audit.flush()
            except OSError:
                logging.getLogger("sessiond.audit").exception("cannot write the audit record for %r", line)
                conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            status = b"200 OK" if pin_ok else b"401 Unauthorized"
            conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    failures = 0
    while True:
        try:
            conn, _peer = srv.accept()
        except OSError:
            failures += 1
            if failures in (1, 10) or failures % 50 == 0:
                alog.exception("accept() on %s:%d failed (%d times so far)", *SESSIOND, failures)
            time.sleep(0.1)
            continue
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def kiosks(log_path: str, seconds: str) -> None:
    log = setup(log_path, "json", "kiosk", program="kiosk")
    end = time.time() + float(seconds)

    def kiosk(n: int) -> None:
        i = 0
        while time.time() < end:
            i += 1
            pin = "0000" if i % 9 == 0 else f"{(n * 7919 + i) % 10000:04d}"
            try:
                with socket.create_connection(SESSIOND, timeout=2) as s:
                    s.sendall(f"POST /login?kiosk={n}&pin={pin} HTTP/1.1\r\nHost: sessiond\r\n\r\n".encode())
                    head = s.recv(256).split(b"\r\n", 1)[0].decode()
                if " 200 " in head + " ":
                    log.info("kiosk %d: login ok", n)
                else:
                    log.warning("kiosk %d: login refused: %s", n, head)
            except OSError as exc:
                log.error("kiosk %d: login request to sessiond %s:%d failed: %s", n, *SESSIOND, exc)
            time.sleep(0.08)

    ts = [threading.Thread(target=kiosk, args=(n,), name=f"kiosk-{n}") for n in range(1, 4)]
    [t.start() for t in ts]
    [t.join() for t in ts]


def build(out: Path) -> None:
    with Drill(NAME, SEED) as d:
        rng = d.rng
        now = time.time()
        old_exe, old_core = old_crash(d, "csvexport")
        slog, klog = d.path("logs/sessiond.log"), d.path("logs/kiosk.jsonl")
        audit = d.path("audit/x").parent
        lg = setup(slog, "python-threads", "sessiond.gc")
        for t in sorted(ticks(rng, now - 9 * 3600, now - 30, 700)):
            with at(t):
                lg.warning("session GC took %d ms (%d sessions)", rng.randint(600, 1200), rng.randint(2000, 5000))
        close(lg)
        svc = d.role(__file__, "sessiond", slog, audit, out="sessiond.out")
        d.wait_port(*SESSIOND, proc=svc)
        d.start_capture(SESSIOND)
        k = d.role(__file__, "kiosks", klog, 7, out="kiosks.out")
        d.wait(k, 40)
        time.sleep(0.3)
        pcap = d.finish_capture("sessiond-8080.pcap")
        d.signal(svc)
        if "Too many open files" not in slog.read_text():
            raise RuntimeError("sessiond did not run out of descriptors")
        b = (Bundle()
             .add("sessiond/logs/sessiond.log", slog)
             .add("sessiond/etc/sessiond.service", "[Service]\nExecStart=/usr/bin/sessiond\nLimitNOFILE=96\n")
             .add("kiosk/kiosk.jsonl", klog)
             .add("net/sessiond-8080.pcap", pcap)
             .add("sessiond/crash/core.csvexport", old_core, mtime=now - 8 * 3600)
             .add("sessiond/crash/csvexport", old_exe, mtime=now - 8 * 3600))
        import io
        import tarfile

        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for entry, data, mt in b.entries:
                info = tarfile.TarInfo(entry)
                info.size, info.mtime, info.mode = len(data), int(mt), 0o644
                tar.addfile(info, io.BytesIO(data))
        (out / "kiosk-outage.tar").write_bytes(buf.getvalue())
        write_truth(out, NAME, codes=["LOG.ERROR_TEMPLATE", "DUMP.PYTHON_EXCEPTION", "LOG.FIRST_ERROR"],
                    artifact="*sessiond.log", contains=["Too many open files"],
                    description="sessiond 2.1 opened the audit file on every login without closing it; at its "
                                "96-descriptor limit accept() failed with EMFILE, connections waited unanswered in "
                                "the backlog and the kiosks' logins timed out.")


if __name__ == "__main__":
    roles({"sessiond": sessiond, "kiosks": kiosks})
