"""TLS failure after a certificate rotation: the new certificate is signed by a CA the sync job does not trust.

Real programs: ``partner-api`` (a Python TLS 1.2 HTTP service on 127.0.22.2:8443, ISO-stamped
log), a cron-style shell loop running ``curl`` with the old CA bundle (``sync.sh``, its output
with time stamps), and a Python client whose trust store already holds the new CA.  The CAs and
certificates are made with ``openssl``.  The service's certificate is rotated to one issued by
the new CA and the service restarted: curl rejects the chain ("SSL certificate problem: unable
to get local issuer certificate") and sends the fatal ``unknown_ca`` alert; the other client
goes on working.  Noise: the chronic expiry warning that prompted the rotation, an old
BrokenPipeError traceback, a refused connection during the restart, healthy TLS sessions.
Layout: zip.
"""

from __future__ import annotations

import http.server
import logging
import ssl
import time
import urllib.request
from pathlib import Path

from kit import Bundle, Drill, need_tools, roles, ticks, write_truth
from logfmt import at, close, setup

NAME = "tls-unknown-ca"
CLASS = "TLS failure (untrusted certificate)"
SEED = 1112
API = ("127.0.22.2", 8443)
HOST = "partner-api.example"

SYNC_SH = r"""#!/bin/sh
# partner order sync, run every few hundred milliseconds by the scheduler
end=$(( $(date +%s) + $1 ))
n=0
while [ "$(date +%s)" -lt "$end" ]; do
  n=$((n + 1))
  if out=$(curl -sS --max-time 3 --tlsv1.2 --cacert "$2" --resolve partner-api.example:8443:127.0.22.2 \
           https://partner-api.example:8443/orders/export?page=$n -o /dev/null -w '%{http_code}' 2>&1); then
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) sync[$$]: page $n exported (HTTP $out)"
  else
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) sync[$$]: ERROR page $n from https://partner-api.example:8443 failed: $out"
  fi
  sleep 0.3
done
"""


def partner_api(log_path: str, cert: str, key: str) -> None:
    log = setup(log_path, "iso", "partner.api", program="partner-api")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = b'{"orders": []}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    class Server(http.server.ThreadingHTTPServer):
        def get_request(self):
            conn, addr = self.socket.accept()
            return ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False), addr

        def finish_request(self, request, client_address):
            try:
                request.do_handshake()
            except ssl.SSLError as exc:
                log.warning("TLS handshake with %s:%d failed: %s", *client_address, exc.reason)
                return
            super().finish_request(request, client_address)

        def handle_error(self, request, client_address):
            pass

    log.info("partner-api listening on https://%s:%d (certificate %s)", *API, Path(cert).name)
    Server(API, H).serve_forever()


def fresh_client(log_path: str, ca_bundle: str, seconds: str) -> None:
    log = setup(log_path, "iso", "billing.partner", program="billing")
    ctx = ssl.create_default_context(cafile=ca_bundle)
    end = time.time() + float(seconds)
    n = 0
    while time.time() < end:
        n += 1
        try:
            req = urllib.request.Request(f"https://{API[0]}:{API[1]}/invoices?page={n}", headers={"Host": HOST})
            ctx.check_hostname = False
            with urllib.request.urlopen(req, context=ctx, timeout=3) as r:
                r.read()
            log.info("invoice page %d fetched", n)
        except OSError as exc:
            log.warning("invoice page %d not fetched: %s", n, exc)
        time.sleep(0.5)


def openssl_ca(d: Drill, name: str, cn: str) -> tuple[Path, Path]:
    key, crt = d.path(f"pki/{name}.key"), d.path(f"pki/{name}.crt")
    d.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
           "-keyout", str(key), "-out", str(crt), "-days", "3650", "-subj", f"/O=Example Corp/CN={cn}"])
    return key, crt


def leaf(d: Drill, name: str, ca_key: Path, ca_crt: Path) -> tuple[Path, Path]:
    key, csr, crt = d.path(f"pki/{name}.key"), d.path(f"pki/{name}.csr"), d.path(f"pki/{name}.crt")
    d.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
           "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={HOST}"])
    ext = d.write(f"pki/{name}.ext", f"subjectAltName=DNS:{HOST}\n")
    d.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
           "-days", "90", "-out", str(crt), "-extfile", str(ext)])
    return key, crt


def build(out: Path) -> None:
    need_tools("openssl", "curl")
    with Drill(NAME, SEED) as d:
        rng = d.rng
        now = time.time()
        old_ca_key, old_ca = openssl_ca(d, "ca-2019", "Example Corp Issuing CA 2019")
        new_ca_key, new_ca = openssl_ca(d, "ca-2026", "Example Corp Issuing CA 2026")
        old_key, old_crt = leaf(d, "partner-api-2025", old_ca_key, old_ca)
        new_key, new_crt = leaf(d, "partner-api-2026", new_ca_key, new_ca)
        both = d.write("pki/trust-both.pem", old_ca.read_text() + new_ca.read_text())
        alog, blog, slog = d.path("logs/partner-api.log"), d.path("logs/billing.log"), d.path("logs/sync.out")
        lg = setup(alog, "iso", "partner.api", program="partner-api")
        for t in ticks(rng, now - 10 * 3600, now - 40, 1800):
            with at(t):
                lg.warning("certificate for %s expires in 9 days (issuer Example Corp Issuing CA 2019)", HOST)
        with at(now - 3.2 * 3600):
            try:
                write_report(BrokenPipeError(32, "Broken pipe"))
            except BrokenPipeError:
                lg.exception("sending order export page 12 failed")
        close(lg)
        with open(slog, "w") as f:
            for t in ticks(rng, now - 10 * 3600, now - 40, 240):
                f.write(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) +
                        f" sync[{rng.randint(2000, 9000)}]: page 1 exported (HTTP 200)\n")
        script = d.write("bin/sync.sh", SYNC_SH)
        api = d.role(__file__, "partner_api", alog, old_crt, old_key, out="api.out")
        d.wait_port(*API, proc=api)
        d.start_capture(API)
        sync = d.spawn(["sh", str(script), "8", str(old_ca)], out="logs/sync.out")
        bill = d.role(__file__, "fresh_client", blog, both, 8, out="billing.out")
        time.sleep(2.5)
        d.signal(api)                                    # the rotation: new certificate, restart
        api = d.role(__file__, "partner_api", alog, new_crt, new_key, out="api.out")
        d.wait_port(*API, proc=api)
        d.wait(sync, 30)
        d.wait(bill, 30)
        pcap = d.finish_capture("partner-api-8443.pcap")
        d.signal(api)
        if "certificate problem" not in slog.read_text():
            raise RuntimeError("curl did not reject the new chain")
        (out / "partner-sync-failure.zip").write_bytes(
            Bundle()
            .add("scheduler/sync.out", slog)
            .add("scheduler/ca-bundle.pem", old_ca)
            .add("partner-api/partner-api.log", alog)
            .add("partner-api/partner-api-2026.crt", new_crt)
            .add("billing/billing.log", blog)
            .add("partner-api-8443.pcap", pcap)
            .zip_bytes())
        write_truth(out, NAME, codes=["NET.TLS.ALERT"], artifact="*", contains=["unknown_ca"],
                    alternatives=[{"codes": ["LOG.ERROR_TEMPLATE", "LOG.FIRST_ERROR"], "artifact": "*sync*",
                                   "contains": ["certificate problem"]}],
                    description="partner-api's certificate was rotated to one issued by the new 2026 CA; the sync "
                                "job's curl trusts only the 2019 CA, rejected the chain with unknown_ca and every "
                                "export page failed, while clients with the new CA kept working.")


def write_report(exc: OSError) -> None:
    raise exc


if __name__ == "__main__":
    roles({"partner_api": partner_api, "fresh_client": fresh_client})
