"""A hole in an HTTP response filled late, as tshark 4.0.17 reassembles it.

Found by ``benchmarks/net_difftest.py`` on seeded captures with loss and
reordering.  Wireshark 4.0 (default preferences: no out-of-order reassembly)
completes a message whose hole is filled by a fast retransmission, or by an
out-of-order segment that comes before the message's last segment; one filled
by a (non-fast) retransmission, or by an out-of-order segment after the last
segment came, is never completed ("[TCP Retransmission]" / "[TCP Out-Of-Order]"
without "[TCP segment of a reassembled PDU]").

tshark 4.0.17, frame of the fill (-e tcp.analysis.flags -e http.response.code):
``fast``: "[TCP Fast Retransmission] HTTP/1.1 200 OK" (200);
``rto``: "[TCP Retransmission]" (nothing); ``ooo_after_end``: "[TCP Out-Of-Order]"
(nothing); ``ooo_before_end``: "[TCP Out-Of-Order] ... [TCP segment of a
reassembled PDU]", then "HTTP/1.1 200 OK" in the last segment (200).
"""

from __future__ import annotations

import io

import pytest

from backline.analyzers.net.capture import analyze_reader
from backline.analyzers.net.reader import CaptureReader
from backline.analyzers.net.summary import oracle_counts
from backline.analyzers.net.synth import (A, ACK_F, B, PSH_F, SYN_F, PcapWriter, ether, ipv4,
                                          tcp)

MS = 1_000_000


def build(case: str) -> bytes:
    f = io.BytesIO()
    w = PcapWriter(f)
    t = [10**18]

    def put(src, dst, sp, dp, seq, ack, fl, payload=b"", dt=10 * MS):
        t[0] += dt
        w.write(t[0], ether(ipv4(src, dst, tcp(sp, dp, seq, ack, fl, payload=payload))))

    def c(*a, **k):
        put(A, B, 5000, 80, *a, **k)

    def s(*a, **k):
        put(B, A, 80, 5000, *a, **k)

    req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 3500\r\n\r\n" + b"x" * 3500
    c(100, 0, SYN_F)
    s(500, 101, SYN_F | ACK_F)
    c(101, 501, ACK_F)
    c(101, 501, PSH_F | ACK_F, req)
    ca = 101 + len(req)
    s(501, ca, ACK_F, resp[:1000])
    if case == "ooo_before_end":
        s(2501, ca, ACK_F, resp[2000:3000], dt=MS // 10)            # after the hole
        s(1501, ca, ACK_F, resp[1000:2000], dt=MS // 10)            # out of order
        s(3501, ca, ACK_F, resp[3000:], dt=MS // 10)                # the last segment
    else:
        s(2501, ca, ACK_F, resp[2000:], dt=MS // 10)                # after the hole, to the end
        dups = 3 if case == "fast" else 1
        for _ in range(dups):
            c(ca, 1501, ACK_F, dt=MS // 10)
        gap = {"fast": MS, "rto": 300 * MS, "ooo_after_end": MS // 10}[case]
        s(1501, ca, ACK_F, resp[1000:2000], dt=gap)
    c(ca, 501 + len(resp), ACK_F)
    return f.getvalue()


@pytest.mark.parametrize("case, counted", [("fast", True), ("rto", False),
                                           ("ooo_after_end", False), ("ooo_before_end", True)])
def test_late_fill(case, counted):
    got = oracle_counts(analyze_reader(CaptureReader.from_bytes(build(case), f"{case}.pcap")))
    assert got["http_status"] == ({"200": 1} if counted else {})


def test_messages_after_an_unfinished_one_are_parsed_whole():
    """A response whose hole only a retransmission fills (never completed), then a
    304 and a 200 over three segments.  tshark 4.0.17: the first response shows no
    status, then "HTTP/1.1 304 OK" and "HTTP/1.1 200 OK" (oracle: http_status
    {304: 1, 200: 1}).  The 200's bytes must not be taken for the rest of the
    unfinished body."""
    f = io.BytesIO()
    w = PcapWriter(f)
    t = [10**18]

    def put(src, dst, sp, dp, seq, ack, fl, payload=b"", dt=MS):
        t[0] += dt
        w.write(t[0], ether(ipv4(src, dst, tcp(sp, dp, seq, ack, fl, payload=payload))))

    def s(seq, payload, dt=MS):
        put(B, A, 80, 5000, seq, 200, PSH_F | ACK_F, payload, dt)

    put(A, B, 5000, 80, 100, 0, SYN_F)
    put(B, A, 80, 5000, 500, 101, SYN_F | ACK_F)
    first = b"HTTP/1.1 200 OK\r\nContent-Length: 4000\r\n\r\n" + b"x" * 4000
    s(501, first[:1000])
    s(2501, first[2000:3000])                        # after a hole
    s(1501, first[1000:2000], dt=10 * MS)            # the fill: a retransmission (> 3 ms)
    s(3501, first[3000:])                            # the last segment
    nxt = 501 + len(first)
    s(nxt, b"HTTP/1.1 304 OK\r\n\r\n")
    nxt += 19
    second = b"HTTP/1.1 200 OK\r\nContent-Length: 2500\r\n\r\n" + b"y" * 2500
    for i in range(0, len(second), 1000):
        s(nxt + i, second[i:i + 1000])
    got = oracle_counts(analyze_reader(CaptureReader.from_bytes(f.getvalue(), "u.pcap")))
    assert got["http_status"] == {"304": 1, "200": 1}
