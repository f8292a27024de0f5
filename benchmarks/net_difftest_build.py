"""Build the capture set for ``net_difftest.py`` (captures the corpus does not cover).

Three groups, all written into one folder (never into the repository):

* ``conv_*``, ``snap*_*``, ``shift_*``, ``merge_*``, ``encap_*``, ``netmon1_*``, ``netmon2*_*``,
  ``be_*``, ``gz_*``, ``cut*_*``: the corpus captures rewritten with editcap / mergecap
  (pcap <-> pcapng, nanosecond pcap, big-endian pcap, snaplen cuts 60/96/200,
  time shifts, split and re-merged multi-interface pcapng, an unsupported
  link type, Network Monitor 2.x, gzip);
* ``capgen_*``: ``net_capgen.py`` output for several seeds and sizes;
* ``synth_*``: edge cases built with ``backline.analyzers.net.synth``: link
  layers (VLAN/QinQ, SLL, SLL2, raw IP, null/loop), IPv6 extension headers,
  TCP corner cases (port reuse, late FIN/RST, zero window, keep-alive, window
  full, out-of-order, retransmissions across the 2^32 wrap), HTTP (chunked,
  HEAD, 1xx/204/304, pipelining, also on ports that are not HTTP's), TLS alerts and
  DNS over TCP, plus seeded "chaos" captures (loss, duplication, reordering) on every
  link layer.

Usage::

    python benchmarks/net_difftest_build.py /tmp/difftest [--corpus DIR] [--no-capgen] [--quick]
"""

from __future__ import annotations

import argparse
import gzip
import random
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

from backline.analyzers.net.synth import (ACK_F, FIN_F, PSH_F, RST_F, SYN_F, PcapngWriter,
                                          PcapWriter, dns_query, dns_response, ether, ipv4, ipv6,
                                          netmon_rewrite, tcp, udp)

HERE = Path(__file__).resolve().parent
C4 = bytes([192, 168, 1, 10])
S4 = bytes([192, 168, 1, 20])
C6 = bytes.fromhex("20010db8000000000000000000000010")
S6 = bytes.fromhex("20010db8000000000000000000000020")


# --------------------------------------------------------------------------- link layers

def l2(kind: str, ip: bytes, v6: bool, big: bool = False) -> bytes:
    """Wrap an IP packet in link layer ``kind``."""
    et = 0x86DD if v6 else 0x0800
    if kind == "ether":
        return ether(ip, et)
    if kind == "vlan":
        return ether(ip, et, vlans=(100,))
    if kind == "qinq":
        return ether(ip, et, vlans=(200, 100))
    if kind == "sll":
        return struct.pack("!HHH8sH", 0, 1, 6, b"\x02\x00\x00\x00\x00\x01\x00\x00", et) + ip
    if kind == "sll2":
        return struct.pack("!HHIHBB8s", et, 0, 2, 1, 0, 6, b"\x02\x00\x00\x00\x00\x01\x00\x00") + ip
    if kind in ("raw", "raw4", "raw6"):
        return ip
    if kind == "null":      # DLT_NULL: AF in the writer's byte order
        return struct.pack(">I" if big else "<I", 30 if v6 else 2) + ip
    if kind == "loop":      # DLT_LOOP: AF in network byte order
        return struct.pack("!I", 24 if v6 else 2) + ip
    raise ValueError(kind)


LINKTYPE = {"ether": 1, "vlan": 1, "qinq": 1, "sll": 113, "sll2": 276, "raw": 101,
            "raw4": 228, "raw6": 229, "null": 0, "loop": 108}


class Out:
    """Collects (ts_ns, ip_packet, v6) and writes them with one link layer."""

    def __init__(self, t0: float = 1_700_000_000.0):
        self.t = int(t0 * 1e9)
        self.recs: list[tuple[int, bytes, bool]] = []

    def add(self, ip: bytes, v6: bool = False, dt_us: int = 1000) -> None:
        self.t += dt_us * 1000
        self.recs.append((self.t, ip, v6))

    def write(self, path: Path, kind: str = "ether", fmt: str = "pcap", big: bool = False,
              nano: bool = False) -> int:
        recs = self.recs
        if kind == "raw4":
            recs = [r for r in recs if not r[2]]
        if kind == "raw6":
            recs = [r for r in recs if r[2]]
        with open(path, "wb") as f:
            if fmt == "pcap":
                w = PcapWriter(f, linktype=LINKTYPE[kind], nano=nano, big=big)
                for ts, ip, v6 in recs:
                    w.write(ts, l2(kind, ip, v6, big))
            else:
                w = PcapngWriter(f, comment="difftest")
                w.interface(LINKTYPE[kind], tsresol=9 if nano else 6)
                for ts, ip, v6 in recs:
                    w.epb(0, ts, l2(kind, ip, v6))
        return len(recs)


class Conn:
    """A TCP connection's sequence state; emits IP packets into an Out."""

    def __init__(self, out: Out, sport: int, dport: int, v6: bool = False, cisn: int | None = None,
                 sisn: int | None = None, rnd: random.Random | None = None, cwin: int = 64240,
                 swin: int = 65535):
        self.o, self.sp, self.dp, self.v6 = out, sport, dport, v6
        rnd = rnd or random.Random(sport * 7919 + dport)
        self.cseq = rnd.getrandbits(32) if cisn is None else cisn
        self.sseq = rnd.getrandbits(32) if sisn is None else sisn
        self.cwin, self.swin = cwin, swin
        self.c, self.s = (C6, S6) if v6 else (C4, S4)

    def ip(self, src, dst, seg):
        return ipv6(src, dst, seg) if self.v6 else ipv4(src, dst, seg)

    def c2s(self, flags, payload=b"", seq=None, ack=None, win=None, dt=1000, advance=True):
        s = self.cseq if seq is None else seq
        a = self.sseq if ack is None else ack
        seg = tcp(self.sp, self.dp, s, a, flags, self.cwin if win is None else win, payload)
        self.o.add(self.ip(self.c, self.s, seg), self.v6, dt)
        if advance and seq is None:
            self.cseq = (self.cseq + len(payload) + (1 if flags & (SYN_F | FIN_F) else 0)) & 0xFFFFFFFF

    def s2c(self, flags, payload=b"", seq=None, ack=None, win=None, dt=1000, advance=True):
        s = self.sseq if seq is None else seq
        a = self.cseq if ack is None else ack
        seg = tcp(self.dp, self.sp, s, a, flags, self.swin if win is None else win, payload)
        self.o.add(self.ip(self.s, self.c, seg), self.v6, dt)
        if advance and seq is None:
            self.sseq = (self.sseq + len(payload) + (1 if flags & (SYN_F | FIN_F) else 0)) & 0xFFFFFFFF

    def open(self, rtt_us=20000):
        self.c2s(SYN_F)
        self.s2c(SYN_F | ACK_F, dt=rtt_us // 2)
        self.c2s(ACK_F, dt=rtt_us // 2)

    def close(self):
        self.c2s(FIN_F | ACK_F)
        self.s2c(FIN_F | ACK_F)
        self.c2s(ACK_F)

    def c_data(self, data: bytes, mss=1460, dt=1000):
        for i in range(0, len(data), mss):
            self.c2s(PSH_F | ACK_F, data[i:i + mss], dt=dt)

    def s_data(self, data: bytes, mss=1460, dt=1000, ack_every=2):
        n = 0
        for i in range(0, len(data), mss):
            self.s2c(PSH_F | ACK_F, data[i:i + mss], dt=dt)
            n += 1
            if ack_every and n % ack_every == 0:
                self.c2s(ACK_F, dt=200)
        self.c2s(ACK_F, dt=200)


def http_resp(status=200, body=b"", headers=None, reason=b"OK", length=True) -> bytes:
    h = b"HTTP/1.1 %d %s\r\n" % (status, reason)
    for k, v in (headers or {}).items():
        h += k.encode() + b": " + v.encode() + b"\r\n"
    if length:
        h += b"Content-Length: %d\r\n" % len(body)
    return h + b"\r\n" + body


def http_req(method="GET", path="/", body=b"") -> bytes:
    r = b"%s %s HTTP/1.1\r\nHost: example.test\r\n" % (method.encode(), path.encode())
    if body:
        r += b"Content-Length: %d\r\n" % len(body)
    return r + b"\r\n" + body


def chunked(body: bytes, size=700) -> bytes:
    out = b""
    for i in range(0, len(body), size):
        part = body[i:i + size]
        out += b"%x\r\n" % len(part) + part + b"\r\n"
    return out + b"0\r\n\r\n"


def tls_record(ctype: int, body: bytes, ver=0x0303) -> bytes:
    return struct.pack("!BHH", ctype, ver, len(body)) + body


def client_hello(sni: str) -> bytes:
    name = sni.encode()
    sni_ext = struct.pack("!HHHBH", 0, len(name) + 5, len(name) + 3, 0, len(name)) + name
    body = struct.pack("!H", 0x0303) + bytes(32) + b"\x00" + struct.pack("!HH", 2, 0x1301) + b"\x01\x00"
    body += struct.pack("!H", len(sni_ext)) + sni_ext
    hs = struct.pack("!B", 1) + len(body).to_bytes(3, "big") + body
    return tls_record(22, hs, 0x0301)


# --------------------------------------------------------------------------- scenarios

def sc_http(o: Out, base: int, v6=False, port=80, alt_port=8080):
    """HTTP edge cases: chunked, HEAD, 1xx, 204, 304, pipelining, until-close (on ``port``
    and ``alt_port``: other than HTTP's, the streams are HTTP by their first line)."""
    body = bytes(range(256)) * 20
    c = Conn(o, base + 1, port, v6)
    c.open()
    c.c_data(http_req("GET", "/chunked"))
    c.s_data(http_resp(200, b"", {"Transfer-Encoding": "chunked"}, length=False) + chunked(body))
    c.c_data(http_req("HEAD", "/head"))
    c.s_data(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n")
    c.c_data(http_req("POST", "/upload", b"x" * 10).replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n", 1))
    c.s_data(b"HTTP/1.1 100 Continue\r\n\r\n")
    c.s_data(http_resp(201, b"created", reason=b"Created"))
    c.c_data(http_req("DELETE", "/x/48213"))
    c.s_data(b"HTTP/1.1 204 No Content\r\n\r\n")
    c.c_data(http_req("GET", "/cached"))
    c.s_data(b"HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\n\r\n")
    # pipelined: three requests in one segment, responses in one and in pieces
    c.c_data(http_req("GET", "/p1") + http_req("GET", "/p2") + http_req("GET", "/p3?q=1"))
    c.s_data(http_resp(200, b"one") + http_resp(404, b"nope", reason=b"Not Found")
             + http_resp(500, b"x" * 3000, reason=b"Internal Server Error"))
    # chunked split in odd places
    c.c_data(http_req("GET", "/chunked2"))
    c.s_data(http_resp(200, b"", {"Transfer-Encoding": "chunked"}, length=False) + chunked(body, 333),
             mss=97)
    c.close()
    # response without length, read until close
    c = Conn(o, base + 2, alt_port, v6)
    c.open()
    c.c_data(http_req("GET", "/stream"))
    c.s_data(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + body)
    c.s2c(FIN_F | ACK_F)
    c.c2s(FIN_F | ACK_F)
    c.s2c(ACK_F)
    # HTTP on a 1xx + 101 upgrade
    c = Conn(o, base + 3, port, v6)
    c.open()
    c.c_data(http_req("GET", "/ws").replace(b"\r\n\r\n", b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 1))
    c.s_data(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
    c.c_data(b"\x81\x05hello")
    c.s_data(b"\x81\x05world")
    c.close()


def sc_tls(o: Out, base: int, v6=False):
    c = Conn(o, base + 1, 443, v6)
    c.open()
    c.c_data(client_hello("a.example.test"))
    c.s_data(tls_record(21, b"\x02\x28"))                               # fatal handshake_failure
    c.close()
    c = Conn(o, base + 2, 443, v6)
    c.open()
    c.c_data(client_hello("b.example.test"))
    c.s_data(tls_record(22, b"\x02\x00\x00\x26" + bytes(38)) + tls_record(21, b"\x01\x70"))  # warning + SH
    c.c_data(tls_record(20, b"\x01") + tls_record(21, b"\x01\x00"))   # CCS then close_notify (encrypted?)
    c.s_data(tls_record(21, bytes(26)))                                  # encrypted alert
    c.close()
    # alert split across two segments, and two alerts in one segment
    c = Conn(o, base + 3, 8443, v6)
    c.open()
    c.c_data(client_hello("c.example.test"))
    a = tls_record(21, b"\x02\x30")
    c.s2c(PSH_F | ACK_F, a[:3])
    c.s2c(PSH_F | ACK_F, a[3:])
    c.c2s(ACK_F)
    c.c_data(tls_record(21, b"\x01\x5a") + tls_record(21, b"\x02\x2e"))
    c.c2s(RST_F | ACK_F)
    # TLS on a non-TLS port, first bytes a TLS record
    c = Conn(o, base + 4, 9999, v6)
    c.open()
    c.c_data(client_hello("d.example.test"))
    c.s_data(tls_record(21, b"\x02\x46"))
    c.close()


def dns_tcp(o: Out, base: int, v6=False):
    c = Conn(o, base + 1, 53, v6)
    c.open()
    q1 = dns_query(0x1111, "tcp.example.test")
    q2 = dns_query(0x2222, "big.example.test", 16)
    c.c_data(struct.pack("!H", len(q1)) + q1 + struct.pack("!H", len(q2)) + q2)
    r1 = dns_response(q1, 3)
    r2 = dns_response(q2) + bytes(2000)
    m = struct.pack("!H", len(r1)) + r1 + struct.pack("!H", len(r2)) + r2
    c.s_data(m, mss=600)
    q3 = dns_query(0x3333, "split.example.test")
    m3 = struct.pack("!H", len(q3)) + q3
    c.c2s(PSH_F | ACK_F, m3[:1])
    c.c2s(PSH_F | ACK_F, m3[1:])
    c.s_data(struct.pack("!H", len(q3)) + dns_response(q3, 2))
    c.close()
    # UDP DNS: id reuse, unanswered, duplicate response
    src, dst = (C6, S6) if v6 else (C4, S4)
    mk = (lambda p: ipv6(src, dst, p, proto=17)) if v6 else (lambda p: ipv4(src, dst, p, proto=17))
    mkr = (lambda p: ipv6(dst, src, p, proto=17)) if v6 else (lambda p: ipv4(dst, src, p, proto=17))
    for i, (name, rc) in enumerate([("a.test", 0), ("b.test", 3), ("a.test", None), ("c.test", 2)]):
        q = dns_query(0x4000, name)                       # same id every time
        o.add(mk(udp(base + 10, 53, q)), v6)
        if rc is not None:
            o.add(mkr(udp(53, base + 10, dns_response(q, rc))), v6)
            if i == 1:
                o.add(mkr(udp(53, base + 10, dns_response(q, rc))), v6)


def sc_tcp_edges(o: Out, base: int, v6=False):
    data = bytes(range(256)) * 40
    # 1. sequence wrap with loss and retransmissions around 2^32
    c = Conn(o, base + 1, 5001, v6, cisn=0xFFFFF000, sisn=0xFFFFFF00)
    c.open()
    c.c_data(b"q" * 100)
    segs = []
    for i in range(0, 6000, 1000):
        segs.append((c.sseq, data[i:i + 1000]))
        c.sseq = (c.sseq + 1000) & 0xFFFFFFFF
    c.s2c(PSH_F | ACK_F, segs[0][1], seq=segs[0][0])
    # seg 1 lost, 2..4 arrive -> dup acks
    for s, d in segs[2:5]:
        c.s2c(PSH_F | ACK_F, d, seq=s)
        c.c2s(ACK_F, ack=segs[1][0])
    c.s2c(PSH_F | ACK_F, segs[1][1], seq=segs[1][0], dt=300)       # fast retransmission
    c.c2s(ACK_F, ack=segs[5][0])
    c.s2c(PSH_F | ACK_F, segs[5][1], seq=segs[5][0])
    c.s2c(PSH_F | ACK_F, segs[3][1], seq=segs[3][0], dt=200000)    # spurious retransmission
    c.c2s(ACK_F)
    c.close()
    # 2. out-of-order (short gap, inside the RTT), then retransmission after RTO
    c = Conn(o, base + 2, 5002, v6)
    c.open(rtt_us=80000)
    s0 = c.sseq
    c.s2c(PSH_F | ACK_F, data[1000:2000], seq=s0 + 1000, advance=False)
    c.s2c(PSH_F | ACK_F, data[:1000], seq=s0, dt=500, advance=False)
    c.sseq = (s0 + 2000) & 0xFFFFFFFF
    c.c2s(ACK_F)
    c.s2c(PSH_F | ACK_F, data[:500], seq=s0, dt=300000)            # old data again
    c.c2s(ACK_F, dt=100)
    # zero window: receiver closes window, probes, probe ACK, window update
    c.swin = 8192
    c.c_data(data[:4096], mss=1024)
    c.c_data(data[:4096], mss=1024)                                 # fills the 8 KiB window
    c.s2c(ACK_F, win=0)
    c.c2s(ACK_F, b"z", dt=500000, advance=False)                    # zero-window probe
    c.s2c(ACK_F, win=0)
    c.c2s(ACK_F, b"z", dt=1000000, advance=False)
    c.s2c(ACK_F, win=0)
    c.s2c(ACK_F, win=16384, dt=2000000)                             # window update
    c.c_data(data[:2048], mss=1024)
    c.s2c(ACK_F)
    # keep-alives (0 and 1 byte) and their ACKs
    c.c2s(ACK_F, seq=(c.cseq - 1) & 0xFFFFFFFF, dt=45_000_000)
    c.s2c(ACK_F)
    c.c2s(ACK_F, b"\x00", seq=(c.cseq - 1) & 0xFFFFFFFF, dt=45_000_000)
    c.s2c(ACK_F)
    c.close()
    # late FIN / RST retransmitted long after the close
    c.c2s(FIN_F | ACK_F, seq=(c.cseq - 1) & 0xFFFFFFFF, dt=20_000_000)
    c.c2s(RST_F, seq=c.cseq, ack=0, dt=40_000_000)
    # 3. port reuse: same ports, new ISN, after close; and SYN-ACK with a new ISN
    c = Conn(o, base + 3, 5003, v6)
    c.open()
    c.c_data(b"hello")
    c.s_data(b"world")
    c.close()
    c2 = Conn(o, base + 3, 5003, v6, cisn=(c.cseq + 100000) & 0xFFFFFFFF)
    c2.open()
    c2.c2s(RST_F | ACK_F)
    c3 = Conn(o, base + 3, 5003, v6, cisn=(c2.cseq + 777777) & 0xFFFFFFFF)
    c3.c2s(SYN_F)
    c3.c2s(SYN_F, seq=(c3.cseq - 1) & 0xFFFFFFFF, dt=1_000_000)      # SYN retransmission
    c3.s2c(RST_F | ACK_F, seq=0)
    # 4. refused, unanswered SYNs, RST mid-stream, half-open
    c = Conn(o, base + 4, 5004, v6)
    c.c2s(SYN_F)
    c.s2c(RST_F | ACK_F, seq=0)
    c = Conn(o, base + 5, 5005, v6)
    for i in range(3):
        c.c2s(SYN_F, seq=c.cseq, advance=False, dt=1_000_000 * (1 << i))
    c = Conn(o, base + 6, 5006, v6)
    c.s2c(PSH_F | ACK_F, b"mid-stream data")                         # no handshake seen
    c.c2s(ACK_F)
    c.c2s(RST_F | ACK_F)
    # 5. window full with window scaling off: receiver window 4000
    c = Conn(o, base + 7, 5007, v6, cwin=4000)
    c.open()
    c.s_data(data[:4000], mss=1000, ack_every=0)
    c.c2s(ACK_F, win=4000)
    c.s_data(data[:1000], mss=1000, ack_every=0)
    c.close()
    # 6. ACKed unseen segment and previous segment not captured
    c = Conn(o, base + 8, 5008, v6)
    c.open()
    c.s2c(PSH_F | ACK_F, data[:1000], seq=(c.sseq + 1000) & 0xFFFFFFFF, advance=False)
    c.c2s(ACK_F, ack=(c.sseq + 3000) & 0xFFFFFFFF)
    c.sseq = (c.sseq + 3000) & 0xFFFFFFFF
    c.close()


def ipv6_ext(o: Out, base: int):
    """IPv6 with hop-by-hop, routing, destination options, fragment headers, and ICMPv6."""
    def hbh(nxt):        # 8 bytes, PadN
        return bytes([nxt, 0, 1, 4, 0, 0, 0, 0])
    def rout(nxt):       # type 0 segments-left 0, one address
        return bytes([nxt, 2, 0, 0, 0, 0, 0, 0]) + S6
    def dst(nxt):
        return bytes([nxt, 0, 1, 4, 0, 0, 0, 0])
    c = Conn(o, base + 1, 80, True)
    def ip6(src, d, seg):
        ext = hbh(43) + rout(60) + dst(6)
        return ipv6(src, d, seg, proto=6, ext=ext, first_next=0)
    c.ip = ip6
    c.open()
    c.c_data(http_req("GET", "/ext"))
    c.s_data(http_resp(503, b"busy", reason=b"Service Unavailable"))
    c.close()
    # fragmented UDP DNS response (first + second fragment) and an atomic fragment with TCP
    q = dns_query(0x7777, "frag.example.test")
    o.add(ipv6(C6, S6, udp(base + 9, 53, q), proto=17), True)
    r = dns_response(q) + bytes(1400)
    payload = udp(53, base + 9, r)
    f1 = struct.pack("!BBHI", 17, 0, 0x0001, 0xABCD) + payload[:1200]
    f2 = struct.pack("!BBHI", 17, 0, (1200 // 8) << 3, 0xABCD) + payload[1200:]
    o.add(ipv6(S6, C6, f1, proto=17, first_next=44), True)
    o.add(ipv6(S6, C6, f2, proto=17, first_next=44), True)
    c = Conn(o, base + 2, 80, True)
    def ip6f(src, d, seg):
        return ipv6(src, d, seg, proto=6, ext=struct.pack("!BBHI", 6, 0, 0, 0x1234), first_next=44)
    c.ip = ip6f
    c.open()
    c.c_data(http_req("GET", "/atomic"))
    c.s_data(http_resp(200, b"ok"))
    c.close()
    # IPv4 fragments of a TCP segment
    seg = tcp(base + 3, 80, 1000, 0, SYN_F, payload=bytes(40))
    o.add(ipv4(C4, S4, seg[:24], frag=0x2000, ident=99)[:20 + 24], False)
    o.add(ipv4(C4, S4, seg[24:], frag=3, ident=99), False)


def chaos(o: Out, rnd: random.Random, n_conns: int, v6_share=0.3,
          ports=(80, 8080, 443, 53, 445, 22, 5001), http_ports=(80, 8080)):
    """Many interleaved connections with random loss, duplication, reordering, windows."""
    # build each connection's packet list, then interleave by random time
    streams = []
    for k in range(n_conns):
        sub = Out(0)
        v6 = rnd.random() < v6_share
        port = rnd.choice(ports)
        c = Conn(sub, 10000 + k, port, v6, rnd=rnd,
                 cisn=rnd.choice([None, 0xFFFFFFFF - rnd.randrange(20000)]),
                 sisn=rnd.choice([None, 0xFFFFFFFF - rnd.randrange(20000)]))
        if rnd.random() < 0.9:
            c.open(rtt_us=rnd.choice([200, 3000, 40000]))
        rounds = rnd.randrange(1, 6)
        # the client's messages, made first so that a zero-window probe carries the
        # real next byte (a probe with other data makes tshark see conflicting
        # overlapping segments, "[Illegal Segments]")
        tls_round = [port == 443 and rnd.random() < 0.5 for _ in range(rounds)]
        asks = [http_req("GET", "/r/%d" % rnd.randrange(1000)) if port in http_ports
                else client_hello("h%d.test" % k) if tls_round[i]
                else bytes([65 + i]) * rnd.randrange(1, 3000) for i in range(rounds)]
        for r in range(rounds):
            if port in http_ports:
                c.c_data(asks[r])
                body = bytes(rnd.randrange(0, 9000))
                st = rnd.choice([200, 200, 404, 500, 304])
                c.s_data(http_resp(st, b"" if st == 304 else body, length=st != 304),
                         ack_every=rnd.choice([0, 1, 2]))
            elif tls_round[r]:
                c.c_data(asks[r])
                c.s_data(tls_record(21, bytes([rnd.choice([1, 2]), rnd.choice([0, 40, 42, 48, 80, 112])])))
            else:
                c.c_data(asks[r])
                c.s_data(bytes(rnd.randrange(1, 12000)), ack_every=rnd.choice([0, 1, 2]))
            if rnd.random() < 0.1 and r + 1 < rounds:
                c.s2c(ACK_F, win=0)
                c.c2s(ACK_F, asks[r + 1][:1], advance=False, dt=200000)
                c.s2c(ACK_F, win=0)
                c.s2c(ACK_F, win=65535)
            if rnd.random() < 0.1:
                c.c2s(ACK_F, seq=(c.cseq - 1) & 0xFFFFFFFF, dt=10_000_000)
                c.s2c(ACK_F)
        end = rnd.random()
        if end < 0.6:
            c.close()
        elif end < 0.8:
            c.c2s(RST_F | ACK_F)
        elif end < 0.9:
            c.c2s(FIN_F | ACK_F)
            c.s2c(RST_F | ACK_F)
        # mangle: loss, duplication, local reordering
        recs = sub.recs
        out = []
        i = 0
        while i < len(recs):
            r = rnd.random()
            if r < 0.02:
                i += 1
                continue
            if r < 0.04:
                out.append(recs[i])
            if r < 0.07 and i + 1 < len(recs):
                out.append(recs[i + 1])
                out.append(recs[i])
                i += 2
                continue
            out.append(recs[i])
            i += 1
        streams.append((rnd.randrange(0, 60_000_000), out))
    merged = []
    for start, recs in streams:
        t = start
        for (_, ip, v6) in recs:
            t += rnd.randrange(1, 20000)
            merged.append((t, ip, v6))
    merged.sort(key=lambda r: r[0])
    for t, ip, v6 in merged:
        o.recs.append((o.t + t * 1000, ip, v6))


def edge_out() -> Out:
    o = Out()
    sc_http(o, 20000)
    sc_http(o, 21000, v6=True)
    sc_tls(o, 22000)
    sc_tls(o, 23000, v6=True)
    dns_tcp(o, 24000)
    dns_tcp(o, 25000, v6=True)
    sc_tcp_edges(o, 26000)
    sc_tcp_edges(o, 27000, v6=True)
    ipv6_ext(o, 28000)
    return o


def build_synth(out: Path, quick: bool) -> None:
    e = edge_out()
    for kind in ("ether", "vlan", "qinq", "sll", "sll2", "raw", "raw4", "raw6", "null", "loop"):
        n = e.write(out / f"synth_edges_{kind}.pcap", kind)
        print(f"synth_edges_{kind}.pcap", n)
    e.write(out / "synth_edges_null_be.pcap", "null", big=True)
    e.write(out / "synth_edges_ether_be_nano.pcap", "ether", big=True, nano=True)
    e.write(out / "synth_edges_sll2.pcapng", "sll2", fmt="pcapng", nano=True)
    # one pcapng, several interfaces with different link types and resolutions
    with open(out / "synth_edges_multilink.pcapng", "wb") as f:
        w = PcapngWriter(f, comment="multi link")
        kinds = ["ether", "sll", "raw", "qinq"]
        for i, k in enumerate(kinds):
            w.interface(LINKTYPE[k], tsresol=(6, 9, 3, 6)[i])
        for j, (ts, ip, v6) in enumerate(e.recs):
            i = (j // 7) % len(kinds)
            w.epb(i, ts, l2(kinds[i], ip, v6))
    sizes = [(1, 3000), (2, 6000), (3, 12000), (4, 40000)] if not quick else [(1, 800)]
    kinds = ["ether", "vlan", "sll2", "raw", "null", "loop", "sll", "qinq"]
    for seed, n in sizes:
        for j, kind in enumerate(kinds[(seed - 1) * 3:(seed - 1) * 3 + 3] or kinds[:2]):
            o = Out()
            chaos(o, random.Random(seed * 100 + j), n // 30)
            name = f"synth_chaos_s{seed}_{kind}.pcap"
            print(name, o.write(out / name, kind, nano=bool(j % 2)))
    build_anyport(out, quick)


def build_anyport(out: Path, quick: bool) -> None:
    """HTTP off HTTP's ports (found by its first line, as tshark's http_tcp heuristic does):
    the HTTP edge cases on 31501/9000, and chaos with HTTP on 31501, 9000, 5000 and 3000
    beside TLS, SSH and binary streams."""
    o = Out()
    sc_http(o, 29000, port=31501, alt_port=9000)
    sc_http(o, 29500, v6=True, port=5000, alt_port=3000)
    print("synth_anyport_edges.pcap", o.write(out / "synth_anyport_edges.pcap", "ether"))
    for seed, n in ([(1, 800)] if quick else [(1, 3000), (2, 12000)]):
        o = Out()
        chaos(o, random.Random(seed * 977), n // 30, ports=(31501, 9000, 5000, 3000, 443, 22, 5001),
              http_ports=(31501, 9000, 5000, 3000))
        name = f"synth_anyport_chaos_s{seed}.pcap"
        print(name, o.write(out / name, "ether"))


def big_endian_copy(src: Path, dst: Path) -> None:
    """Rewrite a little-endian classic pcap as big-endian (editcap writes host order)."""
    b = src.read_bytes()
    magic, vmaj, vmin, zone, sig, snap, lt = struct.unpack_from("<IHHiIII", b)
    out = [struct.pack(">IHHiIII", magic, vmaj, vmin, zone, sig, snap, lt)]
    off = 24
    while off + 16 <= len(b):
        s, f, incl, orig = struct.unpack_from("<IIII", b, off)
        out.append(struct.pack(">IIII", s, f, incl, orig) + b[off + 16:off + 16 + incl])
        off += 16 + incl
    dst.write_bytes(b"".join(out))


def run(*cmd: str) -> None:
    subprocess.run(cmd, check=False, stderr=subprocess.DEVNULL)


def build_conversions(out: Path, corpus: Path) -> None:
    caps = sorted(p for p in corpus.iterdir() if p.is_file() and not p.name.endswith((".json", ".md", ".sh")))
    for f in caps:
        b = f.name.removesuffix(".gz").rsplit(".", 1)[0]
        run("editcap", "-F", "pcapng", str(f), str(out / f"conv_{b}.pcapng"))
        run("editcap", "-F", "pcap", str(f), str(out / f"conv_{b}.pcap"))
        run("editcap", "-F", "nsecpcap", str(f), str(out / f"conv_{b}.nsec.pcap"))
        run("editcap", "-s", "60", "-F", "pcap", str(f), str(out / f"snap60_{b}.pcap"))
        run("editcap", "-s", "96", "-F", "pcapng", str(f), str(out / f"snap96_{b}.pcapng"))
        run("editcap", "-s", "200", "-F", "pcap", str(f), str(out / f"snap200_{b}.pcap"))
        p = out / f"conv_{b}.pcap"
        if p.exists() and p.stat().st_size > 24:
            big_endian_copy(p, out / f"be_{b}.pcap")
    c = lambda n: str(corpus / n)  # noqa: E731
    run("editcap", "-t", "3600.5", c("cs_http_espn_fail.pcapng"), str(out / "shift_espn_plus1h.pcapng"))
    run("editcap", "-t", "-1000000000", c("zeek_tcp_reassembly.pcap"), str(out / "shift_reassembly_minus1e9.pcap"))
    run("editcap", "-t", "0.000000123", "-F", "nsecpcap", c("zeek_smb2readwrite.pcap"), str(out / "shift_smb2_nsec.pcap"))
    with tempfile.TemporaryDirectory() as td:
        run("editcap", "-F", "pcapng", "-c", "40", c("msod_FASOD_ex2_smb2_domain.pcapng"), td + "/split.pcapng")
        run("mergecap", "-I", "none", "-F", "pcapng", "-w", str(out / "merge_fasod_resplit.pcapng"),
            *sorted(str(p) for p in Path(td).glob("split_*")))
        run("editcap", "-t", "10", c("zeek_tcp_rst_inject.pcap"), td + "/shift.pcap")
        run("mergecap", "-F", "pcap", "-w", str(out / "merge_rst_inject_twice.pcap"),
            c("zeek_tcp_rst_inject.pcap"), td + "/shift.pcap")
    run("mergecap", "-F", "pcapng", "-w", str(out / "merge_sll2_vlan_reasm.pcapng"),
        c("zeek_linux_sll2.pcap"), c("zeek_http_vlan.pcap"), c("zeek_tcp_reassembly.pcap"))
    run("mergecap", "-F", "pcapng", "-w", str(out / "merge_nano_tls_dns.pcapng"),
        c("tcpdump_tcp_handshake_nano.pcap"), c("zeek_tls12_handshake_failure.pcap"),
        c("cs_dns_query_nonexistent.pcapng"), c("zeek_pcapng_multi_interface.pcapng"))
    run("mergecap", "-a", "-F", "pcapng", "-w", str(out / "merge_concat_http_tls.pcapng"),
        c("zeek_http_vlan.pcap"), c("zeek_tls13draft16_ff52_unknown_ca.pcap"), c("zeek_tcp_rst_inject.pcap"))
    run("mergecap", "-I", "none", "-F", "pcapng", "-w", str(out / "merge_echo_self.pcapng"),
        c("zeek_tcp_reassembly.pcap"), str(out / "conv_zeek_tcp_reassembly.pcapng"))
    run("editcap", "-T", "user0", c("zeek_http_vlan.pcap"), str(out / "encap_user0_http_vlan.pcap"))
    run("editcap", "-F", "netmon2", c("cs_http_espn_fail.pcapng"), str(out / "netmon2_espn.cap"))
    run("editcap", "-F", "netmon2", c("msod_FASOD_ex2_smb2_domain.pcapng"), str(out / "netmon2_fasod.cap"))
    with open(out / "conv_cs_http_espn_fail.pcapng", "rb") as src, gzip.open(out / "gz_espn.pcapng.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    # Network Monitor: every corpus capture editcap can write as 1.x and 2.0, the 2.0
    # files rewritten as 2.1 / 2.2 / 2.3 (record trailers; 2.3 with the frame table first
    # and the header time in local time)
    for cap in sorted(corpus.iterdir()):
        if not cap.name.endswith((".pcap", ".pcapng", ".pcap.gz", ".cap")):
            continue
        stem = cap.name.split(".")[0]
        for fmt in ("netmon1", "netmon2"):
            dst = out / f"{fmt}_{stem}.cap"
            if subprocess.run(["editcap", "-F", fmt, str(cap), str(dst)], capture_output=True).returncode:
                dst.unlink(missing_ok=True)
        v20 = out / f"netmon2_{stem}.cap"
        raw = v20.read_bytes() if v20.exists() else b""
        if raw[:6] == b"GMBU\x00\x02":          # editcap writes 2.1 when link types are mixed
            for minor in (1, 2, 3):
                (out / f"netmon2{minor}_{stem}.cap").write_bytes(netmon_rewrite(raw, minor))
            (out / f"netmon23first_{stem}.cap").write_bytes(
                netmon_rewrite(raw, 3, table_first=True, local_offset_s=7200))
    # cut in the middle of a block, plain and gzip-compressed, at several points
    for name in ("msod_FASOD_ex2_smb2_domain.pcapng", "cs_http_espn_fail.pcapng",
                 "zeek_pcapng_multi_interface.pcapng", "zeek_tcp_reassembly.pcap"):
        if not (corpus / name).exists():
            continue
        raw = (corpus / name).read_bytes()
        stem, ext = name.split(".", 1)
        for gz in (False, True):
            data = gzip.compress(raw, mtime=0) if gz else raw
            for cut in sorted({len(data) - 2, len(data) - 9, len(data) * 3 // 4, len(data) // 2}):
                (out / f"cut{'gz' if gz else ''}{cut}_{stem}.{ext}{'.gz' if gz else ''}").write_bytes(data[:cut])
    for p in out.iterdir():
        if p.is_file() and p.stat().st_size == 0:
            p.unlink()


def build_capgen(out: Path, quick: bool) -> None:
    runs = [(1, 20_000), (2, 50_000), (3, 100_000), (4, 200_000)] if not quick else [(1, 20_000)]
    for seed, n in runs:
        subprocess.run([sys.executable, str(HERE / "net_capgen.py"), str(out / f"capgen_s{seed}_{n // 1000}k.pcap"),
                        "--packets", str(n), "--seed", str(seed)], check=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--corpus", type=Path, default=HERE.parent.parent / "shared" / "corpus" / "net")
    ap.add_argument("--no-capgen", action="store_true", help="skip the large net_capgen.py captures")
    ap.add_argument("--no-conversions", action="store_true", help="skip the editcap/mergecap group")
    ap.add_argument("--quick", action="store_true", help="fewer and smaller synthetic captures")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    if not a.no_conversions:
        build_conversions(a.out, a.corpus)
    build_synth(a.out, a.quick)
    if not a.no_capgen:
        build_capgen(a.out, a.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
