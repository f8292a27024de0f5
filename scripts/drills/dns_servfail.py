"""DNS failure: a zone fails to load on the site resolver, which then answers SERVFAIL.

Real programs: ``resolverd`` (a small recursive-resolver stand-in on 127.0.5.53:53 serving
zones from files, reloading them on SIGHUP, logging in a syslog layout), ``payments-gw`` (an
HTTP service on 127.0.0.1:19443 with an access log), ``notifier`` (a Python worker logging
JSON lines, run in its own mount namespace with an ``/etc/resolv.conf`` naming resolverd, so
glibc's stub resolver really asks it).  A zone push with a bad TTL makes ``pay.corp.example``
fail to load; every lookup of ``payments-gw.pay.corp.example`` gets SERVFAIL, the notifier's
deliveries fail with "Temporary failure in name resolution" and its queue grows.  Noise:
NXDOMAIN for ``wpad.corp.example`` (clients probe it all day), a chronic certificate warning,
an old core of an unrelated tool, healthy lookups and deliveries.  Layout: tar.gz with a
top folder.
"""

from __future__ import annotations

import http.server
import json
import logging
import signal
import socket
import struct
import sys
import threading
import time
import urllib.request
from pathlib import Path

from kit import Bundle, Drill, old_crash, roles, ticks, write_truth
from logfmt import access_line, at, close, setup

NAME = "dns-servfail"
CLASS = "DNS failure"
SEED = 1102
RESOLVER = ("127.0.5.53", 53)
PAYGW = ("127.0.0.1", 19443)
TARGET = "payments-gw.pay.corp.example"

ZONES = {
    "corp.example": "$TTL 300\nmail 300 IN A 127.0.0.1\nintranet 300 IN A 127.0.0.1\n",
    "pay.corp.example": "$TTL 300\npayments-gw 300 IN A 127.0.0.1\nledger 300 IN A 127.0.0.1\n",
}
BAD_PAY_ZONE = "$TTL 300\npayments-gw 3OO IN A 127.0.0.1\nledger 300 IN A 127.0.0.1\n"


# -- resolverd ---------------------------------------------------------------------------------
def _qname(pkt: bytes, off: int) -> tuple[str, int]:
    labels = []
    while pkt[off]:
        n = pkt[off]
        labels.append(pkt[off + 1: off + 1 + n].decode("ascii", "replace"))
        off += 1 + n
    return ".".join(labels).lower(), off + 1


def load_zone(path: Path, origin: str) -> dict[str, str]:
    """``name TTL IN A address`` lines; raises ValueError naming the bad line."""
    records = {}
    for no, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith(("$", ";")):
            continue
        name, ttl, klass, rtype, value = line.split()
        if not ttl.isdigit():
            raise ValueError(f"bad TTL '{ttl}' at line {no}")
        if klass != "IN" or rtype != "A":
            raise ValueError(f"unsupported record at line {no}")
        records[f"{name}.{origin}"] = value
    return records


def resolverd(zone_dir: str, log_path: str) -> None:
    log = setup(log_path, "syslog", "resolverd", program="resolverd")
    zones: dict[str, dict[str, str] | None] = {}

    def reload(*_):
        for origin in ZONES:
            path = Path(zone_dir) / f"{origin}.zone"
            try:
                zones[origin] = load_zone(path, origin)
                log.info("zone %s/IN: loaded serial %d", origin, int(path.stat().st_mtime))
            except ValueError as exc:
                zones[origin] = None
                log.error("zone %s/IN: loading from master file %s failed: %s", origin, path.name, exc)
                log.error("zone %s/IN: not loaded due to errors", origin)

    reload()
    signal.signal(signal.SIGHUP, reload)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(RESOLVER)
    log.info("resolverd 9.18 listening on %s#%d", *RESOLVER)
    while True:
        try:
            pkt, peer = sock.recvfrom(1500)
        except InterruptedError:
            continue
        qid, flags, qd = struct.unpack_from("!HHH", pkt)
        name, off = _qname(pkt, 12)
        qtype, _qclass = struct.unpack_from("!HH", pkt, off)
        question = pkt[12: off + 4]
        origin = max((z for z in ZONES if name == z or name.endswith("." + z)), key=len, default=None)
        answers = b""
        if origin is None:
            rcode = 5                                     # REFUSED: not ours
        elif zones[origin] is None:
            rcode = 2                                     # SERVFAIL: zone not loaded
            log.warning("query %s/%s from %s#%d: SERVFAIL (zone %s not loaded)", name,
                        {1: "A", 28: "AAAA"}.get(qtype, qtype), *peer, origin)
        elif name in zones[origin]:
            rcode = 0
            if qtype == 1:
                answers = (b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4)
                           + socket.inet_aton(zones[origin][name]))
        else:
            rcode = 3                                     # NXDOMAIN
            log.info("query %s from %s#%d: NXDOMAIN", name, *peer)
        head = struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, 1 if answers else 0, 0, 0)
        sock.sendto(head + question + answers, peer)


# -- payments-gw and notifier ------------------------------------------------------------------------
def payments_gw(access_path: str) -> None:
    access = open(access_path, "a", buffering=1)

    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b'{"accepted":true}'
            self.send_response(202)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            access.write(access_line(self.client_address[0], time.time(), "POST", self.path, 202, len(body),
                                     self.headers.get("User-Agent", "-")) + "\n")

        def log_message(self, *a):
            pass

    http.server.ThreadingHTTPServer(PAYGW, H).serve_forever()


def notifier(log_path: str, seconds: str) -> None:
    log = setup(log_path, "json", "notifier", "notifier.queue", program="notifier")
    qlog = logging.getLogger("notifier.queue")
    queue: list[int] = []
    next_id = 70211
    end = time.time() + float(seconds)
    log.info("notifier 2.7.0 started; payments endpoint http://%s:%d/v1/refund-events", TARGET, PAYGW[1])
    n = 0
    while time.time() < end:
        queue.append(next_id)
        next_id += 1
        n += 1
        if n % 6 == 0:                                    # proxy auto-discovery, as every client does
            try:
                socket.getaddrinfo("wpad.corp.example", 80, socket.AF_INET)
            except socket.gaierror:
                pass
        try:
            addr = socket.getaddrinfo(TARGET, PAYGW[1], socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
        except socket.gaierror as exc:
            log.error("delivery of refund event %d failed: cannot resolve %s: %s", queue[0], TARGET, exc,
                      exc_info=True)
            if len(queue) > 8:
                qlog.warning("outbound queue depth %d above threshold 8", len(queue))
            time.sleep(0.25)
            continue
        while queue:
            ev = queue.pop(0)
            req = urllib.request.Request(f"http://{addr}:{PAYGW[1]}/v1/refund-events", method="POST",
                                         data=json.dumps({"event": ev}).encode(),
                                         headers={"User-Agent": "notifier/2.7.0", "Host": TARGET})
            with urllib.request.urlopen(req, timeout=3) as r:
                r.read()
            log.debug("delivered refund event %d", ev)
        time.sleep(0.25)
    log.info("notifier stopping with %d undelivered event(s)", len(queue))


# -- the drill -----------------------------------------------------------------------------------------
def history(d: Drill, notifier_log: Path, resolver_log: Path, start: float, end: float) -> None:
    rng = d.rng
    nlog = setup(notifier_log, "json", "notifier", program="notifier")
    rlog = setup(resolver_log, "syslog", "resolverd", program="resolverd")
    events = [(t, "cert") for t in ticks(rng, start, end, 1800)]
    events += [(t, "wpad") for t in ticks(rng, start, end, 600)]
    events += [(t, "batch") for t in ticks(rng, start, end, 300)]
    for t, what in sorted(events):
        with at(t):
            if what == "cert":
                nlog.warning("TLS certificate of smtp relay mail.corp.example expires in 12 days")
            elif what == "wpad":
                rlog.info("query wpad.corp.example from 127.0.0.1#%d: NXDOMAIN", rng.randint(32768, 60999))
            else:
                nlog.info("delivered %d refund event(s) in %d ms", rng.randint(1, 30), rng.randint(20, 300))
    close(nlog, rlog)


def build(out: Path, fault: bool = True, name: str = NAME, seed: int = SEED) -> None:
    """The incident; with ``fault=False`` the same services on a normal day (a healthy bundle)."""
    with Drill(name, seed) as d:
        me = __file__
        now = time.time()
        old_exe, old_core = old_crash(d, "thumbnailer")
        nlog, rlog, access = d.path("logs/notifier.jsonl"), d.path("logs/resolverd.log"), d.path("logs/payments-gw-access.log")
        history(d, nlog, rlog, now - 7 * 3600, now - 30)
        zdir = d.path("zones/x").parent
        for origin, text in ZONES.items():
            (zdir / f"{origin}.zone").write_text(text)
        resolv = d.write("resolv.conf", f"nameserver {RESOLVER[0]}\noptions timeout:1 attempts:2\n")
        d.start_capture(RESOLVER, PAYGW)
        res = d.role(me, "resolverd", zdir, rlog, out="resolverd.out")
        d.wait_port(*RESOLVER, proc=res, udp=True)
        gw = d.role(me, "payments_gw", access, out="gw.out")
        d.wait_port(*PAYGW, proc=gw)
        time.sleep(0.3)
        worker = d.role(me, "notifier", nlog, 7.5, resolv=resolv, out="notifier.out")
        time.sleep(3.0)
        if fault:
            (zdir / "pay.corp.example.zone").write_text(BAD_PAY_ZONE)  # the zone push
        else:
            (zdir / "pay.corp.example.zone").write_text(ZONES["pay.corp.example"].replace("ledger", "ledger2"))
        res.send_signal(signal.SIGHUP)
        d.wait(worker, 30)
        time.sleep(0.3)
        pcap = d.finish_capture("resolver-lo.pcap")
        d.signal(res)
        d.signal(gw)
        if ("Temporary failure in name resolution" in nlog.read_text()) != fault:
            raise RuntimeError("the notifier's resolution outcome is not the expected one")

        out.mkdir(parents=True, exist_ok=True)
        old = now - 5.5 * 3600
        top = "support-bundle-app07"
        b = (Bundle()
             .add(f"{top}/var/log/notifier/notifier.jsonl", nlog)
             .add(f"{top}/var/log/resolverd/resolverd.log", rlog)
             .add(f"{top}/var/log/payments-gw/access.log", access)
             .add(f"{top}/etc/resolv.conf", resolv)
             .add(f"{top}/etc/resolverd/zones/pay.corp.example.zone", zdir / "pay.corp.example.zone")
             .add(f"{top}/net/resolver-lo.pcap", pcap)
             .add(f"{top}/crash/core.thumbnailer", old_core, mtime=old)
             .add(f"{top}/crash/thumbnailer", old_exe, mtime=old))
        (out / f"{top}.tar.gz").write_bytes(b.tgz_bytes())
        if not fault:
            return
        write_truth(out, NAME, codes=["NET.DNS.SERVFAIL", "LOG.ERROR_TEMPLATE", "LOG.FIRST_ERROR"],
                    artifact="*resolver*",
                    contains=["pay.corp.example"],
                    description="A zone push with a bad TTL made the zone pay.corp.example fail to load on the "
                                "site resolver (resolverd, 127.0.5.53); it answered SERVFAIL for "
                                "payments-gw.pay.corp.example, so the notifier could not resolve the payments "
                                "gateway and its deliveries failed and queued up.")


if __name__ == "__main__":
    roles({"resolverd": resolverd, "payments_gw": payments_gw, "notifier": notifier})
