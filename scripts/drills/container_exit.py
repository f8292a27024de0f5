"""A containerised service that exits at start on a bad command-line flag, told only by a
container runtime's JSON event log (an exit code and restarts with back-off) and the container's
own stderr in the runtime's JSON log format; its clients' refused connections are the loudest.

Real programs: ``quotes`` (Python HTTP service on 127.0.34.2:8080, parses its flags with
``argparse``), ``runtimed`` (Python, a container-runtime-like shim: starts the task, keeps its
stdout and stderr as JSON lines ``{"log": ..., "stream": ..., "time": ...}`` the way a json-file
log driver does, writes its own events as JSON lines, restarts a failed task with back-off 1, 2,
4 s), ``web-frontend`` (Python, ISO-stamped log) asking quotes for prices.  A deployment adds a
flag the new image does not know (``--max-conns=64``): argparse prints its usage and
``error: unrecognized arguments``, exit code 2, every restart the same.  Noise: a chronic
slow-cache warning at the front end, a sidecar container that exits 0 every hour, 404s for
retired products, healthy quotes.  Layout: tar.gz of the node's runtime folder, the front end's
zip beside it.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

from kit import Bundle, Drill, DrillError, roles, ticks, write_truth
from logfmt import at, setup

NAME = "container-exit"
CLASS = "process death on a bad start-up flag, shown by a container runtime's exit code"
SEED = 1116
QUOTES = ("127.0.34.2", 8080)

QUOTES_SRC = r'''
"""quotes: prices over HTTP."""
import argparse
import http.server
import json
import sys


def main(argv):
    ap = argparse.ArgumentParser(prog="quotes")
    ap.add_argument("--listen", default="127.0.34.2:8080")
    ap.add_argument("--currency", default="EUR")
    args = ap.parse_args(argv)
    host, port = args.listen.rsplit(":", 1)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            sku = self.path.rsplit("/", 1)[-1]
            if sku.startswith("old"):
                self.send_error(404, "retired product")
                return
            body = json.dumps({"sku": sku, "price": 19.9, "currency": args.currency}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *a):
            pass

    srv = http.server.ThreadingHTTPServer((host, int(port)), Handler)
    print(f"quotes listening on {host}:{port}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
'''


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def runtimed(events_path: str, ctr_log: str, program: str, args_file: str, seconds: str) -> None:
    """Run the task, keep its output as json-file lines, restart a failed task with back-off."""
    end = time.time() + float(seconds)
    lock = threading.Lock()

    def event(level: str, msg: str, **fields) -> None:
        with lock, open(events_path, "a") as f:
            f.write(json.dumps({"time": _now(), "level": level, "msg": msg, **fields}) + "\n")

    def pump(stream, name: str) -> None:
        for line in stream:
            with lock, open(ctr_log, "a") as f:
                f.write(json.dumps({"log": line, "stream": name, "time": _now()}) + "\n")

    backoff = 1.0
    restarts = 0
    while time.time() < end:
        argv = [sys.executable, program, *Path(args_file).read_text().split()]
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        event("info", "task started", container="quotes", pid=p.pid, restarts=restarts)
        threads = [threading.Thread(target=pump, args=(p.stdout, "stdout")),
                   threading.Thread(target=pump, args=(p.stderr, "stderr"))]
        for t in threads:
            t.start()
        started = time.time()
        while p.poll() is None and time.time() < end and not Path(args_file + ".restart").exists():
            time.sleep(0.02)
        if Path(args_file + ".restart").exists() and p.poll() is None:
            Path(args_file + ".restart").unlink()
            p.terminate()
            p.wait()
            for t in threads:
                t.join(2)
            event("info", "task stopped for update", container="quotes", pid=p.pid, exitCode=p.returncode)
            continue
        if p.poll() is None:
            p.terminate()
            p.wait()
            for t in threads:
                t.join(2)
            break
        for t in threads:
            t.join(2)
        event("info", "task exit", container="quotes", pid=p.pid, exitCode=p.returncode)
        if time.time() - started > 10:
            backoff = 1.0
        restarts += 1
        event("info", f"restarting container in {backoff:g}s", container="quotes", restartCount=restarts)
        time.sleep(backoff)
        backoff = min(backoff * 2, 8.0)


def web_frontend(log_path: str, seconds: str) -> None:
    log = setup(log_path, "iso", "shop.quotes", program="web-frontend")
    end = time.time() + float(seconds)
    n = 0

    def worker(k: int) -> None:
        nonlocal n
        while time.time() < end:
            n += 1
            sku = f"old-{n}" if n % 13 == 0 else f"sku-{1000 + n % 50}"
            try:
                with urllib.request.urlopen(f"http://{QUOTES[0]}:{QUOTES[1]}/price/{sku}", timeout=2) as r:
                    r.read()
                log.info("price for %s served", sku)
            except urllib.error.HTTPError as exc:
                log.warning("price for %s: HTTP %d from quotes", sku, exc.code)
            except OSError as exc:
                log.error("price for %s unavailable: %s", sku, getattr(exc, "reason", exc))
            time.sleep(0.15)

    threads = [threading.Thread(target=worker, args=(i,), name=f"web-{i}") for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def history(d: Drill, events: Path, fe_log: Path, start: float, end: float) -> None:
    rng = d.rng
    lines = []
    for t in ticks(rng, start, end, 3600, 0.02):
        pid = rng.randint(3000, 9000)
        lines.append((t, {"level": "info", "msg": "task started", "container": "catalog-sync", "pid": pid,
                          "restarts": 0}))
        lines.append((t + rng.uniform(5, 20), {"level": "info", "msg": "task exit", "container": "catalog-sync",
                                               "pid": pid, "exitCode": 0}))
    lines.append((start - 30, {"level": "info", "msg": "task started", "container": "quotes",
                               "pid": rng.randint(1000, 2999), "restarts": 0}))
    with open(events, "w") as f:
        for t, doc in sorted(lines, key=lambda x: x[0]):
            stamp = datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
            f.write(json.dumps({"time": stamp, **doc}) + "\n")
    log = setup(fe_log, "iso", "shop.cache", "shop.quotes", program="web-frontend")
    for t in sorted(ticks(rng, start, end, 900) + ticks(rng, start, end, 200)):
        with at(t):
            if rng.random() < 0.3:
                logging.getLogger("shop.cache").warning("page cache lookup took %d ms (slow)", rng.randint(300, 900))
            else:
                logging.getLogger("shop.quotes").info("%d prices served in the last 3 min", rng.randint(200, 600))
    for h in log.handlers[:]:
        h.close()
        log.removeHandler(h)


def build(out: Path) -> None:
    with Drill(NAME, SEED) as d:
        now = time.time()
        program = d.write("images/quotes/app/quotes.py", QUOTES_SRC)
        args_file = d.write("run/quotes.args", "--listen 127.0.34.2:8080 --currency EUR")
        events, ctr_log = d.path("node/runtime/events.jsonl"), d.path("node/containers/quotes/quotes-json.log")
        fe_log = d.path("frontend/web-frontend.log")
        history(d, events, fe_log, now - 8 * 3600, now - 40)
        rt = d.role(__file__, "runtimed", events, ctr_log, program, args_file, 13, out="runtimed.out")
        d.wait_port(*QUOTES, timeout=20, proc=rt)
        d.start_capture(QUOTES)
        fe = d.role(__file__, "web_frontend", fe_log, 9, out="fe.out")
        time.sleep(2.0)
        args_file.write_text("--listen 127.0.34.2:8080 --currency EUR --max-conns=64")     # the deployment
        Path(str(args_file) + ".restart").touch()
        d.wait(fe, 30)
        pcap = d.finish_capture("frontend-to-quotes.pcap")
        d.wait(rt, 30)
        if "unrecognized arguments" not in ctr_log.read_text():
            raise DrillError("quotes did not fail on the flag" + ctr_log.read_text()[-500:])
        out.mkdir(parents=True, exist_ok=True)
        (out / "node-7-runtime.tar.gz").write_bytes(
            Bundle()
            .add("node-7/runtime/events.jsonl", events)
            .add("node-7/containers/quotes/quotes-json.log", ctr_log)
            .tgz_bytes())
        (out / "web-frontend.zip").write_bytes(
            Bundle().add("web-frontend.log", fe_log).add("frontend-to-quotes.pcap", pcap).zip_bytes())
        write_truth(out, NAME, codes=["LOG.PROCESS_EXIT", "LOG.ERROR_TEMPLATE", "LOG.FIRST_ERROR",
                                      "LOG.RARE_TEMPLATE", "LOG.NEW_TEMPLATE", "LOG.BURST"],
                    artifact="*events.jsonl", contains=["quotes", "exitCode"],
                    alternatives=[{"codes": ["LOG.ERROR_TEMPLATE", "LOG.FIRST_ERROR", "LOG.RARE_TEMPLATE",
                                             "LOG.NEW_TEMPLATE", "LOG.BURST", "LOG.PROCESS_EXIT"],
                                   "artifact": "*quotes-json.log", "contains": ["unrecognized arguments"]}],
                    description="A deployment started quotes with a flag its image does not know (--max-conns=64): "
                                "argparse exited with code 2 at every start, the runtime restarted it with "
                                "back-off, and the web front end's connections to 127.0.34.2:8080 were refused.")


if __name__ == "__main__":
    roles({"runtimed": runtimed, "web_frontend": web_frontend})
