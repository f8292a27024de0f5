"""DNS failure: a configuration change names a host that does not exist (NXDOMAIN).

Real programs: ``zonesrv`` (a small authoritative/recursive stand-in on 127.0.44.53:53 answering
from its zone tables, NXDOMAIN for names it does not know), ``inventory-db`` (a TCP line
service on 127.0.44.7:6432), ``stock-sync`` (a Python service on 127.0.44.2:8080 that keeps
stock levels fresh from inventory-db and serves them over HTTP; its ``db_host`` is a short name
completed by the resolver's search list; run in its own mount namespace with an
``/etc/resolv.conf`` naming zonesrv, so glibc's stub resolver really asks it), and a ``curl``
probe in a shell loop asking stock-sync for stock levels.  A deploy edits ``stock-sync.conf``
(``db_host = inventroy-db``, two letters swapped) and restarts stock-sync: every lookup walks
the search list (``inventroy-db.svc.corp.example``, ``inventroy-db.corp.example``, then the bare
name), each answered NXDOMAIN; stock-sync logs ``[Errno -2] Name or service not known``, its
stock data goes stale and it answers 503, which curl reports.  Noise: benign NXDOMAINs all
through the capture (the NTP client's short name ``ntp`` tried in the first search domain before
the second answers, proxy auto-discovery ``wpad``), a chronic warning, an old core of an
unrelated tool, healthy lookups and syncs before the deploy.  Layout: a zip of the host's
``var/log`` and ``etc``, the capture beside it in a folder.
"""

from __future__ import annotations

import http.server
import json
import logging
import socket
import struct
import sys
import threading
import time
from pathlib import Path

from kit import Bundle, Drill, DrillError, old_crash, roles, ticks, write_truth
from logfmt import at, setup

NAME = "dns-typo"
CLASS = "DNS failure (NXDOMAIN for a mistyped name)"
SEED = 1117
RESOLVER = ("127.0.44.53", 53)
DB = ("127.0.44.7", 6432)
API = ("127.0.44.2", 8080)
RECORDS = {
    "inventory-db.svc.corp.example": DB[0],
    "stock-sync.svc.corp.example": API[0],
    "ntp.corp.example": "127.0.44.9",
    "mail.corp.example": "127.0.44.10",
}
GOOD_CONF = "[inventory]\ndb_host = inventory-db\ndb_port = 6432\nrefresh_s = 0.5\nstale_after_s = 2\n"
BAD_CONF = "[inventory]\ndb_host = inventroy-db\ndb_port = 6432\nrefresh_s = 0.5\nstale_after_s = 2\n"
RESOLV = f"nameserver {RESOLVER[0]}\nsearch svc.corp.example corp.example\noptions ndots:1 timeout:1 attempts:1\n"


# -- zonesrv ---------------------------------------------------------------------------------------
def zonesrv(log_path: str) -> None:
    log = setup(log_path, "syslog", "zonesrv", program="zonesrv")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(RESOLVER)
    log.info("zonesrv 1.4 serving %d records on %s#%d", len(RECORDS), *RESOLVER)
    while True:
        pkt, peer = sock.recvfrom(1500)
        qid = struct.unpack_from("!H", pkt)[0]
        labels, off = [], 12
        while pkt[off]:
            labels.append(pkt[off + 1: off + 1 + pkt[off]].decode("ascii", "replace"))
            off += 1 + pkt[off]
        name = ".".join(labels).lower()
        qtype = struct.unpack_from("!H", pkt, off + 1)[0]
        question = pkt[12: off + 5]
        answers, rcode = b"", 0
        if name in RECORDS:
            if qtype == 1:
                answers = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(RECORDS[name])
        else:
            rcode = 3
        sock.sendto(struct.pack("!HHHHHH", qid, 0x8580 | rcode, 1, 1 if answers else 0, 0, 0) + question + answers,
                    peer)


# -- inventory-db ----------------------------------------------------------------------------------
def inventory_db(log_path: str) -> None:
    log = setup(log_path, "python", "inventory-db", program="inventory-db")
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(DB)
    srv.listen(16)
    log.info("inventory-db ready on %s:%d", *DB)

    def serve(c: socket.socket) -> None:
        with c, c.makefile("rw") as f:
            for line in f:
                sku = line.strip()
                f.write(json.dumps({"sku": sku, "on_hand": 40 + len(sku)}) + "\n")
                f.flush()

    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


# -- stock-sync ------------------------------------------------------------------------------------
def stock_sync(conf: str, log_path: str, seconds: str) -> None:
    import configparser

    log = setup(log_path, "log4j", "stock-sync", "stock-sync.ntp", program="stock-sync")
    ntp = logging.getLogger("stock-sync.ntp")
    cp = configparser.ConfigParser()
    cp.read(conf)
    host, port = cp["inventory"]["db_host"], int(cp["inventory"]["db_port"])
    refresh, stale_after = float(cp["inventory"]["refresh_s"]), float(cp["inventory"]["stale_after_s"])
    log.info("configuration loaded from %s: db_host=%s db_port=%d", conf, host, port)
    state = {"at": time.time(), "levels": {}}

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            age = time.time() - state["at"]
            if age > stale_after:
                body = json.dumps({"error": "stock data stale", "age_s": round(age, 1)}).encode()
                self.send_response(503)
            else:
                body = json.dumps({"sku": self.path.rsplit("/", 1)[-1], "levels": len(state["levels"])}).encode()
                self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(API, H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    log.info("serving stock levels on %s:%d", *API)
    end = time.time() + float(seconds)
    n = 0
    while time.time() < end:
        n += 1
        if n % 4 == 0:                                    # the clock's NTP server and proxy discovery
            for short in ("ntp", "wpad"):
                try:
                    socket.getaddrinfo(short, 123 if short == "ntp" else 80, socket.AF_INET, socket.SOCK_DGRAM)
                except socket.gaierror:
                    pass
        try:
            addr = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)[0][4]
            with socket.create_connection(addr, timeout=2) as c, c.makefile("rw") as f:
                for sku in ("sku-1001", "sku-1002", "sku-1003"):
                    f.write(sku + "\n")
                    f.flush()
                    state["levels"][sku] = json.loads(f.readline())["on_hand"]
            state["at"] = time.time()
            log.debug("stock levels refreshed (%d skus)", len(state["levels"]))
        except OSError as exc:
            log.error("stock refresh failed: cannot connect to inventory database %s:%d: %s", host, port, exc)
            age = time.time() - state["at"]
            if age > stale_after:
                log.warning("stock data is %.1f s old (stale after %.0f s): answering 503", age, stale_after)
        time.sleep(refresh)
    srv.shutdown()
    log.info("stock-sync stopping")


def probe_cmd(log: Path) -> list[str]:
    """A storefront health probe: curl in a shell loop, one line per try with a time stamp."""
    url = f"http://{API[0]}:{API[1]}/stock/sku-1001"
    script = ('while :; do r=$(curl -sS -f -m 2 -o /dev/null -w "%{http_code}" "$0" 2>&1); '
              'echo "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ) storefront-probe GET $0 -> $r" >> "$1"; sleep 0.4; done')
    return ["sh", "-c", script, url, str(log)]


# -- the drill ------------------------------------------------------------------------------------------
def history(d: Drill, slog_path: Path, probe: Path, start: float, end: float) -> None:
    rng = d.rng
    slog = setup(slog_path, "log4j", "stock-sync", program="stock-sync")
    events = [(t, "warn") for t in ticks(rng, start, end, 1500)]
    events += [(t, "ok") for t in ticks(rng, start, end, 300)]
    for t, what in sorted(events):
        with at(t):
            if what == "warn":
                slog.warning("clock drift %d ms against ntp (threshold 50 ms)", rng.randint(51, 90))
            else:
                slog.info("stock levels refreshed %d times in 5 min", rng.randint(500, 600))
    for h in slog.handlers[:]:
        h.close()
        slog.removeHandler(h)
    with open(probe, "w") as f:
        for t in ticks(rng, start, end, 600):
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"
            f.write(f"{stamp} storefront-probe GET http://{API[0]}:{API[1]}/stock/sku-1001 -> 200\n")


def build(out: Path, fault: bool = True, name: str = NAME, seed: int = SEED) -> None:
    """The incident; with ``fault=False`` the same services on a normal day (no deploy)."""
    with Drill(name, seed) as d:
        me = __file__
        now = time.time()
        old_exe, old_core = old_crash(d, "csvexport")
        conf = d.write("etc/stock-sync/stock-sync.conf", GOOD_CONF)
        resolv = d.write("etc/resolv.conf", RESOLV)
        slog, zlog, dlog = d.path("var/log/stock-sync.log"), d.path("var/log/zonesrv.log"), d.path("var/log/inventory-db.log")
        probe = d.path("var/log/storefront-probe.log")
        history(d, slog, probe, now - 6 * 3600, now - 40)
        d.start_capture(RESOLVER, DB, API)
        zs = d.role(me, "zonesrv", zlog, out="zonesrv.out")
        d.wait_port(*RESOLVER, proc=zs, udp=True)
        db = d.role(me, "inventory_db", dlog, out="db.out")
        d.wait_port(*DB, proc=db)
        svc = d.role(me, "stock_sync", conf, slog, 30, resolv=resolv, out="sync1.out")
        d.wait_port(*API, proc=svc)
        pr = d.spawn(probe_cmd(probe), out="probe.out")
        time.sleep(3.0)
        if fault:
            conf.write_text(BAD_CONF)                     # the deploy: an edit and a restart
            d.signal(svc)
            svc = d.role(me, "stock_sync", conf, slog, 9, resolv=resolv, out="sync2.out")
        time.sleep(6.5)
        d.signal(pr)                                      # the probe stops before the service does
        time.sleep(0.2)
        d.signal(svc)
        time.sleep(0.3)
        pcap = d.finish_capture("host-lo.pcap")
        d.signal(zs)
        d.signal(db)
        text = slog.read_text()
        if ("Name or service not known" in text) != fault or ("-> 200" not in probe.read_text()):
            raise DrillError("stock-sync's lookups did not end as expected:\n" + text[-800:])
        out.mkdir(parents=True, exist_ok=True)
        old = now - 4.5 * 3600
        (out / "inv-host-logs.zip").write_bytes(
            Bundle()
            .add("var/log/stock-sync/stock-sync.log", slog)
            .add("var/log/zonesrv/zonesrv.log", zlog)
            .add("var/log/inventory-db/inventory-db.log", dlog)
            .add("var/log/storefront/probe.log", probe)
            .add("etc/stock-sync/stock-sync.conf", conf)
            .add("etc/resolv.conf", resolv)
            .add("var/crash/core.csvexport", old_core, mtime=old)
            .add("var/crash/csvexport", old_exe, mtime=old)
            .zip_bytes())
        Bundle().add("host-lo.pcap", pcap).write_dir(out / "capture")
        if not fault:
            return
        write_truth(out, NAME, codes=["NET.DNS.NXDOMAIN"], artifact="*host-lo.pcap", contains=["inventroy-db"],
                    description="A deploy set db_host = inventroy-db (two letters swapped) in stock-sync.conf; "
                                "every lookup of the name got NXDOMAIN (through the search list), stock-sync "
                                "could not reach its inventory database, its data went stale and it answered "
                                "503 to the storefront probe.")


if __name__ == "__main__":
    roles({"zonesrv": zonesrv, "inventory_db": inventory_db, "stock_sync": stock_sync})
