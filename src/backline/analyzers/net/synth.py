"""Build packets and write capture files: for tests and the benchmark generator.

>>> w = PcapWriter(io.BytesIO())
>>> w.write(1_000_000_000, ether(ipv4(A, B, tcp(1234, 80, 1, 0, SYN_F))))
>>> len(w.f.getvalue())
94
"""

from __future__ import annotations

import io
import struct
from typing import BinaryIO

A = bytes([10, 0, 0, 1])
B = bytes([10, 0, 0, 2])
SYN_F, ACK_F, RST_F, FIN_F, PSH_F = 0x02, 0x10, 0x04, 0x01, 0x08
_MAC = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02"


def ether(payload: bytes, ethertype: int = 0x0800, vlans: tuple[int, ...] = ()) -> bytes:
    """An Ethernet II frame, optionally 802.1Q / QinQ tagged (outer tag first)."""
    tags = b""
    for i, vid in enumerate(vlans):
        tpid = 0x88A8 if i == 0 and len(vlans) > 1 else 0x8100
        tags += struct.pack("!HH", tpid, vid)
    return _MAC + tags + struct.pack("!H", ethertype) + payload


def ipv4(src: bytes, dst: bytes, l4: bytes, proto: int = 6, frag: int = 0, ident: int = 1) -> bytes:
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), ident, frag, 64, proto, 0,
                       src, dst) + l4


def ipv6(src: bytes, dst: bytes, l4: bytes, proto: int = 6, ext: bytes = b"",
         first_next: int | None = None) -> bytes:
    """IPv6; ``ext`` are extension headers already chained to ``proto``."""
    nxt = proto if first_next is None else first_next
    return struct.pack("!IHBB16s16s", 6 << 28, len(ext) + len(l4), nxt, 64, src, dst) + ext + l4


def tcp(sport: int, dport: int, seq: int, ack: int, flags: int, win: int = 65535,
        payload: bytes = b"", wscale: int | None = None) -> bytes:
    opts = b""
    if wscale is not None:
        opts = b"\x01\x03\x03" + bytes([wscale])
    hl = 20 + len(opts)
    return struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                       (hl // 4) << 4, flags, win, 0, 0) + opts + payload


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def dns_query(tid: int, name: str, qtype: int = 1) -> bytes:
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"
    return struct.pack("!HHHHHH", tid, 0x0100, 1, 0, 0, 0) + q + struct.pack("!HH", qtype, 1)


def dns_response(query: bytes, rcode: int = 0) -> bytes:
    r = bytearray(query)
    r[2] = 0x81
    r[3] = 0x80 | rcode
    return bytes(r)


class PcapWriter:
    """Write classic pcap (microsecond or nanosecond, little- or big-endian)."""

    def __init__(self, f: BinaryIO, linktype: int = 1, nano: bool = False, big: bool = False,
                 snaplen: int = 262144):
        self.f = f
        self.e = ">" if big else "<"
        self.nano = nano
        magic = 0xA1B23C4D if nano else 0xA1B2C3D4
        f.write(struct.pack(self.e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
        self._hdr = struct.Struct(self.e + "IIII")

    def write(self, ts_ns: int, frame: bytes, orig_len: int | None = None) -> None:
        sec, rem = divmod(ts_ns, 1_000_000_000)
        frac = rem if self.nano else rem // 1000
        self.f.write(self._hdr.pack(sec, frac, len(frame), orig_len or len(frame)))
        self.f.write(frame)


class PcapngWriter:
    """Write pcapng with several interfaces (link type, ``if_tsresol``)."""

    def __init__(self, f: BinaryIO, comment: str = ""):
        self.f = f
        self.ifaces: list[int] = []
        opts = _opt(1, comment.encode()) + b"\x00\x00\x00\x00" if comment else b""
        body = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + opts
        self._block(0x0A0D0D0A, body)

    def _block(self, btype: int, body: bytes) -> None:
        ln = 12 + len(body)
        self.f.write(struct.pack("<II", btype, ln) + body + struct.pack("<I", ln))

    def interface(self, linktype: int = 1, tsresol: int = 6) -> int:
        opts = _opt(9, bytes([tsresol])) + b"\x00\x00\x00\x00"
        self._block(1, struct.pack("<HHI", linktype, 0, 262144) + opts)
        self.ifaces.append(tsresol)
        return len(self.ifaces) - 1

    def epb(self, iface: int, ts_ns: int, frame: bytes, comment: str = "") -> None:
        units = ts_ns // (10 ** (9 - self.ifaces[iface]))
        pad = b"\x00" * (-len(frame) % 4)
        opts = _opt(1, comment.encode()) + b"\x00\x00\x00\x00" if comment else b""
        self._block(6, struct.pack("<IIIII", iface, units >> 32, units & 0xFFFFFFFF, len(frame),
                                   len(frame)) + frame + pad + opts)

    def spb(self, frame: bytes) -> None:
        pad = b"\x00" * (-len(frame) % 4)
        self._block(3, struct.pack("<I", len(frame)) + frame + pad)

    def opb(self, iface: int, ts_ns: int, frame: bytes) -> None:
        units = ts_ns // (10 ** (9 - self.ifaces[iface]))
        pad = b"\x00" * (-len(frame) % 4)
        self._block(2, struct.pack("<HHIIII", iface, 0, units >> 32, units & 0xFFFFFFFF,
                                   len(frame), len(frame)) + frame + pad)


def _opt(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


_EPOCH_1601_NS = 11_644_473_600 * 1_000_000_000


def netmon_rewrite(src: bytes, minor: int, *, table_first: bool = False, local_offset_s: int = 0,
                   network: int = 1) -> bytes:
    """Rewrite a Network Monitor 2.0 capture (as ``editcap -F netmon2`` writes it) as 2.``minor``.

    The same frames, each followed by the record trailer of that version (2.1: the
    frame's network type; 2.2: + a process-info index; 2.3: + the UTC time stamp as a
    FILETIME and a time-zone index, 15 bytes in all), with a new frame table, which
    ``table_first`` puts before the frames (readers follow the header's offset).
    ``local_offset_s`` shifts the header's start time, which 2.3 writers store in the
    capturing machine's local time (the trailers keep UTC).  No other tables.

    >>> import io
    >>> hdr = bytearray(128); hdr[:6] = b"GMBU\\x00\\x02"; hdr[6] = 1
    >>> struct.pack_into("<8H", hdr, 8, 2024, 1, 1, 1, 0, 0, 0, 0)
    >>> rec = struct.pack("<QII", 0, 3, 3) + b"abc"
    >>> struct.pack_into("<II", hdr, 24, 128 + len(rec), 4)
    >>> out = netmon_rewrite(bytes(hdr) + rec + struct.pack("<I", 128), 3)
    >>> out[4], len(out) - 128 - len(rec) - 4
    (3, 15)
    """
    from datetime import datetime, timezone

    if src[:4] != b"GMBU" or src[5] != 2 or src[4] != 0:
        raise ValueError("expects a Network Monitor 2.0 capture")
    y, mo, _dow, d, h, mi, s, ms = struct.unpack_from("<8H", src, 8)
    ft_off, ft_len = struct.unpack_from("<II", src, 24)
    offsets = struct.unpack_from(f"<{ft_len // 4}I", src, ft_off)
    start = datetime(y, mo, d, h, mi, s, ms * 1000, tzinfo=timezone.utc)
    start_ns = int(start.timestamp()) * 1_000_000_000 + ms * 1_000_000
    header = bytearray(src[:128].ljust(128, b"\0"))
    header[4] = minor
    if local_offset_s:
        local = datetime.fromtimestamp(start.timestamp() + local_offset_s, tz=timezone.utc)
        struct.pack_into("<8H", header, 8, local.year, local.month, (local.weekday() + 1) % 7,
                         local.day, local.hour, local.minute, local.second, ms)
    for o in range(32, 72, 4):            # user data, comments, process info, extended info
        struct.pack_into("<I", header, o, 0)
    table_size = 4 * len(offsets)
    pos = 128 + (table_size if table_first else 0)
    body = bytearray()
    offs = []
    for off in offsets:
        delta_us, orig, incl = struct.unpack_from("<QII", src, off)
        trailer = b""
        if minor >= 1:
            trailer += struct.pack("<H", network)
        if minor >= 2:
            trailer += struct.pack("<I", 0)
        if minor >= 3:
            trailer += struct.pack("<QB", (start_ns + delta_us * 1000 + _EPOCH_1601_NS) // 100, 0)
        offs.append(pos + len(body))
        body += struct.pack("<QII", delta_us, orig, incl) + src[off + 16:off + 16 + incl] + trailer
    table = struct.pack(f"<{len(offs)}I", *offs)
    struct.pack_into("<II", header, 24, 128 if table_first else 128 + len(body), table_size)
    return bytes(header) + (table + bytes(body) if table_first else bytes(body) + table)
