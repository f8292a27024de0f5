"""TLS version mismatch: the gateway is hardened to TLS 1.3 only, a pinned TLS 1.2 client breaks.

Real programs: ``openssl s_server`` as the ERP gateway on 127.0.0.1:18443 (a real certificate
made with ``openssl req``), ``ordersync`` (a Python agent whose config pins
``maximum_version = TLSv1.2`` for an old appliance; syslog layout) and a reporting client with
default settings.  The gateway is restarted with ``-min_protocol TLSv1.3``: from then on every handshake
of ordersync ends with the server's fatal ``protocol_version`` alert, while the reporting
client (TLS 1.3) still works.  Noise: a chronic NTP offset warning, an old ValueError traceback
in the agent's log, a connection refused during the gateway's restart, healthy TLS 1.3
sessions.  Layout: zip with a nested tar.gz of client logs.
"""

from __future__ import annotations

import logging
import socket
import ssl
import sys
import time
from pathlib import Path

from kit import Bundle, Drill, roles, ticks, write_truth
from logfmt import at, setup

NAME = "tls-version"
CLASS = "TLS version mismatch"
SEED = 1103
GATEWAY = ("127.0.0.1", 18443)
HOSTNAME = "erp-gateway.corp.example"


def fetch(ctx: ssl.SSLContext, path: str) -> bytes:
    with socket.create_connection(GATEWAY, timeout=3) as raw:
        with ctx.wrap_socket(raw, server_hostname=HOSTNAME) as s:
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: {HOSTNAME}\r\n\r\n".encode())
            chunks = []
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
            return b"".join(chunks)


def parse_order_row(row: str) -> tuple[str, int, str]:
    sku, qty, wh = row.split(";")
    return sku, int(qty.split("=")[1]), wh.split("=")[1]


def ordersync(log_path: str, cafile: str, seconds: str, legacy: str) -> None:
    prog = "ordersync" if legacy == "1" else "reporting"
    log = setup(log_path, "syslog", prog, program=prog)
    ctx = ssl.create_default_context(cafile=cafile)
    if legacy == "1":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2        # pinned for the old warehouse appliance
    log.info("%s started, gateway https://%s:%d/", prog, HOSTNAME, GATEWAY[1])
    end = time.time() + float(seconds)
    batch = 5120
    while time.time() < end:
        batch += 1
        try:
            body = fetch(ctx, f"/orders/sync?batch={batch}")
            log.info("batch %d synced (%d bytes)", batch, len(body))
        except ssl.SSLError as exc:
            log.error("batch %d: TLS handshake with %s:%d failed: %s", batch, *GATEWAY, exc)
        except OSError as exc:
            log.warning("batch %d: gateway %s:%d unreachable: %s; will retry", batch, *GATEWAY, exc)
        time.sleep(0.35 if legacy == "1" else 0.6)


def history(d: Drill, log_path: Path, start: float, end: float) -> None:
    rng = d.rng
    log = setup(log_path, "syslog", "ordersync", program="ordersync")
    events = [(t, "ntp") for t in ticks(rng, start, end, 1200)]
    events += [(t, "ok") for t in ticks(rng, start, end, 180)]
    events.append((end - 3.1 * 3600, "crash"))
    batch = 1000
    for t, what in sorted(events):
        batch += 1
        with at(t):
            if what == "ntp":
                log.warning("clock offset to ntp1.corp.example is %.2f s (limit 0.50 s)", rng.uniform(0.55, 0.9))
            elif what == "ok":
                log.info("batch %d synced (%d bytes)", batch, rng.randint(800, 4000))
            else:
                row = "SKU-88;qty=;warehouse=W2"
                try:
                    parse_order_row(row)
                except ValueError:
                    log.exception("skipping malformed order row %r", row)
    for h in log.handlers[:]:
        h.close()
        log.removeHandler(h)


def build(out: Path) -> None:
    with Drill(NAME, SEED) as d:
        me = __file__
        now = time.time()
        key, cert = d.path("gw/key.pem"), d.path("gw/cert.pem")
        d.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
               "-keyout", str(key), "-out", str(cert), "-days", "365", "-subj", f"/CN={HOSTNAME}",
               "-addext", f"subjectAltName=DNS:{HOSTNAME}"])
        sync_log, rep_log = d.path("clients/ordersync.log"), d.path("clients/reporting.log")
        history(d, sync_log, now - 8 * 3600, now - 40)
        server_cmd = ["openssl", "s_server", "-accept", f"{GATEWAY[0]}:{GATEWAY[1]}", "-cert", str(cert),
                      "-key", str(key), "-www", "-naccept", "1000"]
        gw = d.spawn(server_cmd, out="gw/console.log")
        d.wait_port(*GATEWAY, proc=gw)
        d.start_capture(GATEWAY)
        sync = d.role(me, "ordersync", sync_log, cert, 6.5, 1, out="ordersync.out")
        rep = d.role(me, "ordersync", rep_log, cert, 6.5, 0, out="reporting.out")
        time.sleep(2.5)
        d.signal(gw)                                            # the hardening change: TLS 1.3 only
        with open(d.path("gw/console.log"), "a") as f:
            f.write(f"# restarted {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} with -min_protocol TLSv1.3\n")
        gw = d.spawn(server_cmd + ["-min_protocol", "TLSv1.3"], out="gw/console.log")
        d.wait_port(*GATEWAY, proc=gw)
        d.wait(sync, 30)
        d.wait(rep, 30)
        pcap = d.finish_capture("gw-18443.pcap")
        d.signal(gw)
        if "PROTOCOL_VERSION" not in sync_log.read_text():
            raise RuntimeError("ordersync saw no protocol_version alert")

        out.mkdir(parents=True, exist_ok=True)
        clients = (Bundle()
                   .add("clients/ordersync.log", sync_log)
                   .add("clients/reporting.log", rep_log)
                   .add("clients/ordersync.conf", "[gateway]\nurl = https://erp-gateway.corp.example:18443/\n"
                                                  "ssl_max_version = TLSv1.2   ; warehouse appliance W2\n"))
        (out / "ESC-2291-evidence.zip").write_bytes(
            Bundle()
            .add("erp-gateway/s_server-console.log", d.path("gw/console.log"))
            .add("erp-gateway/cert.pem", cert)
            .add("client-logs.tar.gz", clients.tgz_bytes())
            .add("gw-18443.pcap", pcap)
            .zip_bytes())
        write_truth(out, NAME, codes=["NET.TLS.ALERT", "LOG.ERROR_TEMPLATE", "LOG.FIRST_ERROR"], artifact="*",
                    contains=["protocol"],
                    description="The ERP gateway (openssl s_server, 127.0.0.1:18443) was restarted with TLS 1.2 "
                                "disabled; ordersync pins TLS 1.2 as its maximum, so every handshake ended with "
                                "the server's fatal protocol_version alert and its order syncs failed.")


if __name__ == "__main__":
    roles({"ordersync": ordersync})
