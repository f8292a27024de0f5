"""Generate a large, realistic capture for the net benchmark (Backline's own generator).

Many interleaved connections: HTTP/1.1 (keep-alive, several requests each),
TLS (ClientHello with SNI, server flight, application data, some fatal
alerts), DNS over UDP (NXDOMAIN, SERVFAIL, unanswered queries), refused
connections (RST to SYN), a black-holed server (SYNs never answered), resets
mid-stream, zero-window stalls with probes, and injected loss with fast and
RTO retransmissions.

Usage::

    python benchmarks/net_capgen.py OUT.pcap [--packets 5200000] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
from typing import Iterator

_FRAME = struct.Struct("!6s6sHBBHHHBBH4s4sHHIIBBHHH")   # Ethernet + IPv4 + TCP (no options)
_UDPF = struct.Struct("!6s6sHBBHHHBBH4s4sHHHH")
_REC = struct.Struct("<IIII")
_MAC_C = b"\x02\x00\x00\x00\x00\x01"
_MAC_S = b"\x02\x00\x00\x00\x00\x02"
SYN, ACK, RST, FIN, PSH = 0x02, 0x10, 0x04, 0x01, 0x08
DATA = bytes(range(256)) * 64          # 16 KiB of body bytes
MSS = 1448


def tcp_frame(src, dst, sport, dport, seq, ack, flags, win, payload=b"") -> bytes:
    return _FRAME.pack(_MAC_S if src[1] != 1 else _MAC_C, _MAC_C if src[1] != 1 else _MAC_S,
                       0x0800, 0x45, 0, 40 + len(payload), 0, 0x4000, 64, 6, 0, src, dst,
                       sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 0x50, flags, win, 0,
                       0) + payload


def udp_frame(src, dst, sport, dport, payload) -> bytes:
    return _UDPF.pack(_MAC_C, _MAC_S, 0x0800, 0x45, 0, 28 + len(payload), 0, 0x4000, 64, 17, 0,
                      src, dst, sport, dport, 8 + len(payload), 0) + payload


class Tcp:
    """One connection's sequence state; ``send`` yields (delay_us, frame) steps."""

    def __init__(self, rnd, cli, srv, sport, dport):
        self.rnd = rnd
        self.c, self.s, self.cp, self.sp = cli, srv, sport, dport
        self.cseq = rnd.getrandbits(32)
        self.sseq = rnd.getrandbits(32)
        self.cwin = 64240
        self.swin = 65535

    def c2s(self, flags, payload=b"", seq=None):
        return tcp_frame(self.c, self.s, self.cp, self.sp, self.cseq if seq is None else seq,
                         self.sseq, flags, self.cwin, payload)

    def s2c(self, flags, payload=b"", seq=None, win=None):
        return tcp_frame(self.s, self.c, self.sp, self.cp, self.sseq if seq is None else seq,
                         self.cseq, flags, self.swin if win is None else win, payload)

    def handshake(self) -> Iterator[tuple[int, bytes]]:
        yield 0, tcp_frame(self.c, self.s, self.cp, self.sp, self.cseq, 0, SYN, 64240)
        self.cseq += 1
        yield 15_000, tcp_frame(self.s, self.c, self.sp, self.cp, self.sseq, self.cseq, SYN | ACK,
                                65535)
        self.sseq += 1
        yield 15_000, self.c2s(ACK)

    def client_sends(self, payload: bytes) -> Iterator[tuple[int, bytes]]:
        yield 2_000, self.c2s(PSH | ACK, payload)
        self.cseq += len(payload)

    def server_sends(self, size: int, loss: float, stall: bool = False) -> Iterator[tuple[int, bytes]]:
        """Server data in MSS segments; the client ACKs every second one.
        A lost segment is recovered by fast retransmission after dup ACKs, or by RTO."""
        rnd = self.rnd
        sent = 0
        n = 0
        while sent < size:
            k = min(MSS, size - sent)
            body = DATA[sent % 1024:sent % 1024 + k]
            if stall and n == 2:
                # receiver stops reading: zero window, probes, then a window update
                yield 150, self.c2s(ACK, seq=None)
                self.cwin = 0
                yield 100, self.c2s(ACK)
                for _ in range(rnd.randint(2, 4)):
                    yield 200_000, self.s2c(ACK, body[:1])
                    yield 200, self.c2s(ACK)
                self.cwin = 64240
                yield 300_000, self.c2s(ACK)
            if loss and rnd.random() < loss and size - sent > 3 * MSS:
                lost_seq = self.sseq
                self.sseq += k
                sent += k
                dups = 0
                for _ in range(3):      # following segments arrive, client sends dup ACKs
                    if sent >= size:
                        break
                    k2 = min(MSS, size - sent)
                    yield 120, self.s2c(ACK, DATA[:k2])
                    self.sseq += k2
                    sent += k2
                    yield 60, tcp_frame(self.c, self.s, self.cp, self.sp, self.cseq, lost_seq,
                                        ACK, self.cwin)
                    dups += 1
                delay = 400 if dups >= 3 else 200_000
                yield delay, self.s2c(ACK, body, seq=lost_seq)
                yield 200, self.c2s(ACK)
                n += 1
                continue
            yield 120, self.s2c(PSH | ACK if sent + k >= size else ACK, body)
            self.sseq += k
            sent += k
            n += 1
            if n % 2 == 0 or sent >= size:
                yield 80, self.c2s(ACK)

    def close(self) -> Iterator[tuple[int, bytes]]:
        yield 500, self.c2s(FIN | ACK)
        self.cseq += 1
        yield 300, self.s2c(FIN | ACK)
        self.sseq += 1
        yield 300, self.c2s(ACK)


def http_session(rnd, t: Tcp) -> Iterator[tuple[int, bytes]]:
    yield from t.handshake()
    for i in range(rnd.randint(1, 4)):
        path = f"/api/v1/items/{rnd.randint(1, 99999)}?page={i}"
        req = (f"GET {path} HTTP/1.1\r\nHost: shop.example.com\r\nUser-Agent: bench\r\n"
               f"Accept: */*\r\n\r\n").encode()
        yield from t.client_sends(req)
        r = rnd.random()
        status = 200 if r < 0.95 else (404 if r < 0.98 else 503)
        size = min(200_000, int(rnd.expovariate(1 / 2200)) + 40)
        head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
        yield 20_000 + (1_500_000 if rnd.random() < 0.01 else 0), b""
        body_first = head.encode()
        yield 0, t.s2c(PSH | ACK, body_first)
        t.sseq += len(body_first)
        yield from t.server_sends(size, loss=0.02, stall=rnd.random() < 0.01)
    if rnd.random() < 0.02:
        yield 1000, t.s2c(RST | ACK)
        return
    yield from t.close()


def tls_session(rnd, t: Tcp) -> Iterator[tuple[int, bytes]]:
    yield from t.handshake()
    sni = f"api{rnd.randint(1, 40)}.example.net".encode()
    ext = struct.pack("!HHHBH", 0, len(sni) + 5, len(sni) + 3, 0, len(sni)) + sni
    hello = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x04\x13\x01\xc0\x2f" + b"\x01\x00" + \
        struct.pack("!H", len(ext)) + ext
    hs = b"\x01" + len(hello).to_bytes(3, "big") + hello
    yield from t.client_sends(b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs)
    if rnd.random() < 0.01:
        yield 3000, t.s2c(PSH | ACK, b"\x15\x03\x03\x00\x02\x02\x28")   # fatal handshake_failure
        t.sseq += 7
        yield 500, t.s2c(RST | ACK)
        return
    flight = b"\x16\x03\x03" + struct.pack("!H", 3000) + DATA[:3000]
    assert len(flight) == 3005
    yield 3000, b""
    sent = 0
    while sent < len(flight):
        k = min(MSS, len(flight) - sent)
        yield 100, t.s2c(ACK, flight[sent:sent + k])
        t.sseq += k
        sent += k
    yield 100, t.c2s(ACK)
    yield from t.client_sends(b"\x14\x03\x03\x00\x01\x01" + b"\x17\x03\x03\x00\x40" + DATA[:64])
    for _ in range(rnd.randint(1, 5)):
        yield from t.client_sends(b"\x17\x03\x03\x01\x00" + DATA[:256])
        size = min(16_000, int(rnd.expovariate(1 / 1800)) + 100)
        rec = b"\x17\x03\x03" + struct.pack("!H", size) + (DATA * (size // len(DATA) + 1))[:size]
        yield 1500, b""
        sent = 0
        while sent < len(rec):
            k = min(MSS, len(rec) - sent)
            yield 100, t.s2c(PSH | ACK, rec[sent:sent + k])
            t.sseq += k
            sent += k
        yield 100, t.c2s(ACK)
    yield from t.close()


def refused(rnd, t: Tcp) -> Iterator[tuple[int, bytes]]:
    yield 0, t.c2s(SYN)
    yield 300, tcp_frame(t.s, t.c, t.sp, t.cp, 0, t.cseq + 1, RST | ACK, 0)


def blackhole(rnd, t: Tcp) -> Iterator[tuple[int, bytes]]:
    for delay in (0, 1_000_000, 2_000_000):
        yield delay, t.c2s(SYN)


def dns_exchange(rnd, cli, port) -> Iterator[tuple[int, bytes]]:
    tid = rnd.getrandbits(16)
    name = rnd.choice(["db", "api", "auth", "cache", "files"]) + f"{rnd.randint(1, 300)}.corp.example"
    q = struct.pack("!HHHHHH", tid, 0x0100, 1, 0, 0, 0) + \
        b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00\x00\x01\x00\x01"
    srv = bytes([10, 4, 0, 1 + (port & 1)])
    yield 0, udp_frame(cli, srv, port, 53, q)
    r = rnd.random()
    if r < 0.01:
        return                                       # unanswered
    rcode = 3 if r < 0.05 else (2 if r < 0.06 else 0)
    resp = bytearray(q)
    resp[2], resp[3] = 0x81, 0x80 | rcode
    if rcode == 0:
        resp[7] = 1
        resp += b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes([10, 9, 8, 7])
    yield rnd.randint(300, 30_000), udp_frame(srv, cli, 53, port, bytes(resp))


def _new_session(rnd, port):
    cli = bytes([10, 1, rnd.randint(0, 255), rnd.randint(1, 254)])
    r = rnd.random()
    if r < 0.25:
        return dns_exchange(rnd, cli, port)
    if r < 0.60:
        srv, sp, kind = bytes([10, 2, 0, rnd.randint(1, 20)]), 80, http_session
    elif r < 0.985:
        srv, sp, kind = bytes([10, 3, 0, rnd.randint(1, 20)]), 443, tls_session
    elif r < 0.995:
        srv, sp, kind = bytes([10, 5, 0, 1]), 8080, refused
    else:
        srv, sp, kind = bytes([10, 6, 0, 1]), 5432, blackhole
    return kind(rnd, Tcp(rnd, cli, srv, port, sp))


def generate(out: str, packets: int, seed: int = 1, live: int = 400) -> tuple[int, int]:
    """Write ``packets`` frames to ``out`` in time order; return (packets, bytes)."""
    import heapq
    rnd = random.Random(seed)
    now = 1_700_000_000_000_000            # microseconds
    heap: list = []
    port = 1024
    seq = 0
    for _ in range(live):
        port += 1
        seq += 1
        heap.append((now + rnd.randint(0, 5000), seq, _new_session(rnd, port)))
    heapq.heapify(heap)
    n = 0
    written = 24
    buf: list[bytes] = []
    pack = _REC.pack
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        while n < packets:
            when, sid, gen = heap[0]
            now = when
            try:
                delay, frame = next(gen)
            except StopIteration:
                port = port + 1 if port < 65000 else 1024
                seq += 1
                heapq.heapreplace(heap, (now + rnd.randint(10, 400), seq, _new_session(rnd, port)))
                continue
            if delay:
                # wait before this frame: reschedule it (the generator has moved on, so
                # send it at the new time)
                heapq.heapreplace(heap, (now + delay, sid, _prepend(frame, gen)))
                continue
            if frame:
                buf.append(pack(now // 1_000_000, now % 1_000_000, len(frame), len(frame)))
                buf.append(frame)
                written += 16 + len(frame)
                n += 1
                if len(buf) >= 40_000:
                    f.write(b"".join(buf))
                    buf.clear()
            heapq.heapreplace(heap, (now + rnd.randint(100, 3000), sid, gen))
        f.write(b"".join(buf))
    return n, written


def _prepend(frame: bytes, gen):
    yield 0, frame
    yield from gen


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--packets", type=int, default=5_200_000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    n, size = generate(a.out, a.packets, a.seed)
    print(f"{a.out}: {n} packets, {size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
