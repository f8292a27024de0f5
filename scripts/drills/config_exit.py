"""A Python service that exits at start-up on a bad setting, seen only as an exit status and an
undated traceback in its stderr log; its clients' refused connections are the loudest evidence.

Real programs: ``invoicer`` (Python HTTP service on 127.0.32.2:8088, its own log in Python's
usual layout) run by ``procsup`` (Python, a supervisord-like process manager: its log in
supervisord's layout, each program's stderr in a file of its own without time stamps, three
start retries then FATAL).  ``billing-worker`` (Python, syslog layout) charges accounts and asks
invoicer for invoices.  A deploy edits ``invoicer.ini`` (``max_connections = 2O``, a letter O for
a zero) and restarts invoicer: every start ends in ``ValueError: invalid literal for int()``
before it listens (the message names no setting), procsup gives up, billing-worker's
connections are refused.  Noise: a nightly job that procsup sees exit normally every hour,
chronic template-cache warnings, an old unrelated traceback in billing-worker's log, healthy
invoices before the deploy.  Layout: a zip of the service host's logs and configuration, and the
worker's log and capture in a folder beside it.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from kit import Bundle, Drill, DrillError, roles, ticks, write_truth
from logfmt import at, close, setup

NAME = "config-exit"
CLASS = "unhandled exception from a bad configuration (exit status only)"
SEED = 1114
INVOICER = ("127.0.32.2", 8088)

GOOD_INI = "[server]\nlisten = 127.0.32.2:8088\n\n[pool]\nmax_connections = 20\nidle_timeout = 30\n"
BAD_INI = "[server]\nlisten = 127.0.32.2:8088\n\n[pool]\nmax_connections = 2O\nidle_timeout = 30\n"


#: The service, a program of its own (written into the drill's /opt and run from there).
INVOICER_SRC = r'''
"""invoicer: renders invoices over HTTP."""
import configparser
import http.server
import json
import logging
import sys
import time


class Pool:
    def __init__(self, size, idle):
        self.size, self.idle = size, idle


def load_pool(cp):
    return Pool(int(cp["pool"]["max_connections"]), int(cp["pool"]["idle_timeout"]))


def main(ini, log_path):
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    fmt.converter = time.gmtime
    h = logging.FileHandler(log_path)
    h.setFormatter(fmt)
    log = logging.getLogger("invoicer")
    log.addHandler(h)
    log.setLevel(logging.INFO)
    log.info("invoicer 5.2.0 starting")
    cp = configparser.ConfigParser()
    cp.read(ini)
    pool = load_pool(cp)
    host, port = cp["server"]["listen"].rsplit(":", 1)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            account = self.path.rsplit("/", 1)[-1]
            if not account.isdigit():
                self.send_error(404, "no such account")
                return
            body = json.dumps({"account": int(account), "total": 129.5, "pool": pool.size}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *args):
            pass

    srv = http.server.ThreadingHTTPServer((host, int(port)), Handler)
    log.info("listening on %s:%s (pool of %d)", host, port, pool.size)
    srv.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
'''


def procsup(log_path: str, stderr_path: str, program: str, ini: str, svc_log: str, seconds: str,
            restart_file: str) -> None:
    """supervisord-like: start invoicer, restart it on request, retry a failing start 3 times."""
    log = logging.getLogger("procsup")
    h = logging.FileHandler(log_path)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    fmt.converter = time.gmtime
    h.setFormatter(fmt)
    log.addHandler(h)
    log.setLevel(logging.INFO)
    end = time.time() + float(seconds)
    retries = 0

    def spawn() -> subprocess.Popen:
        err = open(stderr_path, "a")
        p = subprocess.Popen([sys.executable, program, ini, svc_log], stdout=subprocess.DEVNULL, stderr=err)
        err.close()
        log.info("spawned: 'invoicer' with pid %d", p.pid)
        return p

    p = spawn()
    started = time.time()
    running = False
    while time.time() < end:
        time.sleep(0.05)
        if not running and p.poll() is None and time.time() - started > 1.0:
            running = True
            retries = 0
            log.info("success: invoicer entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)")
        if Path(restart_file).exists():
            Path(restart_file).unlink()
            p.terminate()
            p.wait()
            log.info("waiting for invoicer to stop")
            log.info("stopped: invoicer (terminated by SIGTERM)")
            p, started, running = spawn(), time.time(), False
            continue
        rc = p.poll()
        if rc is None:
            continue
        if running:
            log.info("exited: invoicer (exit status %d; not expected)", rc)
        else:
            log.info("exited: invoicer (exit status %d; not expected)", rc)
            retries += 1
            if retries > 3:
                log.info("gave up: invoicer entered FATAL state, too many start retries too quickly")
                break
        time.sleep(0.4 * retries)
        p, started, running = spawn(), time.time(), False
    if p.poll() is None:
        p.kill()


def billing_worker(log_path: str, seconds: str) -> None:
    log = setup(log_path, "syslog", "billing", program="billing-worker")
    end = time.time() + float(seconds)
    run = 5500
    while time.time() < end:
        run += 1
        account = 40000 + run % 97
        path = f"/invoices/{account}" if run % 11 else "/invoices/archived"
        for attempt in (1, 2, 3):
            try:
                with urllib.request.urlopen(f"http://{INVOICER[0]}:{INVOICER[1]}{path}", timeout=2) as r:
                    r.read()
                log.info("charge run %d: account %d invoiced", run, account)
                break
            except urllib.error.HTTPError as exc:
                log.warning("charge run %d: invoice lookup %s answered %d", run, path, exc.code)
                break
            except OSError as exc:
                if attempt < 3:
                    log.warning("charge run %d: invoice request failed (attempt %d): %s", run, attempt,
                                getattr(exc, "reason", exc))
                    time.sleep(0.1)
                else:
                    log.error("charge run %d: giving up on account %d: %s", run, account,
                              getattr(exc, "reason", exc))
        time.sleep(0.15)


def history(d: Drill, sup_log: Path, svc_log: Path, job_log: Path, start: float, end: float) -> None:
    """The hours before: the nightly job's hourly normal exits in procsup's log, invoicer's
    chronic cache warnings and healthy invoices, and an old unrelated traceback in the worker's log."""
    rng = d.rng
    sup_lines = []
    for t in ticks(rng, start, end, 3600, 0.02):
        pid = rng.randint(3000, 9000)
        sup_lines.append((t, f"INFO spawned: 'report-export' with pid {pid}"))
        sup_lines.append((t + rng.uniform(20, 40), "INFO exited: report-export (exit status 0; expected)"))
    sup_lines.append((start - 60, f"INFO spawned: 'invoicer' with pid {rng.randint(1000, 2999)}"))
    sup_lines.append((start - 58.5, "INFO success: invoicer entered RUNNING state, process has stayed up for "
                                    "> than 1 seconds (startsecs)"))
    with open(sup_log, "w") as f:
        for t, text in sorted(sup_lines):
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + f",{int(t % 1 * 1000):03d}"
            f.write(f"{stamp} {text}\n")
    slog = setup(svc_log, "python", "invoicer", program="invoicer")
    for t in sorted(ticks(rng, start, end, 1300) + ticks(rng, start, end, 240)):
        with at(t):
            if rng.random() < 0.25:
                slog.warning("template cache miss rate %d%% (threshold 30%%)", rng.randint(31, 44))
            else:
                slog.info("%d invoices rendered in the last 4 min", rng.randint(80, 200))
    jlog = setup(job_log, "syslog", "billing", program="billing-worker")
    for t in ticks(rng, start, end, 600):
        with at(t):
            jlog.info("charge run %d: %d accounts invoiced", rng.randint(1000, 5000), rng.randint(40, 90))
    with at(end - 3.1 * 3600):
        try:
            currency_of({"country": "LI"})
        except KeyError:
            jlog.exception("charge run 2208: currency lookup failed, charging in EUR")
    close(slog, jlog)


def currency_of(account: dict) -> str:
    return {"DE": "EUR", "CH": "CHF", "GB": "GBP"}[account["country"]]


def build(out: Path) -> None:
    with Drill(NAME, SEED) as d:
        now = time.time()
        ini = d.write("etc/invoicer/invoicer.ini", GOOD_INI)
        program = d.write("opt/invoicer/invoicer.py", INVOICER_SRC)
        sup_log, err_log = d.path("var/log/procsup/procsup.log"), d.path("var/log/procsup/invoicer-stderr.log")
        svc_log, job_log = d.path("var/log/invoicer/invoicer.log"), d.path("worker/billing-worker.log")
        history(d, sup_log, svc_log, job_log, now - 9 * 3600, now - 30)
        restart = d.path("run/restart-invoicer")
        sup = d.role(__file__, "procsup", sup_log, err_log, program, ini, svc_log, 12, restart, out="procsup.out")
        d.wait_port(*INVOICER, timeout=20, proc=sup)
        d.start_capture(INVOICER)
        job = d.role(__file__, "billing_worker", job_log, 8, out="worker.out")
        time.sleep(2.0)
        ini.write_text(BAD_INI)                                   # the deploy's edit
        restart.touch()                                           # ... and its restart
        d.wait(job, 30)
        pcap = d.finish_capture("worker-to-invoicer.pcap")
        d.wait(sup, 30)
        if "FATAL" not in sup_log.read_text() or "ValueError" not in err_log.read_text():
            raise DrillError("invoicer did not fail on the bad setting" + sup_log.read_text()[-500:])
        out.mkdir(parents=True, exist_ok=True)
        (out / "inv01-logs.zip").write_bytes(
            Bundle()
            .add("var/log/procsup/procsup.log", sup_log)
            .add("var/log/procsup/invoicer-stderr---procsup-1x9k2.log", err_log)
            .add("var/log/invoicer/invoicer.log", svc_log)
            .add("etc/invoicer/invoicer.ini", ini)
            .zip_bytes())
        worker = out / "billing-worker"
        Bundle().add("billing-worker.log", job_log).add("worker-to-invoicer.pcap", pcap).write_dir(worker)
        write_truth(out, NAME, codes=["DUMP.PYTHON_EXCEPTION"], artifact="*invoicer-stderr*", contains=["2O"],
                    alternatives=[{"codes": ["LOG.PROCESS_EXIT", "LOG.ERROR_TEMPLATE", "LOG.FIRST_ERROR",
                                             "LOG.RARE_TEMPLATE", "LOG.NEW_TEMPLATE", "LOG.BURST"],
                                   "artifact": "*procsup.log", "contains": ["invoicer", "exit status 1"]}],
                    description="A deploy set max_connections = 2O (a letter O) in invoicer.ini; every start of "
                                "invoicer ended in ValueError: invalid literal for int() before it listened, "
                                "procsup gave up after three retries, and billing-worker's connections to "
                                "127.0.32.2:8088 were refused.")


if __name__ == "__main__":
    roles({"procsup": procsup, "billing_worker": billing_worker})
