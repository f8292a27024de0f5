"""IP fragments are reassembled as Wireshark 4.0 does by default (ip/ipv6.defragment).

Found by ``benchmarks/net_difftest.py``.  Expected values are tshark 4.0.17's
for the same packets (``oracle.sh`` counts and ``tshark -T fields -e
frame.number -e tcp.stream -e tcp.flags.syn -e dns.flags.rcode -e
dns.response_to``)::

    1  Standard query 0x1234 A frag.example.test
    2  Fragmented IP protocol (proto=UDP 17, off=0, ID=004d)
    3  Standard query response 0x1234 ...          rcode 0, response_to 1
    4  Standard query 0x5678 A frag6.example.test
    5  IPv6 fragment (off=0 more=y ident=0x00abcdef nxt=17)
    6  Standard query response 0x5678 No such name  rcode 3, response_to 4
    7  Fragmented IP protocol (proto=TCP 6, off=0, ID=0063)
    8  1111 -> 80 [SYN]                              stream 0
    9-13  SYN, SYN-ACK, ACK, GET, 200 over IPv6 atomic fragments, stream 1

    oracle: syn_frames 2, synack_frames 1, tcp_streams 2, dns_rcodes
    {NoError: 1, NXDomain: 1}, dns_unanswered 0, http_requests 1, http_status {200: 1}

With the last fragment of the IPv4 DNS response cut by the snaplen, tshark
does not reassemble it (dns_rcodes {NXDomain: 1}, dns_unanswered 1); with the
fragments in reverse order it still does.
"""

from __future__ import annotations

import io
import struct

import pytest

from backline.analyzers.net.capture import analyze_reader
from backline.analyzers.net.reader import CaptureReader
from backline.analyzers.net.summary import oracle_counts
from backline.analyzers.net.synth import (A, ACK_F, B, PSH_F, SYN_F, PcapWriter, dns_query,
                                          dns_response, ether, ipv4, ipv6, tcp, udp)

A6 = bytes.fromhex("20010db8000000000000000000000001")
B6 = bytes.fromhex("20010db8000000000000000000000002")


def frags_v4(src, dst, l4, proto, ident, sizes):
    out, off = [], 0
    for n in sizes:
        more = off + n < len(l4)
        out.append(ipv4(src, dst, l4[off:off + n], proto=proto,
                        frag=(0x2000 if more else 0) | off // 8, ident=ident))
        off += n
    return out


def frags_v6(src, dst, l4, proto, ident, sizes):
    out, off = [], 0
    for n in sizes:
        more = off + n < len(l4)
        fh = struct.pack("!BBHI", proto, 0, off | more, ident)
        out.append(ipv6(src, dst, l4[off:off + n], proto=proto, ext=fh, first_next=44))
        off += n
    return out


def build(cut_last=False, reverse=False) -> bytes:
    f = io.BytesIO()
    w = PcapWriter(f)
    t = [10**18]

    def put(ip, v6=False, cut=False):
        t[0] += 1_000_000
        fr = ether(ip, 0x86DD if v6 else 0x0800)
        w.write(t[0], fr[:60] if cut else fr, len(fr))

    q = dns_query(0x1234, "frag.example.test")
    put(ipv4(A, B, udp(5354, 53, q), proto=17))
    fs = frags_v4(B, A, udp(53, 5354, dns_response(q) + bytes(1500)), 17, 77, [1480, 1480])
    if reverse:
        fs.reverse()
    for i, fr in enumerate(fs):
        put(fr, cut=cut_last and i == 1)
    q6 = dns_query(0x5678, "frag6.example.test")
    put(ipv6(A6, B6, udp(40000, 53, q6), proto=17), True)
    for fr in frags_v6(B6, A6, udp(53, 40000, dns_response(q6, 3) + bytes(1500)), 17, 0xABCDEF,
                       [1232, 1232]):
        put(fr, True)
    for fr in frags_v4(A, B, tcp(1111, 80, 1000, 0, SYN_F, payload=bytes(32)), 6, 99, [24, 32]):
        put(fr)
    atomic = struct.pack("!BBHI", 6, 0, 0, 7)          # offset 0, no more fragments

    def seg(src, dst, *a, **k):
        put(ipv6(src, dst, tcp(*a, **k), proto=6, ext=atomic, first_next=44), True)

    req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    seg(A6, B6, 2222, 80, 100, 0, SYN_F)
    seg(B6, A6, 80, 2222, 500, 101, SYN_F | ACK_F)
    seg(A6, B6, 2222, 80, 101, 501, ACK_F)
    seg(A6, B6, 2222, 80, 101, 501, PSH_F | ACK_F, payload=req)
    seg(B6, A6, 80, 2222, 501, 101 + len(req), PSH_F | ACK_F,
        payload=b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    return f.getvalue()


@pytest.mark.parametrize("reverse", [False, True])
def test_fragmented_datagrams_are_analysed_when_complete(reverse):
    st = analyze_reader(CaptureReader.from_bytes(build(reverse=reverse), "frag.pcap"))
    got = oracle_counts(st)
    assert got["packets"] == 13
    assert (got["syn_frames"], got["synack_frames"], got["tcp_streams"]) == (2, 1, 2)
    assert got["dns_queries"] == 2 and got["dns_unanswered"] == 0
    assert got["dns_rcodes"] == {"NoError": 1, "NXDomain": 1}
    assert (got["http_requests"], got["http_status"]) == (1, {"200": 1})


def test_a_fragment_cut_by_the_snaplen_is_not_reassembled():
    st = analyze_reader(CaptureReader.from_bytes(build(cut_last=True), "cut.pcap"))
    got = oracle_counts(st)
    assert got["dns_rcodes"] == {"NXDomain": 1} and got["dns_unanswered"] == 1
