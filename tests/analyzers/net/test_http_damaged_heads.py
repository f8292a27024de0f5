"""HTTP heads with fields missing or out of range (found by ``benchmarks/fuzz.py net``).

The compiled engine is built with bounds checks off, so a response line with no status
code (``HTTP/1.1`` alone) read past the end of its split fields and crashed the process
(segmentation fault); a Content-Length or chunk size too large for 64 bits raised
OverflowError out of the engine.  Each is now a message of unknown status / a gap.
"""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from backline.analyzers.net.capture import analyze_reader
from backline.analyzers.net.reader import CaptureReader
from backline.analyzers.net.summary import oracle_counts
from backline.analyzers.net.synth import A, ACK_F, B, FIN_F, PSH_F, SYN_F, PcapWriter, ether, ipv4, tcp


def exchange(request: bytes, responses: list[bytes]) -> bytes:
    f = io.BytesIO(); w = PcapWriter(f); t = [10**18]
    cs, ss = [1001], [5001]

    def send(src_is_client: bool, flags: int, payload: bytes = b"") -> None:
        t[0] += 1_000_000
        if src_is_client:
            w.write(t[0], ether(ipv4(A, B, tcp(40000, 80, cs[0], ss[0], flags, payload=payload))))
            cs[0] += len(payload)
        else:
            w.write(t[0], ether(ipv4(B, A, tcp(80, 40000, ss[0], cs[0], flags, payload=payload))))
            ss[0] += len(payload)

    w.write(t[0], ether(ipv4(A, B, tcp(40000, 80, 1000, 0, SYN_F))))
    t[0] += 1_000_000
    w.write(t[0], ether(ipv4(B, A, tcp(80, 40000, 5000, 1001, SYN_F | ACK_F))))
    send(True, ACK_F)
    send(True, PSH_F | ACK_F, request)
    for r in responses:
        send(False, PSH_F | ACK_F, r)
        send(True, ACK_F)
    send(True, FIN_F | ACK_F)
    return f.getvalue()


GET = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
CASES = {
    "no status code": [b"HTTP/1.1\r\nServer: x\r\n\r\n"],
    "status too large": [b"HTTP/1.1 99999999999999999999 OK\r\nContent-Length: 0\r\n\r\n"],
    "content-length past 64 bits": [b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nbody"],
    "chunk size past 64 bits": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                b"fffffffffffffffffffffff\r\nabc\r\n0\r\n\r\n"],
    "negative chunk size": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nabc\r\n0\r\n\r\n"],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_damaged_response_heads_are_read_without_crashing(tmp_path, case):
    capture = exchange(GET, CASES[case])
    path = tmp_path / "c.pcap"
    path.write_bytes(capture)
    # in a child process: before the fix the first case killed the interpreter
    code = ("import sys; from backline.analyzers.net.capture import analyze_capture; "
            "from backline.analyzers.net.summary import oracle_counts; "
            "print(oracle_counts(analyze_capture(sys.argv[1]))['http_requests'])")
    p = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip() == "1"
    st = analyze_reader(CaptureReader.from_bytes(capture, name="c.pcap"))
    assert st.packets == 4 + 2 * len(CASES[case]) + 1
    assert oracle_counts(st)["http_requests"] == 1


def test_a_response_without_a_status_counts_as_status_zero_and_the_next_one_is_read():
    st = analyze_reader(CaptureReader.from_bytes(
        exchange(GET, [b"HTTP/1.1\r\nContent-Length: 0\r\n\r\n"]), name="c.pcap"))
    counts = oracle_counts(st)
    assert counts["http_requests"] == 1
    assert sum(counts["http_status"].values()) <= 1 and 200 not in counts["http_status"]
