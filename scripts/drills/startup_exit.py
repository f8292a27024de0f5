"""Start-up exit on a bad configuration: a relay refuses to start, its clients' connections are refused.

Real programs: ``relayd`` (a Python TCP relay on 127.0.46.2:9400 that reads ``relayd.toml`` at
start, logs in an ISO layout, and exits with status 78 (EX_CONFIG) after logging the setting it
cannot use), ``svrun`` (a runit-like shell loop that restarts it one second after every exit and
logs each exit with a time stamp), ``ingest-agent`` (Python, Python's usual layout) sending
metric batches to relayd every 0.25 s and logging each refused connection.  A deploy sets
``backlog = "unlimited"`` in relayd.toml and restarts relayd: every start ends in
``invalid value for [listen] backlog`` and ``exit status 78``; the agent's connections are
refused (the loudest evidence, in its log and in the capture), its buffer fills.  Noise:
svrun's log of an hourly rotate job exiting 0, relayd's chronic warning about a deprecated
option, the agent's periodic DNS-cache notices, an old unrelated core.  Layout: zip.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
import tomllib
from pathlib import Path

from kit import Bundle, Drill, DrillError, old_crash, roles, ticks, write_truth
from logfmt import at, close, setup

NAME = "startup-exit"
CLASS = "start-up exit on a bad configuration"
SEED = 1119
RELAY = ("127.0.46.2", 9400)
SINK = ("127.0.46.3", 9401)

GOOD = '[listen]\naddress = "127.0.46.2"\nport = 9400\nbacklog = 128\n\n[upstream]\naddress = "127.0.46.3:9401"\n'
BAD = GOOD.replace("backlog = 128", 'backlog = "unlimited"')


def relayd(conf: str, log_path: str) -> None:
    log = setup(log_path, "iso", "relayd", program="relayd")
    log.info("relayd 0.9.3 starting with %s", conf)
    log.warning("option 'compat_v1' is deprecated and will be removed in 1.0")
    cfg = tomllib.loads(Path(conf).read_text())
    backlog = cfg["listen"]["backlog"]
    if not isinstance(backlog, int):
        log.error("configuration %s: invalid value for [listen] backlog: %r (expected an integer)", conf, backlog)
        log.error("relayd exiting with status 78")
        logging_shutdown()
        sys.exit(78)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((cfg["listen"]["address"], cfg["listen"]["port"]))
    srv.listen(backlog)
    log.info("relayd listening on %s:%d", cfg["listen"]["address"], cfg["listen"]["port"])

    def serve(c: socket.socket) -> None:
        with c:
            while c.recv(4096):
                pass

    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def logging_shutdown() -> None:
    import logging
    logging.shutdown()


def svrun_cmd(module: str, conf: Path, relay_log: Path, sv_log: Path) -> list[str]:
    """runit-like supervision in a shell loop: restart at once after an exit, one second later when
    the program ran for less than a second (runsv's rule)."""
    script = ('while :; do t0=$(date +%s%N); "$0" "$1" relayd "$2" "$3"; rc=$?; '
              'ran=$(( ($(date +%s%N) - t0) / 1000000 )); '
              'if [ $ran -lt 1000 ]; then d=1; else d=0; fi; '
              'echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) svrun: relayd exited with status $rc, restarting in $d s" >> "$4"; '
              'sleep $d; done')
    return ["sh", "-c", script, sys.executable, module, str(conf), str(relay_log), str(sv_log)]


def ingest_agent(log_path: str, seconds: str) -> None:
    log = setup(log_path, "python", "ingest-agent", program="ingest-agent")
    end = time.time() + float(seconds)
    batch, buffered = 5120, 0
    while time.time() < end:
        batch += 1
        try:
            with socket.create_connection(RELAY, timeout=1) as c:
                c.sendall(f"batch {batch} {buffered + 1} points\n".encode())
            if buffered:
                log.info("relay back: flushed %d buffered batch(es)", buffered)
            buffered = 0
        except OSError as exc:
            buffered += 1
            log.error("batch %d not sent to relay %s:%d: %s", batch, *RELAY, exc)
            if buffered in (8, 16, 24):
                log.warning("send buffer holds %d batch(es)", buffered)
        time.sleep(0.25)


def history(d: Drill, relay_log: Path, sv_log: Path, agent_log: Path, start: float, end: float) -> None:
    rng = d.rng
    rlog = setup(relay_log, "iso", "relayd", program="relayd")
    alog = setup(agent_log, "python", "ingest-agent", program="ingest-agent")
    with at(start):
        rlog.info("relayd 0.9.3 starting with /etc/relayd/relayd.toml")
        rlog.warning("option 'compat_v1' is deprecated and will be removed in 1.0")
        rlog.info("relayd listening on %s:%d", *RELAY)
    for t in ticks(rng, start, end, 300):
        with at(t):
            rlog.info("relayed %d batches in 5 min", rng.randint(1100, 1300))
    for t in ticks(rng, start, end, 1200):
        with at(t):
            alog.info("DNS cache refreshed (%d entries)", rng.randint(10, 30))
    with open(sv_log, "w") as f:
        for t in ticks(rng, start, end, 3600, 0.02):
            f.write(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) + " svrun: logrotate exited with status 0\n")
    close(rlog, alog)


def build(out: Path) -> None:
    with Drill(NAME, SEED) as d:
        now = time.time()
        old_exe, old_core = old_crash(d, "thumbnailer")
        conf = d.write("etc/relayd/relayd.toml", GOOD)
        rlog, svlog, alog = d.path("var/log/relayd.log"), d.path("var/log/svrun.log"), d.path("agent/ingest-agent.log")
        history(d, rlog, svlog, alog, now - 7 * 3600, now - 30)
        d.start_capture(RELAY)
        sv = d.spawn(svrun_cmd(__file__, conf, rlog, svlog), out="svrun.out")
        d.wait_port(*RELAY, proc=sv)
        agent = d.role(__file__, "ingest_agent", alog, 9, out="agent.out")
        time.sleep(2.5)
        conf.write_text(BAD)                               # the deploy's edit ...
        kids = [int(p) for p in (Path(f"/proc/{sv.pid}/task/{sv.pid}/children").read_text().split())]
        for pid in kids:                                   # ... and its restart of relayd
            try:
                import os
                import signal
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        d.wait(agent, 30)
        time.sleep(0.3)
        pcap = d.finish_capture("agent-relay.pcap")
        d.signal(sv)
        if "exiting with status 78" not in rlog.read_text() or "status 78" not in svlog.read_text():
            raise DrillError("relayd did not fail on the bad setting:\n" + rlog.read_text()[-600:])
        out.mkdir(parents=True, exist_ok=True)
        old = now - 5 * 3600
        (out / "relay-host.zip").write_bytes(
            Bundle()
            .add("relay-host/var/log/relayd/relayd.log", rlog)
            .add("relay-host/var/log/svrun/current", svlog)
            .add("relay-host/etc/relayd/relayd.toml", conf)
            .add("relay-host/var/crash/core.thumbnailer", old_core, mtime=old)
            .add("relay-host/var/crash/thumbnailer", old_exe, mtime=old)
            .add("agent-host/ingest-agent.log", alog)
            .add("agent-host/agent-relay.pcap", pcap)
            .zip_bytes())
        write_truth(out, NAME, codes=["LOG.ERROR_TEMPLATE", "LOG.FIRST_ERROR", "LOG.PROCESS_EXIT", "LOG.NEW_TEMPLATE",
                                      "LOG.RARE_TEMPLATE", "LOG.BURST"],
                    artifact="*relayd.log", contains=["backlog"],
                    alternatives=[{"codes": ["LOG.PROCESS_EXIT", "LOG.ERROR_TEMPLATE", "LOG.FIRST_ERROR",
                                             "LOG.NEW_TEMPLATE", "LOG.RARE_TEMPLATE", "LOG.BURST"],
                                   "artifact": "*relayd.log", "contains": ["status 78"]},
                                  {"codes": ["LOG.PROCESS_EXIT", "LOG.ERROR_TEMPLATE", "LOG.FIRST_ERROR",
                                             "LOG.NEW_TEMPLATE", "LOG.RARE_TEMPLATE", "LOG.BURST"],
                                   "artifact": "*svrun/current", "contains": ["relayd", "status 78"]}],
                    description="A deploy set backlog = \"unlimited\" in relayd.toml; every start of relayd "
                                "logged the invalid setting and exited with status 78 before listening, svrun "
                                "restarted it every second, and ingest-agent's connections to 127.0.46.2:9400 "
                                "were refused.")


if __name__ == "__main__":
    roles({"relayd": relayd, "ingest_agent": ingest_agent})
