"""Disk full: the spool filesystem of a document store fills up; writes fail with ENOSPC.

Real programs: a 1.5 MiB tmpfs mounted by the generator as the spool; ``docstore`` (Python HTTP
service on 127.0.7.2:8080, ``logging``) writes every uploaded document and a write-ahead
journal there, while its audit exporter leaves growing temporary files on the same spool.  When
the filesystem is full, document writes fail with ``OSError: [Errno 28] No space left on
device`` (logged with the traceback), journal appends and checkpoints fail after it, uploads get
507 and the ``ingest-client`` logs the failures.  ``df`` output of the full spool is in the
bundle.  Noise: a chronic slow-fsync warning, 404s for missing documents, an old core of an
unrelated report tool, healthy uploads.  Layout: zip with a nested tar.gz of the logs.
"""

from __future__ import annotations

import errno
import http.server
import logging
import os
import threading
import time
from pathlib import Path

from kit import Bundle, Drill, old_crash, request, roles, ticks, write_truth
from logfmt import at, close, setup

NAME = "disk-full"
CLASS = "disk full"
SEED = 1108
DOCSTORE = ("127.0.7.2", 8080)


def docstore(log_path: str, root: str, exporter_start: str) -> None:
    os.chdir(root)                                  # the service runs from /var/lib/docstore
    log = setup(log_path, "python", "docstore.api", "docstore.journal", "docstore.audit", "docstore.monitor")
    jlog = logging.getLogger("docstore.journal")
    Path("spool/docs").mkdir(parents=True, exist_ok=True)
    journal = open("spool/journal.wal", "ab")
    lock = threading.Lock()
    stored = [0]

    def journal_append(line: bytes) -> bool:
        try:
            with lock:
                journal.write(line)
                journal.flush()
                os.fsync(journal.fileno())
            return True
        except OSError as exc:
            jlog.error("journal append failed: %s", exc)
            return False

    class H(http.server.BaseHTTPRequestHandler):
        def do_PUT(self):  # noqa: N802
            doc = self.path.rsplit("/", 1)[-1]
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = Path("spool/docs") / f"{doc}.json"
            try:
                with open(path, "wb") as f:
                    f.write(body)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as exc:
                log.exception("storing document %s (%d bytes) failed", doc, len(body))
                path.unlink(missing_ok=True)
                return self._send(507 if exc.errno == errno.ENOSPC else 500, b'{"error":"storage"}')
            if not journal_append(b"PUT %s %d\n" % (doc.encode(), len(body))):
                return self._send(500, b'{"error":"journal"}')
            stored[0] += 1
            self._send(201, b'{"stored":true}')

        def do_GET(self):  # noqa: N802
            path = Path("spool/docs") / f"{self.path.rsplit('/', 1)[-1]}.json"
            if not path.exists():
                return self._send(404, b'{"error":"no such document"}')
            self._send(200, path.read_bytes())

        def _send(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    def audit_exporter() -> None:
        time.sleep(float(exporter_start))
        alog = logging.getLogger("docstore.audit")
        alog.info("audit export started (batch 2291, temporary files in spool/tmp)")
        Path("spool/tmp").mkdir(exist_ok=True)
        part = 0
        while True:
            part += 1
            try:
                with open(f"spool/tmp/audit-2291.part{part:03d}", "wb") as f:
                    f.write(os.urandom(96 * 1024))
            except OSError:
                return                              # the exporter stalls silently, its files stay
            time.sleep(0.15)

    def checkpoint() -> None:
        mon = logging.getLogger("docstore.monitor")
        warned = False
        while True:
            time.sleep(1.0)
            st = os.statvfs("spool")
            used = 1 - st.f_bavail / st.f_blocks
            if used > 0.85 and not warned:
                mon.warning("spool filesystem %.0f%% full", used * 100)
                warned = True
            try:
                with open("spool/checkpoint.tmp", "wb") as f:
                    f.write(b"%d\n" % stored[0] * 2048)
                os.replace("spool/checkpoint.tmp", "spool/checkpoint")
            except OSError as exc:
                jlog.error("checkpoint failed: %s", exc)

    log.info("docstore 2.0.4 listening on %s:%d, spool /var/lib/docstore/spool", *DOCSTORE)
    threading.Thread(target=audit_exporter, daemon=True, name="audit").start()
    threading.Thread(target=checkpoint, daemon=True, name="checkpoint").start()
    http.server.ThreadingHTTPServer(DOCSTORE, H).serve_forever()


def history(d: Drill, log_path: Path, client_log: Path, start: float, end: float) -> None:
    rng = d.rng
    log = setup(log_path, "python", "docstore.journal", "docstore.api")
    clog = setup(client_log, "log4j", "ingest.Client")
    events = [(t, "fsync") for t in ticks(rng, start, end, 1000)]
    events += [(t, "ok") for t in ticks(rng, start, end, 200)]
    for t, what in sorted(events):
        with at(t):
            if what == "fsync":
                log.warning("slow fsync on journal: %d ms", rng.randint(210, 480))
            else:
                clog.info("batch of %d documents uploaded", rng.randint(5, 40))
    close(log, clog)


def build(out: Path, fault: bool = True, name: str = NAME, seed: int = SEED) -> None:
    """The incident; with ``fault=False`` the same services on a normal day (a healthy bundle)."""
    with Drill(name, seed) as d:
        rng = d.rng
        now = time.time()
        old_exe, old_core = old_crash(d, "reportgen")
        root = d.path("var-lib-docstore/x").parent
        d.mount_tmpfs("var-lib-docstore/spool", "1536k")
        dlog, clog = d.path("logs/docstore.log"), d.path("logs/ingest-client.log")
        history(d, dlog, clog, now - 11 * 3600, now - 20)
        svc = d.role(__file__, "docstore", dlog, root, 1.5 if fault else 1e9, out="docstore.out")
        d.wait_port(*DOCSTORE, proc=svc)
        d.start_capture(DOCSTORE)
        cl = setup(clog, "log4j", "ingest.Client")
        base = f"http://{DOCSTORE[0]}:{DOCSTORE[1]}/docs"
        failures = 0
        for i in range(70):
            doc = 50100 + i
            if rng.random() < 0.1:
                status, _ = request("GET", f"{base}/{rng.randint(1000, 2000)}")
                if status == 404:
                    cl.warning("document lookup returned 404 (stale reference)")
            status, _ = request("PUT", f"{base}/{doc}", bytes(rng.randint(4000, 12000)))
            if status == 201:
                cl.debug("document %d stored", doc)
            else:
                failures += 1
                cl.error("upload of document %d failed: HTTP %d from docstore", doc, status)
            time.sleep(0.08)
        df = d.run(["df", "-k", str(root / "spool")]).stdout.replace(str(root / "spool"), "/var/lib/docstore/spool")
        time.sleep(1.2)
        pcap = d.finish_capture("docstore-8080.pcap")
        d.signal(svc)
        for h in cl.handlers[:]:
            h.close()
            cl.removeHandler(h)
        if ("No space left on device" in dlog.read_text()) != fault or bool(failures) != fault:
            raise RuntimeError("the spool filled up or not, not as the drill wants")

        old = now - 7.5 * 3600
        logs = (Bundle()
                .add("docstore/docstore.log", dlog)
                .add("ingest/ingest-client.log", clog))
        (out / ("docstore-ticket-5120.zip" if fault else "docstore-weekly-check.zip")).write_bytes(
            Bundle()
            .add("logs.tar.gz", logs.tgz_bytes())
            .add("diag/df-k.txt", "$ df -k /var/lib/docstore/spool\n" + df)
            .add("diag/docstore-8080.pcap", pcap)
            .add("cores/core.reportgen", old_core, mtime=old)
            .add("cores/reportgen", old_exe, mtime=old)
            .zip_bytes())
        if not fault:
            return
        write_truth(out, NAME, codes=["LOG.ERROR_TEMPLATE", "DUMP.PYTHON_EXCEPTION", "LOG.FIRST_ERROR"],
                    artifact="*docstore.log", contains=["No space left on device"],
                    description="The docstore spool filesystem filled up (the audit exporter's temporary files); "
                                "document writes, journal appends and checkpoints failed with ENOSPC and uploads "
                                "were answered 507.")


if __name__ == "__main__":
    roles({"docstore": docstore})
