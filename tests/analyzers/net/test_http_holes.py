"""HTTP over TCP holes and reordering, as tshark 4.0.17 dissects them.

Found by ``benchmarks/net_difftest.py`` on seeded captures with loss and
reordering.  Wireshark does not wait at every hole: a segment after a hole
between two messages, or after the end of a message of known length whose
middle is missing, is dissected at once as the start of a new message; only a
segment inside the unfinished message waits for the retransmission that fills
the hole.  A segment flagged spurious retransmission is given to no dissector.

tshark 4.0.17 on the packets below (``-e frame.number -e http.request
-e http.response.code -e _ws.col.Info``)::

    4   200   [TCP ACKed unseen segment] HTTP/1.1 200 X
    5         [TCP Spurious Retransmission] ... Len=28       (the request, late: not dissected)
    7   req   [TCP ACKed unseen segment] [TCP Previous segment not captured] GET /b
    8   500   [TCP ACKed unseen segment] [TCP Previous segment not captured] HTTP/1.1 500 X
    9   req   GET /c
    10        HTTP/1.1 200 X  [TCP segment of a reassembled PDU]   (never completed)
    11        [TCP Previous segment not captured] ... [TCP segment of a reassembled PDU]
    13  req   GET /d
    14  304   HTTP/1.1 304 X

    oracle: http_requests 3, http_status {200: 1, 500: 1, 304: 1}
"""

from __future__ import annotations

import io

from backline.analyzers.net.capture import analyze_reader
from backline.analyzers.net.reader import CaptureReader
from backline.analyzers.net.summary import oracle_counts
from backline.analyzers.net.synth import (A, ACK_F, B, FIN_F, PSH_F, SYN_F, PcapWriter, ether,
                                          ipv4, tcp)


def req(path):
    return b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode()


def resp(status, n):
    return b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n" % (status, n) + b"b" * n


def build():
    f = io.BytesIO(); w = PcapWriter(f); t = [10**18]
    cs, ss = [1001], [5001]
    def c(fl, payload=b"", seq=None, ack=None, dt=1_000_000, send=True):
        t[0] += dt
        s = cs[0] if seq is None else seq
        if send: w.write(t[0], ether(ipv4(A, B, tcp(40000, 80, s, ss[0] if ack is None else ack, fl, payload=payload))))
        if seq is None: cs[0] += len(payload)
    def s(fl, payload=b"", seq=None, ack=None, dt=1_000_000, send=True):
        t[0] += dt
        q = ss[0] if seq is None else seq
        if send: w.write(t[0], ether(ipv4(B, A, tcp(80, 40000, q, cs[0] if ack is None else ack, fl, payload=payload))))
        if seq is None: ss[0] += len(payload)
    t[0] += 1; w.write(t[0], ether(ipv4(A, B, tcp(40000, 80, 1000, 0, SYN_F))))
    t[0] += 1_000_000; w.write(t[0], ether(ipv4(B, A, tcp(80, 40000, 5000, 1001, SYN_F | ACK_F))))
    c(ACK_F)                                            # 3
    # (a) a request seen only after its response was sent (reordered): tshark flags it
    #     a spurious retransmission and dissects nothing in it
    r1 = req("/a"); seq1 = cs[0]; cs[0] += len(r1)
    s(PSH_F | ACK_F, resp(200, 10))                     # 4  200 (counted)
    c(PSH_F | ACK_F, r1, seq=seq1, dt=100)              # 5  the request, late
    c(ACK_F)                                            # 6
    # (b) a whole request and its response lost by the capture, then the next exchange
    c(PSH_F | ACK_F, req("/lost"), send=False)
    s(PSH_F | ACK_F, resp(404, 10), send=False)
    c(PSH_F | ACK_F, req("/b"))                         # 7  request after a hole: counted
    s(PSH_F | ACK_F, resp(500, 10))                     # 8  500 after a hole: counted
    # (c) a hole inside a response of known length, then the next exchange
    c(PSH_F | ACK_F, req("/c"))                         # 9
    big = resp(200, 3000)
    s(PSH_F | ACK_F, big[:1000])                        # 10 head of a 200 (never complete)
    s(PSH_F | ACK_F, big[1000:2000], send=False)
    s(PSH_F | ACK_F, big[2000:])                        # 11 waits for the hole
    c(ACK_F)                                            # 12
    c(PSH_F | ACK_F, req("/d"))                         # 13
    s(PSH_F | ACK_F, resp(304, 0))                      # 14 304 after the unfinished 200: counted
    c(FIN_F | ACK_F)                                    # 15
    return f.getvalue()


def test_holes_and_a_late_request_count_as_tshark_counts_them():
    st = analyze_reader(CaptureReader.from_bytes(build(), "holes.pcap"))
    got = oracle_counts(st)
    assert got["packets"] == 15
    assert got["http_requests"] == 3
    assert got["http_status"] == {"200": 1, "500": 1, "304": 1}


def test_a_hole_after_a_partial_head_starts_a_new_message():
    """tshark 4.0.17: frame 4 carries one byte of a request ("G", a zero-window probe);
    the rest of that request is lost; frame 5, after the hole, is "GET /two HTTP/1.1"
    (http.request) - Wireshark asked for one more segment only, so frame 5 is
    dissected as a new message.  oracle: http_requests 1."""
    f = io.BytesIO()
    w = PcapWriter(f)
    t = 10**18
    for src, dst, sp, dp, seq, ack, fl, payload in [
            (A, B, 40000, 80, 1000, 0, SYN_F, b""),
            (B, A, 80, 40000, 5000, 1001, SYN_F | ACK_F, b""),
            (A, B, 40000, 80, 1001, 5001, ACK_F, b""),
            (A, B, 40000, 80, 1001, 5001, ACK_F, b"G"),
            (A, B, 40000, 80, 1001 + len(req("/one")), 5001, PSH_F | ACK_F, req("/two"))]:
        t += 1_000_000
        w.write(t, ether(ipv4(src, dst, tcp(sp, dp, seq, ack, fl, payload=payload))))
    got = oracle_counts(analyze_reader(CaptureReader.from_bytes(f.getvalue(), "g.pcap")))
    assert got["http_requests"] == 1


def zwp_after_hole() -> bytes:
    f = io.BytesIO()
    w = PcapWriter(f)
    t = 10**18
    one, two, three = req("/one"), req("/two"), req("/three")
    c1 = 1001 + len(one)
    c2 = c1 + len(two)                       # /two is lost by the capture
    for src, dst, sp, dp, seq, ack, fl, payload in [
            (A, B, 40000, 80, 1000, 0, SYN_F, b""),
            (B, A, 80, 40000, 5000, 1001, SYN_F | ACK_F, b""),
            (A, B, 40000, 80, 1001, 5001, PSH_F | ACK_F, one),
            (B, A, 80, 40000, 5001, c1, PSH_F | ACK_F, resp(200, 2)),
            (A, B, 40000, 80, c2, 5040, ACK_F, three[:1]),       # a one-byte probe: "G"
            (A, B, 40000, 80, c2, 5040, PSH_F | ACK_F, three)]:
        t += 1_000_000
        w.write(t, ether(ipv4(src, dst, tcp(sp, dp, seq, ack, fl, payload=payload))))
    return f.getvalue()


def test_one_byte_after_a_hole_waits_for_the_rest_of_its_message():
    """tshark 4.0.17: after the lost request, frame 5 carries "G" ("[TCP segment of a
    reassembled PDU]"), frame 6 the whole request from the same sequence number:
    "GET /three HTTP/1.1" (http.request).  oracle: http_requests 2."""
    got = oracle_counts(analyze_reader(CaptureReader.from_bytes(zwp_after_hole(), "z.pcap")))
    assert got["http_requests"] == 2
