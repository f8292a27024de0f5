"""Slow backend: a full reindex makes the catalog service slow; nginx's upstream reads time out.

Real programs: nginx on 127.0.4.1:80 proxying to ``catalog`` (a Python HTTP service on
127.0.4.2:8080, log4j-style layout) with ``proxy_read_timeout 1500ms``.  A reindex job starts
inside the catalog and holds the index lock in long slices: search latency climbs from tens of
milliseconds to seconds; nginx logs "upstream timed out (110: Connection timed out) while
reading response header from upstream" and answers 504.  Noise: a chronic cache-eviction
warning, 404s for robots.txt, an old core of an unrelated export tool, healthy searches.
Layout: tar.gz holding a zip of the nginx logs and a gzip-compressed capture.
"""

from __future__ import annotations

import gzip
import http.server
import logging
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from kit import Bundle, Drill, old_crash, request, roles, ticks, write_truth
from logfmt import at, setup

NAME = "slow-backend"
CLASS = "slow backend"
SEED = 1104
FRONT = ("127.0.4.1", 80)
CATALOG = ("127.0.4.2", 8080)

NGINX = """
access_log {prefix}/logs/access.log combined;
upstream catalog { server 127.0.4.2:8080; keepalive 4; }
server {
    listen 127.0.4.1:80;
    location /search { proxy_pass http://catalog; proxy_http_version 1.1; proxy_set_header Connection "";
                       proxy_read_timeout 1500ms; }
    location / { return 404; }
}
"""


def catalog(log_path: str, reindex_after: str) -> None:
    log = setup(log_path, "log4j", "com.shop.catalog.SearchResource", "com.shop.catalog.IndexWriter",
                "com.shop.catalog.Cache")
    wlog = logging.getLogger("com.shop.catalog.IndexWriter")
    index_lock = threading.Lock()
    products = [f"product-{i}" for i in range(2000)]

    def reindex() -> None:
        time.sleep(float(reindex_after))
        wlog.info("full reindex of 'products' started (trigger: nightly-schedule override)")
        for segment in range(1, 12):
            with index_lock:                       # each segment rebuild holds the lock longer
                time.sleep(0.25 * segment)
            wlog.debug("reindex segment %d/11 written", segment)
            time.sleep(0.02)
        wlog.info("full reindex of 'products' finished")

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802
            q = parse_qs(urlparse(self.path).query).get("q", [""])[0]
            t0 = time.monotonic()
            with index_lock:
                hits = [p for p in products if q in p][:20]
            took = (time.monotonic() - t0) * 1000
            if took > 500:
                log.warning("slow query: search q=%s took %d ms (threshold 500 ms)", q, took)
            body = ('{"hits": %d}' % len(hits)).encode()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError) as exc:
                log.warning("client went away before the response for q=%s was written: %s", q, exc)

        def log_message(self, *a):
            pass

    log.info("catalog 5.2.0 serving on %s:%d", *CATALOG)
    threading.Thread(target=reindex, daemon=True, name="reindex-1").start()
    http.server.ThreadingHTTPServer(CATALOG, H).serve_forever()


def history(d: Drill, log_path: Path, access: Path, start: float, end: float) -> None:
    from logfmt import access_line

    rng = d.rng
    log = setup(log_path, "log4j", "com.shop.catalog.Cache", "com.shop.catalog.SearchResource")
    with open(access, "w") as acc:
        events = [(t, "evict") for t in ticks(rng, start, end, 1500)]
        events += [(t, "search") for t in ticks(rng, start, end, 45)]
        events += [(t, "robots") for t in ticks(rng, start, end, 2400)]
        for t, what in sorted(events):
            with at(t):
                if what == "evict":
                    log.warning("cache eviction rate %d/s above 100/s; consider a larger heap", rng.randint(110, 240))
                elif what == "robots":
                    acc.write(access_line("127.0.0.1", t, "GET", "/robots.txt", 404, 153, "Googlebot/2.1") + "\n")
                else:
                    acc.write(access_line("127.0.0.1", t, "GET", f"/search?q={rng.randint(1, 1999)}", 200, 11,
                                          "Mozilla/5.0") + "\n")
    for h in log.handlers[:]:
        h.close()
        log.removeHandler(h)


def build(out: Path, fault: bool = True, name: str = NAME, seed: int = SEED) -> None:
    """The incident; with ``fault=False`` the same services on a normal day (a healthy bundle)."""
    with Drill(name, seed) as d:
        rng = d.rng
        now = time.time()
        old_exe, old_core = old_crash(d, "csvexport")
        cat_log = d.path("catalog/catalog.log")
        access = d.path("nginx/logs/access.log")
        history(d, cat_log, access, now - 10 * 3600, now - 25)
        svc = d.role(__file__, "catalog", cat_log, 2.5 if fault else 1e9, out="catalog.out")
        d.wait_port(*CATALOG, proc=svc)
        front = d.start_nginx(NGINX, error_level="error")
        d.wait_port(*FRONT, proc=front)
        d.start_capture(FRONT, CATALOG)
        results: list[tuple[float, int, float]] = []

        def client(n: int, seed: int) -> None:
            import random

            r = random.Random(seed)
            for _ in range(n):
                path = "/robots.txt" if r.random() < 0.05 else f"/search?q={r.randint(1, 1999)}"
                t = time.time()
                status, took = request("GET", f"http://{FRONT[0]}:{FRONT[1]}{path}", timeout=5)
                results.append((t, status, took))
                time.sleep(r.uniform(0.1, 0.3))

        threads = [threading.Thread(target=client, args=(30, rng.randint(0, 1 << 30))) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(0.5)
        pcap = d.finish_capture("front-and-catalog.pcap")
        d.signal(front, 3)
        d.signal(svc)
        if any(s == 504 for _t, s, _k in results) != fault:
            raise RuntimeError("upstream timeouts are not as the drill wants")

        out.mkdir(parents=True, exist_ok=True)
        ngx = d.work / "nginx" / "logs"
        nginx_zip = Bundle().add("access.log", ngx / "access.log").add("error.log", ngx / "error.log").zip_bytes()
        old = now - 6.2 * 3600
        b = (Bundle()
             .add("web01/nginx-logs.zip", nginx_zip)
             .add("web01/nginx.conf", d.path("nginx/nginx.conf").read_text().replace(str(d.work / "nginx"),
                                                                                      "/var/lib/nginx"))
             .add("catalog01/catalog.log", cat_log)
             .add("catalog01/cores/core.csvexport", old_core, mtime=old)
             .add("catalog01/cores/csvexport", old_exe, mtime=old)
             .add("capture/front-and-catalog.pcap.gz", gzip.compress(pcap.read_bytes(), mtime=0)))
        (out / ("INC-4471.tar.gz" if fault else "web01-catalog01-logs.tar.gz")).write_bytes(b.tgz_bytes())
        if not fault:
            return
        write_truth(out, NAME, codes=["NET.HTTP.SLOW"], artifact="*", contains=["127.0.4.2:8080"],
                    description="A full reindex inside the catalog service (127.0.4.2:8080) held the index lock "
                                "in ever longer slices, so searches took seconds; nginx's upstream reads timed out "
                                "after 1.5 s and it answered 504.")


if __name__ == "__main__":
    roles({"catalog": catalog})
