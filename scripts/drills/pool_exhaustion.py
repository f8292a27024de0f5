"""Resource-pool exhaustion: a connection leak drains a service's pool to its backend.

Real programs: ``quoted`` (a TCP line service on 127.0.45.7:7070 that prices items, fast and
healthy throughout), ``cart-api`` (a Python HTTP service on 127.0.45.2:8080 holding a bounded
pool of 4 connections to quoted; a caller waits at most 1 s for a free connection), and
``checkout-web`` (a Python client, ISO layout, that prices carts through cart-api with a 1.5 s
timeout).  A feature flag switched on at the incident sends promotional carts down a new code
path that returns early on an expired promotion and never gives its connection back: after four
such carts the pool is empty, every request waits 1 s and fails with "connection pool
exhausted", cart-api answers 503 and checkout-web's checkouts fail.  Noise: cart-api warns at
every start that its pool is smaller than recommended (also in the hours before), 404s for
unknown carts, a chronic slow-GC warning, an old unrelated crash.  Layout: tar.gz of both hosts'
logs and the capture.
"""

from __future__ import annotations

import http.server
import json
import logging
import queue
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from kit import Bundle, Drill, DrillError, old_crash, roles, ticks, write_truth
from logfmt import at, close, setup

NAME = "pool-exhaustion"
CLASS = "resource-pool exhaustion (a connection leak)"
SEED = 1118
QUOTED = ("127.0.45.7", 7070)
CART = ("127.0.45.2", 8080)
POOL_SIZE = 4


# -- quoted -----------------------------------------------------------------------------------------
def quoted(log_path: str) -> None:
    log = setup(log_path, "python", "quoted", program="quoted")
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(QUOTED)
    srv.listen(32)
    log.info("quoted listening on %s:%d", *QUOTED)

    def serve(c: socket.socket) -> None:
        with c, c.makefile("rw") as f:
            for line in f:
                item = line.strip()
                f.write(f"{item} {9.5 + len(item) % 7:.2f}\n")
                f.flush()

    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


# -- cart-api -----------------------------------------------------------------------------------------
class PoolTimeout(Exception):
    pass


class Pool:
    """A bounded pool of connections to quoted."""

    def __init__(self, size: int, wait_s: float):
        self.free: queue.Queue = queue.Queue()
        self.size, self.wait_s, self.in_use = size, wait_s, 0
        for _ in range(size):
            self.free.put(socket.create_connection(QUOTED, timeout=2))

    def get(self) -> socket.socket:
        try:
            c = self.free.get(timeout=self.wait_s)
        except queue.Empty:
            raise PoolTimeout(f"connection pool exhausted: could not obtain a connection within {self.wait_s} s "
                              f"(size {self.size}, {self.in_use} in use)") from None
        self.in_use += 1
        return c

    def put(self, c: socket.socket) -> None:
        self.in_use -= 1
        self.free.put(c)


def cart_api(log_path: str, flag_file: str, seconds: str) -> None:
    log = setup(log_path, "python-threads", "cart-api", program="cart-api")
    log.info("cart-api 3.8.1 starting")
    log.warning("pool size %d is below the recommended minimum of 8 for this host", POOL_SIZE)
    pool = Pool(POOL_SIZE, 1.0)

    def price(c: socket.socket, item: str) -> float:
        c.sendall(item.encode() + b"\n")
        return float(c.recv(200).split()[1])

    class H(http.server.BaseHTTPRequestHandler):
        def reply(self, status: int, doc: dict) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802
            parts = self.path.strip("/").split("/")
            if len(parts) != 2 or not parts[1].isdigit():
                self.reply(404, {"error": "no such cart"})
                return
            cart = int(parts[1])
            promo = cart % 5 == 0 and Path(flag_file).exists()
            try:
                c = pool.get()
            except PoolTimeout as exc:
                log.error("GET %s failed: %s", self.path, exc)
                self.reply(503, {"error": "busy"})
                return
            if promo:                                    # the new code path: an early return, no pool.put
                log.info("cart %d: promotion SPRING expired, pricing without it", cart)
                self.reply(200, {"cart": cart, "total": 0, "promo": "expired"})
                return
            try:
                total = sum(price(c, f"item-{cart}-{i}") for i in range(3))
            finally:
                pool.put(c)
            self.reply(200, {"cart": cart, "total": round(total, 2)})

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(CART, H)
    log.info("listening on %s:%d with a pool of %d connections to quoted %s:%d", *CART, POOL_SIZE, *QUOTED)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    time.sleep(float(seconds))
    srv.shutdown()
    log.info("cart-api stopping")


# -- checkout-web -----------------------------------------------------------------------------------
def checkout_web(log_path: str, seconds: str) -> None:
    log = setup(log_path, "iso", "checkout", program="checkout-web")
    end = time.time() + float(seconds)
    n = 7300
    while time.time() < end:
        n += 1
        path = f"/carts/{n}" if n % 13 else "/carts/latest"
        try:
            with urllib.request.urlopen(f"http://{CART[0]}:{CART[1]}{path}", timeout=1.5) as r:
                r.read()
            log.info("checkout %d priced", n)
        except urllib.error.HTTPError as exc:
            exc.read()
            if exc.code == 404:
                log.warning("checkout %d: cart service answered 404 for %s", n, path)
            else:
                log.error("checkout %d failed: cart service answered HTTP %d", n, exc.code)
        except OSError as exc:
            log.error("checkout %d failed: %s", n, getattr(exc, "reason", exc))
        time.sleep(0.12)


# -- the drill ---------------------------------------------------------------------------------------
def history(d: Drill, cart_log: Path, web_log: Path, start: float, end: float) -> None:
    rng = d.rng
    clog = setup(cart_log, "python-threads", "cart-api", program="cart-api")
    wlog = setup(web_log, "iso", "checkout", program="checkout-web")
    with at(start):
        clog.info("cart-api 3.8.1 starting")
        clog.warning("pool size %d is below the recommended minimum of 8 for this host", POOL_SIZE)
    for t in ticks(rng, start, end, 240):
        with at(t):
            clog.info("%d carts priced in the last 4 min", rng.randint(300, 900))
    for t in ticks(rng, start, end, 1700):
        with at(t):
            wlog.warning("GC pause %d ms exceeded the 200 ms target", rng.randint(210, 400))
    for t in ticks(rng, start, end, 900):
        with at(t):
            wlog.warning("checkout %d: cart service answered 404 for /carts/latest", rng.randint(1000, 7000))
    close(clog, wlog)


def build(out: Path, fault: bool = True, name: str = NAME, seed: int = SEED) -> None:
    """The incident; with ``fault=False`` the flag stays off (a healthy day)."""
    with Drill(name, seed) as d:
        me = __file__
        now = time.time()
        old_exe, old_core = old_crash(d, "reportgen")
        qlog, clog, wlog = d.path("q/quoted.log"), d.path("c/cart-api.log"), d.path("w/checkout-web.log")
        history(d, clog, wlog, now - 8 * 3600, now - 45)
        flag = d.path("c/flags/spring-promo")
        d.start_capture(QUOTED, CART)
        q = d.role(me, "quoted", qlog, out="quoted.out")
        d.wait_port(*QUOTED, proc=q)
        api = d.role(me, "cart_api", clog, flag, 11, out="cart.out")
        d.wait_port(*CART, proc=api)
        web = d.role(me, "checkout_web", wlog, 9, out="web.out")
        time.sleep(3.0)
        if fault:
            flag.touch()                                     # the feature flag goes on
        d.wait(web, 30)
        d.wait(api, 30)
        time.sleep(0.3)
        pcap = d.finish_capture("cart-lo.pcap")
        d.signal(q)
        if ("pool exhausted" in clog.read_text()) != fault:
            raise DrillError("cart-api's pool did not end as expected:\n" + clog.read_text()[-800:])
        out.mkdir(parents=True, exist_ok=True)
        old = now - 6 * 3600
        (out / "cart-incident.tar.gz").write_bytes(
            Bundle()
            .add("cart01/var/log/cart-api/cart-api.log", clog)
            .add("cart01/var/log/quoted/quoted.log", qlog)
            .add("cart01/var/crash/core.reportgen", old_core, mtime=old)
            .add("cart01/var/crash/reportgen", old_exe, mtime=old)
            .add("web01/logs/checkout-web.log", wlog)
            .add("cart01/capture/cart-lo.pcap", pcap)
            .tgz_bytes())
        if not fault:
            return
        write_truth(out, NAME, codes=["LOG.ERROR_TEMPLATE", "LOG.FIRST_ERROR", "LOG.BURST", "LOG.NEW_TEMPLATE"],
                    artifact="*cart-api.log", contains=["pool exhausted"],
                    description="A feature flag sent promotional carts down a code path that never returned its "
                                "connection to cart-api's pool of 4 connections to quoted; the pool ran dry, "
                                "requests failed with 'connection pool exhausted' after waiting 1 s, cart-api "
                                "answered 503 and checkout-web's checkouts failed.")


if __name__ == "__main__":
    roles({"quoted": quoted, "cart_api": cart_api, "checkout_web": checkout_web})
