"""Frames cut by the snaplen, as tshark 4.0.17 analyses them (TCP and HTTP).

Found by ``benchmarks/net_difftest.py`` on corpus captures rewritten with
``editcap -s 60``.  When a frame's TCP header (with its options) is not all
captured, Wireshark still gives it a stream and reads its flags, and its
sequence analysis state moves on, but it shows no ``tcp.analysis`` flag for
the frame and the frame does not reach ``-z conv,tcp``.

tshark 4.0.17 on the capture below (``-e frame.number -e tcp.stream
-e tcp.analysis.flags``): frames 1-9 (stream 0, headers cut) no flags; frames
10-18 (stream 1, the same packets whole) 14 lost_segment, 16-17 duplicate_ack,
18 fast retransmission; frames 19-23 (stream 2) cut, then frame 24 whole and
flagged keep-alive (the state came from the cut frames).

    oracle: retransmission 1, fast_retransmission 1, lost_segment 1,
    duplicate_ack 2, keep_alive 1; syn_frames 3, synack_frames 3,
    tcp_streams 3, tcp_conversations 2
"""

from __future__ import annotations

import io

from backline.analyzers.net.capture import analyze_reader
from backline.analyzers.net.reader import CaptureReader
from backline.analyzers.net.summary import oracle_counts
from backline.analyzers.net.synth import (A, ACK_F, B, PSH_F, SYN_F, PcapWriter, ether, ipv4,
                                          tcp)


def build_cut_headers() -> bytes:
    f = io.BytesIO()
    w = PcapWriter(f, snaplen=56)
    t = [10**18]

    def put(src, dst, sp, dp, seq, ack, fl, payload=b"", opt=True, cut=True):
        t[0] += 1_000_000
        fr = ether(ipv4(src, dst, tcp(sp, dp, seq, ack, fl, payload=payload,
                                      wscale=0 if opt else None)))
        w.write(t[0], fr[:56] if cut else fr, len(fr))    # 24-byte TCP header: cut at 56

    for port, cut in ((1001, True), (1002, False)):
        def c(*a, **k):
            put(A, B, port, 80, *a, cut=cut, **k)

        def s(*a, **k):
            put(B, A, 80, port, *a, cut=cut, **k)
        c(100, 0, SYN_F)
        s(500, 101, SYN_F | ACK_F)
        c(101, 501, ACK_F)
        s(501, 101, PSH_F | ACK_F, b"a" * 100)
        s(801, 101, PSH_F | ACK_F, b"c" * 100)            # 601..801 lost
        c(101, 601, ACK_F)
        c(101, 601, ACK_F)
        c(101, 601, ACK_F)
        s(601, 101, PSH_F | ACK_F, b"b" * 100)
    put(A, B, 1003, 80, 100, 0, SYN_F)
    put(B, A, 80, 1003, 500, 101, SYN_F | ACK_F)
    put(A, B, 1003, 80, 101, 501, ACK_F)
    put(A, B, 1003, 80, 101, 501, PSH_F | ACK_F, b"q" * 10)
    put(B, A, 80, 1003, 501, 111, ACK_F)
    put(A, B, 1003, 80, 110, 501, ACK_F, opt=False, cut=False)   # keep-alive, whole
    return f.getvalue()


def test_frames_with_a_cut_tcp_header_are_analysed_but_not_flagged():
    got = oracle_counts(analyze_reader(CaptureReader.from_bytes(build_cut_headers(), "c.pcap")))
    assert got["packets"] == 24
    assert {k: v for k, v in got["tcp_analysis"].items() if v} == {
        "retransmission": 1, "fast_retransmission": 1, "lost_segment": 1,
        "duplicate_ack": 2, "keep_alive": 1}
    assert (got["syn_frames"], got["synack_frames"]) == (3, 3)
    assert (got["tcp_streams"], got["tcp_conversations"]) == (3, 2)


REQ = b"GET /abc HTTP/1.1\r\nHost: example.test\r\nConnection: keep-alive\r\n\r\n"
RESP = b"HTTP/1.1 404 Not Found\r\nServer: x\r\nContent-Length: 3\r\n\r\nabc"
#: (message, captured payload bytes, tshark 4.0.17 shows http.request / http.response.code)
HTTP_CUTS = [
    (REQ, 2, False), (REQ, 3, True), (REQ, 12, True), (REQ, 19, True),
    (REQ, 20, False),            # "...\r\nH": the data ends in a header name
    (REQ, 23, False), (REQ, 25, True), (REQ, 34, True), (REQ, 40, False), (REQ, 50, True),
    (b"POST /x HTTP/1.1\r\n\r\n", 3, False), (b"POST /x HTTP/1.1\r\n\r\n", 4, True),
    (RESP, 10, False),           # "HTTP/1.1 4"
    (RESP, 12, True), (RESP, 25, True), (RESP, 41, True),
]


def build_cut_http() -> bytes:
    f = io.BytesIO()
    w = PcapWriter(f)
    t = 10**18
    for i, (data, cut, _shown) in enumerate(HTTP_CUTS):
        resp = data.startswith(b"HTTP")
        src, dst, sp, dp = (B, A, 80, 20000 + i) if resp else (A, B, 20000 + i, 80)
        fr = ether(ipv4(src, dst, tcp(sp, dp, 1000, 2000, PSH_F | ACK_F, payload=data)))
        t += 1_000_000
        w.write(t, fr[:54 + cut], len(fr))
    return f.getvalue()


def test_http_in_segments_cut_by_the_snaplen():
    """tshark 4.0.17 (-e http.request -e http.response.code) on each cut segment, as in
    HTTP_CUTS: the method name must be whole, a status needs ``HTTP/1.x NNN``, and a
    request whose data ends inside a header name is not shown as one."""
    got = oracle_counts(analyze_reader(CaptureReader.from_bytes(build_cut_http(), "h.pcap")))
    want_req = sum(1 for d, _c, shown in HTTP_CUTS if shown and not d.startswith(b"HTTP"))
    want_resp = sum(1 for d, _c, shown in HTTP_CUTS if shown and d.startswith(b"HTTP"))
    assert got["http_requests"] == want_req == 7
    assert got["http_status"] == {"404": want_resp} == {"404": 3}


def build_cut_dns() -> bytes:
    from backline.analyzers.net.synth import dns_query, dns_response, udp
    f = io.BytesIO()
    w = PcapWriter(f)
    t = 10**18
    answer = bytes.fromhex("c00c000100010000003c00040a000001")      # one A record

    def put(src, dst, sp, dp, payload, cut=None):
        nonlocal t
        fr = ether(ipv4(src, dst, udp(sp, dp, payload), proto=17))
        t += 1_000_000
        w.write(t, fr[:cut] if cut else fr, len(fr))

    for i, (qcut, rcut) in enumerate([(None, None), (50, None), (None, 60), (None, 80),
                                      (None, 59)]):
        q = dns_query(0x100 + i, f"cut{i}.example.test")
        r = dns_response(q)
        r = r[:6] + b"\x00\x01" + r[8:] + answer
        put(A, B, 3000 + i, 53, q, qcut)
        put(B, A, 53, 3000 + i, r, rcut)
    return f.getvalue()


def test_dns_messages_cut_by_the_snaplen():
    """tshark 4.0.17 (-e dns.flags.response -e dns.flags.rcode -e dns.response_to):
    frame 3, a query cut to 8 DNS bytes, still counts and is answered by frame 4
    (response_to 3); frames 6, 8 and 10, responses cut inside the question or answer,
    count with their rcode but answer nothing (no response_to)."""
    got = oracle_counts(analyze_reader(CaptureReader.from_bytes(build_cut_dns(), "d.pcap")))
    assert got["dns_queries"] == 5
    assert got["dns_rcodes"] == {"NoError": 5}
    assert got["dns_unanswered"] == 3


def _smb2(status, resp, mid):
    import struct
    h = b"\xfeSMB" + struct.pack("<HHIHHIIQIIQ16s", 64, 0, status, 5, 1, 1 if resp else 0, 0,
                                 mid, 0, 0, 0, bytes(16))
    msg = h + bytes(9)
    return struct.pack("!I", len(msg)) + msg


def test_smb2_and_retransmissions_cut_by_the_snaplen():
    """tshark 4.0.17: an SMB2 response cut after 4 + 24 or 4 + 40 bytes shows
    smb2.flags.response and nt_status 0xc0000022; cut after 4 + 20 or 4 + 12 it shows
    neither.  A cut request counts (frame 4); its plain retransmission, also cut, is
    "[TCP Retransmission]" and not dissected (5); a cut spurious retransmission is
    dissected alone and counts again (7); a whole spurious one is not (8)."""
    f = io.BytesIO()
    w = PcapWriter(f)
    t = [10**18]

    def put(src, dst, sp, dp, seq, ack, fl, payload=b"", cut=None):
        fr = ether(ipv4(src, dst, tcp(sp, dp, seq, ack, fl, payload=payload)))
        t[0] += 1_000_000
        w.write(t[0], fr[:54 + cut] if cut is not None else fr, len(fr))

    put(A, B, 6000, 445, 100, 0, SYN_F)
    put(B, A, 445, 6000, 500, 101, SYN_F | ACK_F)
    put(A, B, 6000, 445, 101, 501, ACK_F)
    cseq, sseq = 101, 501
    for i, cut in enumerate([None, 24, 20, 12, 40]):
        q, r = _smb2(0, False, i + 1), _smb2(0xC0000022, True, i + 1)
        put(A, B, 6000, 445, cseq, sseq, PSH_F | ACK_F, q)
        cseq += len(q)
        put(B, A, 445, 6000, sseq, cseq, PSH_F | ACK_F, r, cut=cut)
        sseq += len(r)
    req = REQ
    put(A, B, 5000, 80, 100, 0, SYN_F)
    put(B, A, 80, 5000, 500, 101, SYN_F | ACK_F)
    put(A, B, 5000, 80, 101, 501, ACK_F)
    put(A, B, 5000, 80, 101, 501, PSH_F | ACK_F, req, cut=30)     # request, cut
    put(A, B, 5000, 80, 101, 501, PSH_F | ACK_F, req, cut=30)     # retransmission, cut
    put(B, A, 80, 5000, 501, 101 + len(req), ACK_F)
    put(A, B, 5000, 80, 101, 501, PSH_F | ACK_F, req, cut=30)     # spurious, cut
    put(A, B, 5000, 80, 101, 501, PSH_F | ACK_F, req)             # spurious, whole
    got = oracle_counts(analyze_reader(CaptureReader.from_bytes(f.getvalue(), "s.pcap")))
    assert got["smb2_error_status"] == {"0xc0000022": 3}
    assert got["http_requests"] == 2
