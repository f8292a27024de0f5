"""Template accuracy on logs nobody tuned for: made here with real logging libraries.

Every log holds the same mix of messages (each from a known template, with
numbers, addresses, ids, paths, user and host names as variables), written by
a real library in a layout of its own:

* Python ``logging`` with several formats: asctime with comma milliseconds,
  day.month.year with padded level names, epoch seconds (``%(created)f``),
  US month/day/year with AM/PM, no time stamp at all, an unpadded compact
  stamp with ``|`` fields (a custom ``formatTime``), time of day only (the
  logback look), Go's ``log`` layout, and a file with two time stamp shapes and
  untimed lines between them;
* syslog: ``logger`` (util-linux) sending RFC 3164 and RFC 5424 messages over
  UDP to a receiver here, written one per line as a syslog daemon would;
* Java ``java.util.logging`` (``benchmarks/UnseenJul.java``, needs ``java``)
  with SimpleFormatter layouts: unpadded hour, day.month.yy, epoch
  milliseconds, month name with AM/PM;
* an access log written by Python's ``http.server`` answering real requests.

The ground truth of each line is its template with ``<*>`` for every variable,
in the loghub conventions (a size with its unit is one variable, a URL keeps its
scheme, a path is one variable); lines are scored with the same GA/PA code as
``loghub_eval.py`` (one configuration for every log, as shipped).

Usage::

    python benchmarks/unseen_logs.py [--lines N] [--keep DIR] [--show LAYOUT]
"""

from __future__ import annotations

import argparse
import http.server
import logging
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from backline.analyzers.logs.loghub import parse_file, score  # noqa: E402

USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
         "oscar", "peggy", "trent", "victor", "walter", "root", "admin", "backup", "deploy"]
HOSTS = ["db-3.internal", "cache-a.example.net", "api.example.com", "10.1.4.7", "store-eu-2.corp"]
TASKS = ["cleanup-temp", "rotate-logs", "sync-users", "rebuild-index", "send-digest", "prune-cache"]


def _ip(r: random.Random) -> str:
    return f"{r.randint(10, 223)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"


def _hex(r: random.Random, n: int) -> str:
    return "".join(r.choice("0123456789abcdef") for _ in range(n))


def _uuid(r: random.Random) -> str:
    return f"{_hex(r, 8)}-{_hex(r, 4)}-{_hex(r, 4)}-{_hex(r, 4)}-{_hex(r, 12)}"


def _path(r: random.Random) -> str:
    return "/" + "/".join(r.choice(["var", "srv", "data", "opt", "tmp", "cache", "app", "shard"])
                          for _ in range(r.randint(2, 4))) + f"/{r.choice(['a', 'b', 'c'])}{r.randint(1, 99)}.dat"


# (level, logger, ground-truth template, message maker)
MESSAGES = [
    ("INFO", "net.server", "Accepted connection from <*>:<*>", lambda r: f"Accepted connection from {_ip(r)}:{r.randint(1024, 65535)}"),
    ("INFO", "net.server", "Connection closed by peer after <*> requests", lambda r: f"Connection closed by peer after {r.randint(1, 500)} requests"),
    ("INFO", "web.handler", "Request <*> completed in <*> ms", lambda r: f"Request {_uuid(r)} completed in {r.randint(1, 900)} ms"),
    ("WARNING", "web.handler", "Slow request <*> took <*> seconds", lambda r: f"Slow request {_uuid(r)} took {r.uniform(2, 30):.2f} seconds"),
    ("INFO", "auth", "User <*> logged in from <*>", lambda r: f"User {r.choice(USERS)} logged in from {_ip(r)}"),
    ("WARNING", "auth", "Failed password for user <*> from <*> port <*>", lambda r: f"Failed password for user {r.choice(USERS)} from {_ip(r)} port {r.randint(1024, 65535)}"),
    ("INFO", "store.loader", "Loaded <*> entries from <*>", lambda r: f"Loaded {r.randint(0, 100000)} entries from {_path(r)}"),
    ("ERROR", "store.loader", "Cannot open <*>: permission denied", lambda r: f"Cannot open {_path(r)}: permission denied"),
    ("INFO", "pool", "Worker <*> started", lambda r: f"Worker {r.randint(1, 64)} started"),
    ("INFO", "pool", "Worker <*> stopped", lambda r: f"Worker {r.randint(1, 64)} stopped"),
    ("INFO", "cache", "Cache hit ratio is <*> percent", lambda r: f"Cache hit ratio is {r.uniform(0, 100):.1f} percent"),
    ("INFO", "session", "Session <*> expired after <*> seconds", lambda r: f"Session {_hex(r, 16)} expired after {r.randint(60, 86400)} seconds"),
    ("WARNING", "client", "Retrying request to <*> (attempt <*> of <*>)", lambda r: f"Retrying request to {r.choice(HOSTS)} (attempt {r.randint(1, 5)} of 5)"),
    ("ERROR", "client", "Giving up on <*> after <*> attempts", lambda r: f"Giving up on {r.choice(HOSTS)} after {r.randint(3, 9)} attempts"),
    ("INFO", "disk", "Disk usage on <*> is <*> percent", lambda r: f"Disk usage on {_path(r)} is {r.randint(1, 99)} percent"),
    ("INFO", "scheduler", "Scheduled task <*> finished in <*> ms", lambda r: f"Scheduled task {r.choice(TASKS)} finished in {r.randint(1, 99999)} ms"),
    ("INFO", "http.client", "GET https://<*> returned <*>", lambda r: f"GET https://{r.choice(HOSTS)}/api/v{r.randint(1, 3)}/items/{r.randint(1, 9999)} returned {r.choice([200, 201, 204, 404, 500, 503])}"),
    ("INFO", "net.io", "Received <*> bytes from <*>:<*>", lambda r: f"Received {r.randint(1, 1 << 20)} bytes from {_ip(r)}:{r.randint(1024, 65535)}"),
    ("INFO", "config", "Thread pool size set to <*>", lambda r: f"Thread pool size set to {r.randint(2, 256)}"),
    ("INFO", "main", "Starting service", lambda r: "Starting service"),
    ("INFO", "main", "Shutting down gracefully", lambda r: "Shutting down gracefully"),
    ("ERROR", "db", "Query failed with error code <*> on table <*>", lambda r: f"Query failed with error code {r.randint(1000, 9999)} on table {r.choice(['orders', 'users', 'items', 'events', 'audit_log', 'sessions'])}"),
    ("INFO", "db", "Transaction <*> committed (<*> rows)", lambda r: f"Transaction {r.randint(1, 10**9)} committed ({r.randint(0, 5000)} rows)"),
    ("WARNING", "mem", "Heap usage high: <*> of <*>", lambda r: f"Heap usage high: {r.randint(500, 4000)} MB of 4096 MB"),
    ("INFO", "queue", "Message <*> delivered to queue <*>", lambda r: f"Message {_hex(r, 12)} delivered to queue {r.choice(['billing', 'email', 'audit', 'push', 'reports'])}-{r.randint(1, 9)}"),
]


def make_items(n: int, seed: int) -> list[tuple[str, str, str, str]]:
    """(level, logger, ground truth, message) of ``n`` lines; the mix is skewed as real logs are."""
    r = random.Random(seed)
    weights = [r.choice([1, 2, 5, 20, 60]) for _ in MESSAGES]
    out = []
    for _ in range(n):
        level, logger, gt, make = r.choices(MESSAGES, weights)[0]
        out.append((level, logger, gt, make(r)))
    return out


T0 = 1765000000.0


def _records(items, seed: int):
    """``logging.LogRecord`` objects with a moving clock (as a long-running program makes them)."""
    r = random.Random(seed)
    t = T0
    for level, logger, _, msg in items:
        t += r.expovariate(1 / 3.0)
        rec = logging.LogRecord(logger, logging.getLevelName(level), f"/srv/app/{logger.split('.')[0]}.py",
                                r.randint(10, 400), msg, None, None, func="run")
        rec.created, rec.msecs = t, (t % 1) * 1000
        rec.process, rec.threadName = r.choice([812, 4411, 23901]), r.choice(["MainThread", "worker-1", "io"])
        yield rec


def python_layout(fmt: str, datefmt: str | None = None, unpadded: bool = False):
    def write(path: Path, items, seed: int) -> list[str]:
        f = logging.Formatter(fmt, datefmt)
        f.converter = time.gmtime
        if unpadded:
            def format_time(record, datefmt=None):
                t = time.gmtime(record.created)
                return (f"{t.tm_year}{t.tm_mon:02d}{t.tm_mday:02d}-{t.tm_hour}:{t.tm_min}:{t.tm_sec}:"
                        f"{int(record.msecs)}")
            f.formatTime = format_time  # type: ignore[method-assign]
        with open(path, "w", encoding="utf-8") as fh:
            h = logging.StreamHandler(fh)
            h.setFormatter(f)
            for rec in _records(items, seed):
                h.handle(rec)
        return [gt for _, _, gt, _ in items]
    return write


def python_mixed(path: Path, items, seed: int) -> list[str]:
    """Two formatters in one file (an application and a library) and untimed lines between."""
    a = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    b = logging.Formatter("%(created).3f %(levelname)s %(message)s")
    a.converter = time.gmtime
    r = random.Random(seed)
    truth = []
    with open(path, "w", encoding="utf-8") as fh:
        for rec, (_, _, gt, _) in zip(_records(items, seed), items):
            fh.write((a if rec.process != 812 else b).format(rec) + "\n")
            truth.append(gt)
            if r.random() < 0.05:
                fh.write(f"progress {r.randint(1, 99)} of 100\n")
                truth.append("progress <*> of <*>")
    return truth


def syslog_layout(rfc: str):
    def write(path: Path, items, seed: int) -> list[str]:
        if shutil.which("logger") is None:
            raise RuntimeError("logger (util-linux) not installed")
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        port = sock.getsockname()[1]
        got: list[bytes] = []

        def receive():
            sock.settimeout(2.0)
            try:
                while True:
                    got.append(sock.recv(65536))
            except socket.timeout:
                pass

        th = threading.Thread(target=receive)
        th.start()
        # one logger process per program name, messages on stdin (one per line), as a script would
        by_tag: dict[str, list[int]] = {}
        for i, (_, logger, _, _) in enumerate(items):
            by_tag.setdefault(logger.split(".")[0], []).append(i)
        order: list[int] = []
        for tag, idx in by_tag.items():
            for start in range(0, len(idx), 200):
                chunk = idx[start:start + 200]
                subprocess.run(["logger", f"--{rfc}", "-n", "127.0.0.1", "-P", str(port), "-d", "-t", tag, "-i"],
                               input="\n".join(items[i][3] for i in chunk) + "\n", text=True, check=True)
                order.extend(chunk)
                time.sleep(0.05)
        th.join()
        if len(got) != len(order):
            raise RuntimeError(f"syslog receiver got {len(got)} of {len(order)} messages")
        with open(path, "w", encoding="utf-8") as fh:
            for data in got:
                line = data.decode("utf-8").rstrip("\n")
                if rfc == "rfc3164":
                    line = line[line.index(">") + 1:]       # a daemon writes the line without <PRI>
                fh.write(line + "\n")
        return [items[i][2] for i in order]
    return write


def java_layout(fmt: str):
    def write(path: Path, items, seed: int) -> list[str]:
        if shutil.which("java") is None:
            raise RuntimeError("java not installed")
        jl = {"INFO": "INFO", "WARNING": "WARNING", "ERROR": "SEVERE"}
        data = "\n".join(f"{jl[lv]}\t{lg}\t{m}" for lv, lg, _, m in items) + "\n"
        with open(path, "w", encoding="utf-8") as fh:
            subprocess.run(["java", f"-Djava.util.logging.SimpleFormatter.format={fmt}",
                            str(Path(__file__).with_name("UnseenJul.java")), str(int(T0 * 1000))],
                           input=data, text=True, stdout=fh, check=True)
        return [gt for _, _, gt, _ in items]
    return write


PATHS = [("/api/items/<*>", lambda r: f"/api/items/{r.randint(1, 99999)}"),
         ("/static/app.css", lambda r: "/static/app.css"),
         ("/login", lambda r: "/login"),
         ("/api/users/<*>/orders?page=<*>", lambda r: f"/api/users/{r.randint(1, 999)}/orders?page={r.randint(1, 9)}")]


def access_log(path: Path, items, seed: int) -> list[str]:
    """A real ``http.server`` answering real requests; its access log is the file."""
    r = random.Random(seed)
    lines: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            code = 404 if "login" in self.path else 200
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format, *args):  # noqa: A002 - the library's signature
            lines.append("%s - - [%s] %s" % (self.address_string(), self.log_date_time_string(), format % args))

    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    th = threading.Thread(target=srv.serve_forever)
    th.start()
    truth = []
    try:
        for _ in range(min(len(items), 600)):
            gt, make = r.choice(PATHS)
            p = make(r)
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{srv.server_port}{p}").read()
            except urllib.error.HTTPError:
                pass
            truth.append('"GET <*> HTTP/1.1" <*> -')       # paths are variables (loghub convention)
    finally:
        srv.shutdown()
        th.join()
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return truth


LAYOUTS = {
    "py-asctime": python_layout("%(asctime)s %(levelname)s %(name)s: %(message)s"),
    "py-dmy-padded": python_layout("%(asctime)s.%(msecs)03d [%(process)d] %(levelname)-8s %(module)s - %(message)s",
                                   "%d.%m.%Y %H:%M:%S"),
    "py-epoch": python_layout("%(created)f %(levelname)s %(name)s %(message)s"),
    "py-us-ampm": python_layout("[%(asctime)s] {%(filename)s:%(lineno)d} %(levelname)s - %(message)s",
                                "%m/%d/%Y %I:%M:%S %p"),
    "py-no-time": python_layout("%(levelname)s:%(name)s:%(message)s"),
    "py-unpadded-pipe": python_layout("%(asctime)s|%(name)s|%(process)d|%(message)s", unpadded=True),
    "py-time-only": python_layout("%(asctime)s.%(msecs)03d [%(threadName)s] %(levelname)-5s %(name)s - %(message)s",
                                  "%H:%M:%S"),
    "go-log": python_layout("%(asctime)s %(message)s", "%Y/%m/%d %H:%M:%S"),
    "py-mixed": python_mixed,
    "syslog-3164": syslog_layout("rfc3164"),
    "syslog-5424": syslog_layout("rfc5424"),
    "java-unpadded": java_layout("%1$tY-%1$tm-%1$td %1$tk:%1$tM:%1$tS.%1$tL %4$s [%3$s] %5$s%n"),
    "java-dmy": java_layout("%1$td.%1$tm.%1$ty %1$tH:%1$tM:%1$tS %4$-7s %2$s - %5$s%n"),
    "java-epoch-ms": java_layout("%1$tQ %4$s %3$s: %5$s%n"),
    "java-month-ampm": java_layout("%1$tb %1$td, %1$tY %1$tl:%1$tM:%1$tS %1$Tp %4$s %3$s %5$s%n"),
    "access-log": access_log,
}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=2000)
    ap.add_argument("--keep", type=Path, help="keep the generated logs in this folder")
    ap.add_argument("--show", help="print the template errors of this layout")
    args = ap.parse_args(argv)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="unseen-logs-"))
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    print(f"{'layout':18} {'lines':>6} {'GA':>6} {'PA':>6} {'tpl':>5} {'gt':>5}  first line")
    try:
        for i, (name, write) in enumerate(LAYOUTS.items()):
            items = make_items(args.lines, seed=100 + i)
            path = folder / f"{name}.log"
            try:
                truth = write(path, items, 100 + i)
            except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
                print(f"{name:18} skipped: {exc}")
                continue
            predicted = parse_file(path)
            s = score(name, truth, predicted)
            rows.append(s)
            first = path.read_text(encoding="utf-8").split("\n", 1)[0]
            print(f"{name:18} {s.lines:6d} {s.ga:6.3f} {s.pa:6.3f} {s.templates:5d} {s.gt_templates:5d}  {first[:70]}")
            if args.show == name:
                for e in s.errors[:30]:
                    print("   ", e)
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    if rows:
        n = len(rows)
        print(f"{'average':18} {'':6} {sum(r.ga for r in rows) / n:6.3f} {sum(r.pa for r in rows) / n:6.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
