"""HTTP on ports that are not HTTP's: found by the first line of a stream, as tshark does.

tshark's ``http_tcp`` heuristic is on by default (``tshark -G heuristic-decodes``:
``tcp http T``), so the corpus oracles were made with it; Wireshark tries the
dissector of a stream's port first, so HTTP on a port of another protocol
(SSH's 22 in ``zeek_http_get_to_ssh_server_nsec.pcap``) is not HTTP to tshark,
nor to Backline (:data:`OTHER_PROTOCOL_PORTS`).

* the start-line test: requests and status lines in, other text protocols out;
* real loopback traffic: Python's ``http.server`` on a free port (a handler that
  sleeps 1.5 s, one that answers 503), captured with dumpcap on ``lo``; the
  requests and status codes equal tshark's (default preferences), and
  NET.HTTP.SLOW and NET.HTTP.5XX name the service's ``address:port``;
* written captures: streams without a handshake, status line first, other
  protocols' ports, text protocols on a free port, compared with tshark.
"""

from __future__ import annotations

import http.client
import http.server
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from backline.analyzers.net.capture import analyze_capture
from backline.analyzers.net.findings import build_findings
from backline.analyzers.net.http import HTTP_PORTS, OTHER_PROTOCOL_PORTS, http_first_line
from backline.analyzers.net.summary import oracle_counts
from backline.analyzers.net.synth import A, ACK_F, B, PSH_F, SYN_F, PcapWriter, ether, ipv4, tcp
from backline.analyzers.net.tls import TLS_PORTS
from backline.testing import free_port


def _tshark_http(cap: Path) -> tuple[int, Counter]:
    """tshark's (default preferences) HTTP request count and status codes of a capture."""
    if not shutil.which("tshark"):
        pytest.fail("tshark is the oracle here (apt-get install tshark; .ci/run does)")
    out = subprocess.run(["tshark", "-n", "-r", str(cap), "-T", "fields", "-E", "occurrence=a",
                          "-E", "aggregator=,", "-e", "http.request", "-e", "http.response.code"],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    requests, codes = 0, Counter()
    for line in out.splitlines():
        req, _tab, code = line.partition("\t")
        requests += bool(req.strip())
        codes.update(c for c in code.split(",") if c)
    return requests, codes


# ------------------------------------------------------------------ the start-line test

@pytest.mark.parametrize("line, kind", [
    (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1),
    (b"POST /api/v1/jobs?id=7 HTTP/1.0\r\n", 1),
    (b"GET /x HTTP/1.1\n", 1),                       # a bare LF ends a line too
    (b"PUT / HTTP/1.1\n", 1),                        # the shortest request line
    (b"M-SEARCH * HTTP/1.1\r\n", 1),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 2),
    (b"HTTP/1.0 503 Service Unavailable\r\n", 2),
    (b"HTTP/1.1 204\r\n", 2),                       # no reason phrase
])
def test_start_lines_are_http(line, kind):
    assert http_first_line(line) == kind


@pytest.mark.parametrize("line", [
    b"INVITE sip:bob@example.com SIP/2.0\r\n",       # SIP request
    b"OPTIONS sip:bob@example.com SIP/2.0\r\n",      # SIP, an HTTP method name
    b"SIP/2.0 200 OK\r\n",
    b"OPTIONS rtsp://cam/stream RTSP/1.0\r\n",       # RTSP
    b"RTSP/1.0 200 OK\r\n",
    b"220 mail.example.com ESMTP Postfix\r\n",      # SMTP / FTP greeting
    b"EHLO client\r\n",
    b"USER anonymous\r\n",
    b"+OK POP3 server ready\r\n",
    b"* OK IMAP4rev1 ready\r\n",
    b"a1 LOGIN user pass\r\n",
    b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",     # Redis RESP
    b"get foo\r\n",                                  # memcached
    b"set foo 0 0 3\r\nbar\r\n",
    b"SSH-2.0-OpenSSH_9.2\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",    # TLS ClientHello
    b"GET / HTTP/1.1",                               # the line does not end here
    b"GET  / HTTP/1.1\r\n",                          # two spaces: no target
    b"GET / HTTP/2.0\r\n",
    b"GET / HTTP/1.1 extra\r\n",
    b"PUT /a\x00b HTTP/1.1\r\n",                     # a control byte in the target
    b"HTTP/1.1 20\r\n",
    b"HTTP/1.1 2000 OK\r\n",
    b"HTTP/1.1 200 OK\x00\r\n",
    b"HTTP/1.1 200 OK\rX\n",
    b"",
])
def test_other_first_lines_are_not(line):
    assert http_first_line(line) == 0


def test_other_protocol_ports_leave_http_and_tls_ports_alone():
    assert not OTHER_PROTOCOL_PORTS & HTTP_PORTS
    assert not OTHER_PROTOCOL_PORTS & TLS_PORTS
    assert {22, 25, 5060, 554, 6379, 11211} <= OTHER_PROTOCOL_PORTS


# ------------------------------------------------------------------ real loopback traffic

def _free_port() -> int:
    """A free TCP port on 127.0.0.1 that is no port Backline or tshark gives to a protocol."""
    return free_port(OTHER_PROTOCOL_PORTS | HTTP_PORTS | TLS_PORTS)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (the http.server name)
        if self.path.startswith("/slow"):
            time.sleep(1.5)
        status = 503 if self.path.startswith("/fail") else 200
        body = b"busy\n" if status == 503 else b"ok\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


@pytest.fixture(scope="module")
def loopback_capture(tmp_path_factory) -> tuple[Path, int]:
    """A capture of real HTTP/1.1 traffic to a service on a free, non-HTTP port."""
    if not shutil.which("dumpcap"):
        pytest.fail("dumpcap captures the traffic here (apt-get install tshark)")
    cap = tmp_path_factory.mktemp("anyport") / "anyport.pcapng"
    port = _free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    dump = subprocess.Popen(["dumpcap", "-q", "-i", "lo", "-f", f"tcp port {port}", "-w",
                             str(cap)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not (cap.exists() and cap.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)       # the capture filter is in place once the file has its header
        paths = ["/slow/1", "/fast", "/slow/2", "/fail/a", "/fast", "/slow/3", "/fail/b"]
        for i in range(0, len(paths), 4):                 # two keep-alive connections
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                              source_address=("127.0.0.1", _free_port()))
            for path in paths[i:i + 4]:
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
            conn.close()
        time.sleep(0.5)
    finally:
        dump.send_signal(signal.SIGINT)
        _out, err = dump.communicate(timeout=20)
        server.shutdown()
        server.server_close()
    assert cap.exists() and cap.stat().st_size > 0, err.decode(errors="replace")
    return cap, port


def test_loopback_http_counts_equal_tshark(loopback_capture):
    cap, _port = loopback_capture
    mine = oracle_counts(analyze_capture(cap))
    requests, codes = _tshark_http(cap)
    assert requests == 7 and codes == Counter({"200": 5, "503": 2})
    assert mine["http_requests"] == requests
    assert mine["http_status"] == dict(codes)


def test_loopback_slow_and_5xx_findings_name_the_service(loopback_capture):
    cap, port = loopback_capture
    st = analyze_capture(cap)
    findings, _events = build_findings(st, "anyport.pcapng")
    by_code = {f.code: f for f in findings}
    server = f"127.0.0.1:{port}"
    slow = by_code["NET.HTTP.SLOW"]
    assert slow.data["server"] == server and server in slow.title
    assert slow.data["max_s"] >= 1.5 and slow.count == 7
    fails = [f for f in findings if f.code == "NET.HTTP.5XX"]    # one per path
    assert {(f.data["server"], f.data["path"], f.data["status"]) for f in fails} == {
        (server, "/fail/a", 503), (server, "/fail/b", 503)}
    assert all(server in f.title for f in fails)


# ------------------------------------------------------------------ written captures

REQ = b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n"
RESP = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"


def _exchange(w: PcapWriter, t: int, cport: int, sport: int, req: bytes, resp: bytes,
              handshake: bool = True, response_first: bool = False) -> int:
    """One stream; ``response_first``: the capture starts at the server's answer."""
    cs, ss = 1000, 5000
    if handshake:
        w.write(t, ether(ipv4(A, B, tcp(cport, sport, cs, 0, SYN_F))))
        w.write(t + 1000, ether(ipv4(B, A, tcp(sport, cport, ss, cs + 1, SYN_F | ACK_F))))
        w.write(t + 2000, ether(ipv4(A, B, tcp(cport, sport, cs + 1, ss + 1, ACK_F))))
    if not response_first:
        w.write(t + 3000, ether(ipv4(A, B, tcp(cport, sport, cs + 1, ss + 1, ACK_F | PSH_F,
                                               payload=req))))
    w.write(t + 1_200_000_000, ether(ipv4(B, A, tcp(sport, cport, ss + 1, cs + 1 + len(req),
                                                    ACK_F | PSH_F, payload=resp))))
    return t + 2_000_000_000


def test_written_streams_equal_tshark(tmp_path):
    """HTTP on free ports with and without a handshake, a stream whose capture starts at
    the answer, HTTP on other protocols' ports (22 SSH, 5060 SIP, 6379 Redis) and on an
    HTTPS port (443), and SIP, RTSP and Redis spoken on a free port."""
    cap = tmp_path / "written.pcap"
    with cap.open("wb") as f:
        w = PcapWriter(f)
        t = 1_700_000_000 * 10**9
        t = _exchange(w, t, 40001, 31501, REQ, RESP)
        t = _exchange(w, t, 40002, 9000, REQ, RESP, handshake=False)
        t = _exchange(w, t, 40003, 5000, b"", RESP, handshake=False, response_first=True)
        t = _exchange(w, t, 40004, 3000, REQ.replace(b"1.1", b"1.0"),
                      RESP.replace(b"1.1", b"1.0"))
        for port in (22, 5060, 6379, 443):
            t = _exchange(w, t, 40010 + port % 100, port, REQ, RESP)
        t = _exchange(w, t, 40020, 31502, b"INVITE sip:bob@x SIP/2.0\r\nCSeq: 1 INVITE\r\n\r\n",
                      b"SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\n\r\n")
        t = _exchange(w, t, 40021, 31503, b"OPTIONS rtsp://cam/ RTSP/1.0\r\nCSeq: 1\r\n\r\n",
                      b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n")
        t = _exchange(w, t, 40022, 31504, b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n")
    st = analyze_capture(cap)
    mine = oracle_counts(st)
    requests, codes = _tshark_http(cap)
    assert mine["http_requests"] == requests == 4          # 31501, 9000, 3000, 443
    assert mine["http_status"] == dict(codes) == {"503": 5}
    assert set(st.http_times) == {"10.0.0.2:31501", "10.0.0.2:9000", "10.0.0.2:3000",
                                  "10.0.0.2:443"}


def test_http_found_at_a_later_segment_as_tshark_does(tmp_path):
    """tshark tries each segment of a stream that no dissector took: a capture that starts
    inside a keep-alive connection (a body first), a PROXY protocol v1 line before the
    request (tshark's ``proxy`` heuristic hands the rest to HTTP), and a binary stream
    that never turns HTTP."""
    cap = tmp_path / "later.pcap"
    with cap.open("wb") as f:
        w = PcapWriter(f)
        t, cs, ss = 1_700_000_000 * 10**9, 1000, 5000

        def seg(t: int, frm_client: bool, cport: int, sport: int, seq: int, ack: int,
                payload: bytes) -> None:
            pkt = tcp(cport, sport, seq, ack, ACK_F | PSH_F, payload=payload) if frm_client \
                else tcp(sport, cport, seq, ack, ACK_F | PSH_F, payload=payload)
            w.write(t, ether(ipv4(A, B, pkt) if frm_client else ipv4(B, A, pkt)))

        # 1. mid-stream: the rest of a response body, then a request and a 500
        body, req2 = b"x" * 300, b"GET /later HTTP/1.1\r\nHost: h\r\n\r\n"
        resp2 = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"
        seg(t, False, 40100, 31510, ss, cs, body)
        seg(t + 10**6, True, 40100, 31510, cs, ss + 300, req2)
        seg(t + 2 * 10**6, False, 40100, 31510, ss + 300, cs + len(req2), resp2)
        # 2. a PROXY protocol v1 line before the request
        preq = b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n" + REQ
        seg(t + 3 * 10**6, True, 40101, 31511, cs, ss, preq)
        seg(t + 4 * 10**6, False, 40101, 31511, ss, cs + len(preq), RESP)
        # 3. binary both ways, with a byte that could start a method (G)
        seg(t + 5 * 10**6, True, 40102, 31512, cs, ss, b"\x00\x01GET" * 10)
        seg(t + 6 * 10**6, False, 40102, 31512, ss, cs + 50, b"G\x00\x00\x00")
    st = analyze_capture(cap)
    mine = oracle_counts(st)
    requests, codes = _tshark_http(cap)
    assert mine["http_requests"] == requests == 2
    assert mine["http_status"] == dict(codes) == {"500": 1, "503": 1}
    assert set(st.http_times) == {"10.0.0.2:31510", "10.0.0.2:31511"}


def test_requests_given_up_unanswered_after_a_wait_name_the_slow_server(tmp_path):
    """A proxy waits for a slow upstream, gives up and resets: the upstream's answers never come, so
    there is no response time to be slow - NET.HTTP.UNANSWERED names the server and the wait.  A
    request answered in time, and one whose connection was reset at once (a refusal, not a wait), are
    not counted; nor is a request still open when the capture ends, nor one whose server reset it
    after the wait (a server that dies or is killed drops its connections: not a client giving up)."""
    from backline.analyzers.net.synth import RST_F

    cap = tmp_path / "given-up.pcap"
    with cap.open("wb") as f:
        w = PcapWriter(f)
        t, cs, ss = 1_700_000_000 * 10**9, 1000, 5000
        for i, (wait_s, answered) in enumerate([(2.0, False), (2.0, False), (2.5, False), (0.0, False),
                                                (0.1, True), (None, False), (2.0, "server")]):
            cport = 41000 + i
            w.write(t, ether(ipv4(A, B, tcp(cport, 31501, cs, 0, SYN_F))))
            w.write(t + 1000, ether(ipv4(B, A, tcp(31501, cport, ss, cs + 1, SYN_F | ACK_F))))
            w.write(t + 2000, ether(ipv4(A, B, tcp(cport, 31501, cs + 1, ss + 1, ACK_F))))
            w.write(t + 3000, ether(ipv4(A, B, tcp(cport, 31501, cs + 1, ss + 1, ACK_F | PSH_F, payload=REQ))))
            if answered is True:
                w.write(t + 3000 + int(wait_s * 1e9), ether(ipv4(B, A, tcp(31501, cport, ss + 1, cs + 1 + len(REQ),
                                                                          ACK_F | PSH_F, payload=RESP))))
            elif wait_s is not None and answered == "server":
                w.write(t + 3000 + int(wait_s * 1e9), ether(ipv4(B, A, tcp(31501, cport, ss + 1, cs + 1 + len(REQ),
                                                                          RST_F | ACK_F))))
            elif wait_s is not None:
                w.write(t + 3000 + int(wait_s * 1e9), ether(ipv4(A, B, tcp(cport, 31501, cs + 1 + len(REQ),
                                                                          ss + 1, RST_F | ACK_F))))
            t += 3 * 10**9
    findings = [f for f in build_findings(analyze_capture(cap), str(cap))[0] if f.code == "NET.HTTP.UNANSWERED"]
    assert len(findings) == 1, findings
    f = findings[0]
    assert f.data["server"] == "10.0.0.2:31501" and f.data["requests"] == 3 and f.count == 3
    assert 1.9 < f.data["p50_wait_s"] < 2.1 and 2.4 < f.data["max_wait_s"] < 2.6
    assert "10.0.0.2:31501" in f.title
