#!/usr/bin/env python3
"""Build the example case in examples/case-001 from real programs that really fail.

Nothing in the example is typed by hand.  This script:

1. starts a small HTTP "inventory" backend on 127.0.0.1 that answers some
   requests with 500 and one slowly;
2. runs an "orders" service client that logs with Python's logging module,
   calls the backend, tries a database port nobody listens on (connection
   refused: RST answering SYN), retries, and finally dies with an unhandled,
   chained exception (the traceback lands in its log and in a crash file);
3. captures every packet of this on the loopback interface with a raw
   AF_PACKET socket (needs root) and writes a classic pcap;
4. compiles a small C helper (``stockcalc``) that dereferences NULL, runs it
   under gdb and keeps the core file gdb writes at the fault, plus the binary;
5. packs it like a customer would: ``bundle.zip`` holding the logs, the
   capture, a nested ``crash.tar.gz`` with the core, and a config file.

Usage: python scripts/make_example.py examples/case-001
"""

from __future__ import annotations

import http.server
import io
import logging
import os
import shutil
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

BACKEND_PORT = 8080           # a port Wireshark decodes as HTTP by default
DB_PORT = 15432            # nothing listens here: connection refused
PORTS = {BACKEND_PORT, DB_PORT}

C_SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct stock { char sku[16]; int quantity; };

static struct stock *find_stock(const char *sku) {
    /* the cache lookup "forgets" to fall back to the database */
    (void)sku;
    return NULL;
}

static int reserve(const char *sku, int n) {
    struct stock *s = find_stock(sku);
    s->quantity -= n;          /* NULL dereference: SIGSEGV */
    return s->quantity;
}

int main(int argc, char **argv) {
    const char *sku = argc > 1 ? argv[1] : "SKU-1042";
    printf("reserving 3 of %s\n", sku);
    fflush(stdout);
    return reserve(sku, 3) < 0;
}
"""


class Capture(threading.Thread):
    """Capture loopback packets to/from our ports with an AF_PACKET socket."""

    def __init__(self, path: Path):
        super().__init__(daemon=True)
        self.path = path
        self.stop = threading.Event()
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.2)
        self.packets: list[tuple[float, bytes]] = []

    def _ours(self, frame: bytes) -> bool:
        if len(frame) < 14 + 20 or frame[12:14] != b"\x08\x00":
            return False
        ihl = (frame[14] & 0x0F) * 4
        proto = frame[23]
        if proto not in (6, 17) or len(frame) < 14 + ihl + 4:
            return False
        sport, dport = struct.unpack_from("!HH", frame, 14 + ihl)
        return sport in PORTS or dport in PORTS

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                frame, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            if addr[2] == socket.PACKET_OUTGOING:
                continue           # loopback shows each packet twice; keep the incoming copy
            if self._ours(frame):
                self.packets.append((time.time(), frame))

    def write(self) -> None:
        with open(self.path, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
            for ts, frame in self.packets:
                sec = int(ts)
                usec = int((ts - sec) * 1_000_000)
                f.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)))
                f.write(frame)


class Backend(http.server.BaseHTTPRequestHandler):
    calls = 0

    def do_GET(self):  # noqa: N802 - http.server API
        Backend.calls += 1
        if self.path.startswith("/api/stock/"):
            if Backend.calls == 4:
                time.sleep(1.5)             # one slow answer
            self._send(200, b'{"quantity": 7}')
        elif self.path.startswith("/api/reservations"):
            self._send(500, b'{"error": "reservation store unavailable"}')
        else:
            self._send(404, b'{"error": "not found"}')

    def _send(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):  # access log in common log format, to our file
        self.server.access_log.write("%s - - [%s] %s\n" % (self.client_address[0],
                                                          self.log_date_time_string(), fmt % args))
        self.server.access_log.flush()


def run_orders_service(log_path: Path, crash_path: Path) -> None:
    """The 'customer's' service: real calls, real failures, real log."""
    log = logging.getLogger("orders.service")
    handler = logging.FileHandler(log_path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-5s [%(threadName)s] %(name)s - %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    db_log = logging.getLogger("orders.db")
    db_log.addHandler(handler)
    db_log.setLevel(logging.DEBUG)

    log.info("orders service 4.2.1 starting, backend=http://127.0.0.1:%d", BACKEND_PORT)
    base = f"http://127.0.0.1:{BACKEND_PORT}"
    for i, sku in enumerate(["SKU-1001", "SKU-1002", "SKU-1003", "SKU-1004", "SKU-1005", "SKU-1006"]):
        t0 = time.time()
        with urllib.request.urlopen(f"{base}/api/stock/{sku}", timeout=5) as r:
            r.read()
        took = (time.time() - t0) * 1000
        level = logging.WARNING if took > 1000 else logging.DEBUG
        log.log(level, "stock lookup %s took %d ms", sku, took)
        time.sleep(0.05)

    for attempt in range(1, 4):
        try:
            with socket.create_connection(("127.0.0.1", DB_PORT), timeout=2):
                pass
        except ConnectionRefusedError as exc:
            db_log.error("connection to reservation database 127.0.0.1:%d failed (attempt %d/3): %s",
                         DB_PORT, attempt, exc)
            time.sleep(0.2 * attempt)

    for order in (88121, 88122):
        try:
            with urllib.request.urlopen(f"{base}/api/reservations?order={order}", timeout=5) as r:
                r.read()
        except urllib.error.HTTPError as exc:
            log.error("reservation for order %d failed: HTTP %d from backend", order, exc.code)
        time.sleep(0.1)

    def reserve_fallback(order: int) -> None:
        try:
            socket.create_connection(("127.0.0.1", DB_PORT), timeout=2)
        except ConnectionRefusedError as exc:
            raise RuntimeError(f"cannot reserve stock for order {order}: reservation database down") from exc

    try:
        reserve_fallback(88123)
    except RuntimeError:
        log.exception("unhandled error in order worker, shutting down")
        import traceback

        crash_path.write_text(traceback.format_exc())
    log.info("orders service stopped")
    handler.close()


def make_core(work: Path) -> tuple[Path, Path]:
    src = work / "stockcalc.c"
    src.write_text(C_SOURCE)
    exe = work / "stockcalc"
    subprocess.run(["gcc", "-g", "-O0", "-fno-omit-frame-pointer", "-o", str(exe), str(src)], check=True)
    core = work / "core.stockcalc"
    subprocess.run(["gdb", "-batch", "-nx", "-ex", "run", "-ex", f"generate-core-file {core}",
                    "--args", str(exe), "SKU-1042"], check=True, capture_output=True, text=True)
    if not core.exists():
        raise SystemExit("gdb did not write a core file")
    return exe, core


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    out = Path(sys.argv[1])
    if os.geteuid() != 0:
        print("error: capturing loopback packets needs root (AF_PACKET)", file=sys.stderr)
        return 2
    for tool in ("gcc", "gdb"):
        if shutil.which(tool) is None:
            print(f"error: {tool} is needed", file=sys.stderr)
            return 2
    work = Path(tempfile.mkdtemp(prefix="backline-example-"))
    (work / "logs").mkdir()
    cap = Capture(work / "orders-lo.pcap")
    cap.start()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", BACKEND_PORT), Backend)
    server.access_log = open(work / "logs" / "inventory-access.log", "w")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    time.sleep(0.3)
    try:
        run_orders_service(work / "logs" / "orders-service.log", work / "orders-crash.txt")
    finally:
        time.sleep(0.5)
        server.shutdown()
        server.access_log.close()
        cap.stop.set()
        cap.join()
        cap.write()
    exe, core = make_core(work)

    config = (
        "# orders service configuration (as deployed at the customer)\n"
        "[backend]\nurl = http://127.0.0.1:%d\ntimeout_s = 5\n\n"
        "[database]\nhost = 127.0.0.1\nport = %d\npool_size = 8\n" % (BACKEND_PORT, DB_PORT)
    )
    out.mkdir(parents=True, exist_ok=True)
    crash_tgz = io.BytesIO()
    with tarfile.open(fileobj=crash_tgz, mode="w:gz") as tar:
        tar.add(core, arcname="crash/core.stockcalc")
        tar.add(exe, arcname="crash/stockcalc")
        tar.add(work / "orders-crash.txt", arcname="crash/orders-crash.txt")
    bundle = out / "bundle.zip"
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(work / "logs" / "orders-service.log", "logs/orders-service.log")
        z.write(work / "logs" / "inventory-access.log", "logs/inventory-access.log")
        z.write(work / "orders-lo.pcap", "capture/orders-lo.pcap")
        z.writestr("config/orders.ini", config)
        z.writestr("crash.tar.gz", crash_tgz.getvalue())
    (out / "README.md").write_text(
        "# Example case ESC-0001: orders fail to reserve stock\n\n"
        "Made by `scripts/make_example.py` from real programs (see its docstring): an orders\n"
        "service whose reservation database refuses connections and whose backend answers\n"
        "HTTP 500, a loopback packet capture of all of it, and a native helper that crashes\n"
        "on a NULL pointer (core file + binary).  `make demo` analyses this folder.\n"
    )
    print(f"wrote {bundle} ({bundle.stat().st_size} bytes); {len(cap.packets)} packets captured")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
