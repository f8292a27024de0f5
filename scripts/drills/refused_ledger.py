"""Refused dependency: the checkout service's ledger database stops listening.

Real programs: nginx (front end, proxy to checkout), ``checkout`` (Python HTTP service, logs with
``logging``), ``ledgerd`` (a line-protocol TCP database stand-in).  Healthy traffic flows for a
few seconds; then ``ledgerd`` is stopped (SIGTERM) and not restarted: every new connection to
127.0.1.3:25433 is refused (RST answering SYN), checkout logs connection errors and answers
503, nginx logs the 503s.  Noise: a chronic slow-request warning all day, an old KeyError
traceback from hours earlier, 404s for a favicon, healthy 200s.  Layout: one zip.
"""

from __future__ import annotations

import http.server
import logging
import socket
import socketserver
import sys
import threading
import time
from pathlib import Path

from kit import Bundle, Drill, request, roles, ticks, write_truth
from logfmt import at, setup

NAME = "refused-ledger"
CLASS = "refused dependency"
SEED = 1101
LEDGER = ("127.0.1.3", 25433)
CHECKOUT = ("127.0.1.2", 8080)
FRONT = ("127.0.1.1", 80)

NGINX = """
log_format combined_rt '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
                       '"$http_referer" "$http_user_agent" rt=$request_time uct="$upstream_connect_time"';
access_log {prefix}/logs/access.log combined_rt;
server {
    listen 127.0.1.1:80;
    location /api/ { proxy_pass http://127.0.1.2:8080; proxy_read_timeout 5s; }
    location / { return 404; }
}
"""


PROMOS = {"SPRING10": 0.10, "SUMMER15": 0.15}


def promo_discount(code: str) -> float:
    return PROMOS[code]


# -- programs --------------------------------------------------------------------------------
def ledger_query(line: str) -> str:
    with socket.create_connection(LEDGER, timeout=2) as s:
        s.sendall(line.encode() + b"\n")
        return s.makefile().readline().strip()


def checkout(log_path: str) -> None:
    log = setup(log_path, "python-threads", "checkout.http", "checkout.ledger", "checkout.reconcile")
    lg = logging.getLogger("checkout.ledger")
    failures = [0]

    def call(line: str) -> str | None:
        try:
            answer = ledger_query(line)
            failures[0] = 0
            return answer
        except ConnectionRefusedError as exc:
            failures[0] += 1
            lg.error("ledger query %r failed: could not connect to ledger-db at %s:%d: %s",
                     line.split()[0], *LEDGER, exc)
            if failures[0] == 5:
                lg.warning("circuit breaker for ledger-db opened after 5 consecutive failures")
            return None

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path.startswith("/api/cart/"):
                t0 = time.monotonic()
                answer = call(f"BALANCE {self.path.rsplit('/', 1)[-1]}")
                took = (time.monotonic() - t0) * 1000
                if answer is None:
                    return self._send(503, b'{"error":"ledger unavailable"}')
                if took > 300:
                    log.warning("slow request GET %s took %d ms", self.path, took)
                return self._send(200, b'{"balance":"%s"}' % answer.encode())
            self._send(404, b"{}")

        def do_POST(self):  # noqa: N802
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n).decode()
            answer = call(f"DEBIT {body}")
            if answer is None:
                log.error("checkout of basket %s failed: ledger unavailable, answering 503", body)
                return self._send(503, b'{"error":"try again later"}')
            log.info("checkout of basket %s committed (%s)", body, answer)
            self._send(200, b'{"ok":true}')

        def _send(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *args):
            log.debug("%s %s", self.address_string(), fmt % args)

    def reconcile() -> None:
        rec = logging.getLogger("checkout.reconcile")
        while True:
            time.sleep(0.8)
            answer = call("PENDING")
            if answer is not None:
                rec.debug("reconciled %s pending entries", answer)

    server = http.server.ThreadingHTTPServer(CHECKOUT, Handler)
    log.info("checkout 3.14.2 listening on %s:%d, ledger-db at %s:%d", *CHECKOUT, *LEDGER)
    threading.Thread(target=reconcile, daemon=True, name="reconciler").start()
    server.serve_forever()


def ledgerd() -> None:
    import signal

    class H(socketserver.StreamRequestHandler):
        def handle(self):
            words = self.rfile.readline().decode().split()
            verb = words[0] if words else ""
            self.wfile.write({"BALANCE": b"120.50\n", "DEBIT": b"OK txn=%d\n" % (int(time.time() * 1000) % 100000),
                              "PENDING": b"0\n"}.get(verb, b"ERR unknown\n"))

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    srv = socketserver.ThreadingTCPServer(LEDGER, H)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    srv.serve_forever()


# -- the drill -------------------------------------------------------------------------------
def history(d: Drill, log_path: Path, start: float, end: float) -> None:
    """The working day before the incident, in checkout's own log."""
    log = setup(log_path, "python-threads", "checkout.http", "checkout.ledger", "checkout.reconcile",
                "checkout.promo")
    rng = d.rng
    events = [(t, "slow") for t in ticks(rng, start, end, 900)]
    events += [(t, "ok") for t in ticks(rng, start, end, 240)]
    events.append((end - 4.2 * 3600, "crash"))
    for t, what in sorted(events):
        with at(t):
            if what == "slow":
                log.warning("slow request GET /api/cart/%d took %d ms", rng.randint(1000, 9999), rng.randint(320, 900))
            elif what == "ok":
                logging.getLogger("checkout.reconcile").info("reconciled %d pending entries", rng.randint(0, 4))
            else:
                try:
                    promo_discount("WINTER25")
                except KeyError:
                    logging.getLogger("checkout.promo").exception("promo code lookup failed for basket %d",
                                                                  rng.randint(10000, 99999))
    for name in ("checkout.http", "checkout.ledger", "checkout.reconcile", "checkout.promo"):
        for h in logging.getLogger(name).handlers[:]:
            h.close()
            logging.getLogger(name).removeHandler(h)


def build(out: Path, fault: bool = True, name: str = NAME, seed: int = SEED) -> None:
    """The incident; with ``fault=False`` the same services on a normal day (a healthy bundle)."""
    with Drill(name, seed) as d:
        rng = d.rng
        me = __file__
        log_path = d.path("checkout/checkout.log")
        now = time.time()
        history(d, log_path, now - 9 * 3600, now - 20)
        d.start_capture(LEDGER, CHECKOUT, FRONT)
        ledger = d.role(me, "ledgerd", out="ledgerd.out")
        d.wait_port(*LEDGER, proc=ledger)
        svc = d.role(me, "checkout", log_path, out="checkout.out")
        d.wait_port(*CHECKOUT, proc=svc)
        front = d.start_nginx(NGINX)
        d.wait_port(*FRONT, proc=front)
        base = f"http://{FRONT[0]}:{FRONT[1]}"

        def traffic(n: int) -> list[int]:
            codes = []
            for i in range(n):
                r = rng.random()
                if r < 0.6:
                    codes.append(request("GET", f"{base}/api/cart/{rng.randint(1000, 9999)}")[0])
                elif r < 0.9:
                    codes.append(request("POST", f"{base}/api/checkout", str(rng.randint(50000, 59999)).encode())[0])
                else:
                    codes.append(request("GET", f"{base}/favicon.ico")[0])
                time.sleep(rng.uniform(0.05, 0.2))
            return codes

        before = traffic(14)
        if fault:
            d.signal(ledger)                   # the ledger database goes away and stays away
        time.sleep(0.3)
        after = traffic(16)
        time.sleep(0.8)
        d.signal(front, 3)                     # SIGQUIT: graceful, logs flushed
        d.signal(svc)
        pcap = d.finish_capture("lo-checkout.pcap")
        d.signal(ledger)
        if 503 in before or (503 in after) != fault:
            raise RuntimeError(f"unexpected traffic outcome: {before} / {after}")

        out.mkdir(parents=True, exist_ok=True)
        ngx = d.work / "nginx" / "logs"
        (out / "checkout-escalation.zip").write_bytes(_bundle(ngx, log_path, pcap).zip_bytes())
        if not fault:
            return
        write_truth(out, NAME, codes=["NET.TCP.RST_TO_SYN", "LOG.ERROR_TEMPLATE"], artifact="*",
                    contains=["25433"],
                    description="The ledger database (ledgerd, 127.0.1.3:25433) was stopped and not restarted; "
                                "every new connection to it was refused, so checkout answered 503 and nginx "
                                "passed the 503s on.")


def _bundle(ngx: Path, log_path: Path, pcap: Path) -> Bundle:
    return (Bundle()
            .add("nginx/access.log", ngx / "access.log")
            .add("nginx/error.log", ngx / "error.log")
            .add("checkout/checkout.log", log_path)
            .add("checkout/checkout.ini", "[ledger]\nhost = 127.0.1.3\nport = 25433\npool = off\n"
                                          "[http]\nlisten = 127.0.1.2:8080\n")
            .add("capture/lo-checkout.pcap", pcap))


if __name__ == "__main__":
    roles({"checkout": checkout, "ledgerd": ledgerd})
