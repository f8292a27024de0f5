"""Link, network and transport decoding: just the fields the analysis needs.

:func:`decode` turns one captured frame into a :class:`Decoded` tuple, or
``None`` when the frame carries no IP packet that can be read.  It knows
Ethernet (with 802.1Q / 802.1ad / QinQ tags), Linux cooked v1 and v2, raw IP,
BSD loopback/null, IPv4 (fragments counted, not reassembled) and IPv6 with
its extension headers, and reads TCP, UDP, ICMP and ICMPv6 headers.

>>> eth = bytes(12) + b"\\x08\\x00"
>>> ip = bytes.fromhex("4500002800010000400600000a0000010a000002")
>>> tcp = bytes.fromhex("04d2005000000001000000005002ffff00000000")
>>> d = decode(1, eth + ip + tcp)
>>> (d.proto, d.sport, d.dport, d.flags, d.seglen)
(6, 1234, 80, 2, 0)
"""

from __future__ import annotations

import socket
import struct
from typing import NamedTuple

_ntoa = socket.inet_ntoa
_ntop = socket.inet_ntop
_AF_INET6 = socket.AF_INET6

# pcap link types
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
SUPPORTED_LINKTYPES = frozenset({0, 1, 12, 14, 101, 108, 113, 228, 229, 276})

LINKTYPE_NAMES = {0: "null", 1: "ether", 12: "rawip", 14: "rawip", 101: "rawip", 108: "loop",
                  113: "linux-sll", 228: "rawip4", 229: "rawip6", 276: "linux-sll2"}

PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMP = 1
PROTO_ICMPV6 = 58

_IPV6_EXT = frozenset({0, 43, 60, 135, 139, 140, 253, 254})
_VLAN = frozenset({0x8100, 0x88A8, 0x9100, 0x9200})

_u16 = struct.Struct("!H").unpack_from
_ip4 = struct.Struct("!BBHHHBBH4s4s").unpack_from
_tcp = struct.Struct("!HHIIBBH").unpack_from
_udp = struct.Struct("!HHH").unpack_from


class Decoded(NamedTuple):
    """The fields of one IP packet that the analysis reads.

    ``seglen`` is the transport payload length the IP header reports (as
    Wireshark's ``tcp.len``); ``payload`` is what was captured of it.
    """

    src: bytes
    dst: bytes
    proto: int
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    win: int
    seglen: int
    payload: bytes
    wscale: int          # -1 when no window-scale option (only read on SYNs)
    fragment: bool
    vlan: bool


def _l3(linktype: int, data: bytes) -> tuple[int, int, bool]:
    """Return (ethertype, offset of the network header, vlan seen)."""
    if linktype == LINKTYPE_ETHERNET:
        if len(data) < 14:
            return -1, 0, False
        et = _u16(data, 12)[0]
        off = 14
        vlan = False
        while et in _VLAN and len(data) >= off + 4:
            vlan = True
            et = _u16(data, off + 2)[0]
            off += 4
        return et, off, vlan
    if linktype in (LINKTYPE_RAW, 12, 14, LINKTYPE_IPV4, LINKTYPE_IPV6):
        if not data:
            return -1, 0, False
        v = data[0] >> 4
        return (0x0800 if v == 4 else 0x86DD if v == 6 else -1), 0, False
    if linktype == LINKTYPE_LINUX_SLL:
        if len(data) < 16:
            return -1, 0, False
        return _u16(data, 14)[0], 16, False
    if linktype == LINKTYPE_LINUX_SLL2:
        if len(data) < 20:
            return -1, 0, False
        return _u16(data, 0)[0], 20, False
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if len(data) < 4:
            return -1, 0, False
        fam = struct.unpack_from("<I" if linktype == LINKTYPE_NULL and data[0] else ">I", data, 0)[0]
        if fam == 2:
            return 0x0800, 4, False
        if fam in (10, 24, 28, 30):
            return 0x86DD, 4, False
        return -1, 0, False
    return -1, 0, False


def decode(linktype: int, data: bytes, orig_len: int = -1) -> Decoded | None:
    """Decode one frame; ``None`` if it holds no readable IPv4/IPv6 packet.

    ``orig_len`` is the frame's length on the wire; an IP length beyond it is
    cut to it, as Wireshark does ("total length exceeds packet length").
    """
    et, off, vlan = _l3(linktype, data)
    wire = (orig_len if orig_len >= len(data) else len(data)) - off
    fragment = False
    if et == 0x0800:
        if len(data) < off + 20:
            return None
        vihl, _tos, tlen, _id, frag, _ttl, proto, _ck, src, dst = _ip4(data, off)
        ihl = (vihl & 0x0F) * 4
        if vihl >> 4 != 4 or ihl < 20:
            return None
        if tlen < ihl:          # TSO / zero length: trust the capture
            tlen = wire
        elif tlen > wire:
            tlen = wire
        l4 = off + ihl
        l4len = tlen - ihl
        if frag & 0x3FFF:
            fragment = True
            if frag & 0x1FFF:   # not the first fragment: no transport header
                return Decoded(src, dst, proto, 0, 0, 0, 0, 0, 0, 0, b"", -1, True, vlan)
    elif et == 0x86DD:
        if len(data) < off + 40:
            return None
        plen = _u16(data, off + 4)[0]
        proto = data[off + 6]
        src = data[off + 8:off + 24]
        dst = data[off + 24:off + 40]
        l4 = off + 40
        end = l4 + (min(plen, wire - 40) if plen else wire - 40)
        while proto in _IPV6_EXT or proto == 44 or proto == 51:
            if len(data) < l4 + 8:
                return None
            nxt = data[l4]
            if proto == 44:
                fragment = True
                fo = _u16(data, l4 + 2)[0]
                if fo & 0xFFF8:
                    return Decoded(src, dst, nxt, 0, 0, 0, 0, 0, 0, 0, b"", -1, True, vlan)
                hl = 8
            elif proto == 51:
                hl = (data[l4 + 1] + 2) * 4
            else:
                hl = (data[l4 + 1] + 1) * 8
            proto = nxt
            l4 += hl
        l4len = end - l4
    else:
        return None
    if proto == PROTO_TCP:
        if len(data) < l4 + 20:
            return None
        sport, dport, seq, ack, doff, flags, win = _tcp(data, l4)
        hl = (doff >> 4) * 4
        if hl < 20:
            return None
        flags |= (doff & 1) << 8
        wscale = -1
        if flags & 0x02 and hl > 20:
            wscale = _window_scale(data, l4 + 20, min(l4 + hl, len(data)))
        seglen = max(0, l4len - hl)
        start = l4 + hl
        payload = data[start:start + seglen] if seglen else b""
        return Decoded(src, dst, proto, sport, dport, seq, ack, flags, win, seglen, payload,
                       wscale, fragment, vlan)
    if proto == PROTO_UDP:
        if len(data) < l4 + 8:
            return None
        sport, dport, ulen = _udp(data, l4)
        n = max(0, (ulen if ulen >= 8 else l4len) - 8)
        return Decoded(src, dst, proto, sport, dport, 0, 0, 0, 0, n,
                       data[l4 + 8:l4 + 8 + n], -1, fragment, vlan)
    return Decoded(src, dst, proto, 0, 0, 0, 0, 0, 0, max(0, l4len), b"", -1, fragment, vlan)


def _window_scale(data: bytes, off: int, end: int) -> int:
    """The window-scale shift from TCP options, or -1 when absent."""
    while off < end:
        kind = data[off]
        if kind == 0:
            break
        if kind == 1:
            off += 1
            continue
        if off + 1 >= end:
            break
        ln = data[off + 1]
        if ln < 2:
            break
        if kind == 3 and ln == 3 and off + 2 < end:
            return min(data[off + 2], 14)
        off += ln
    return -1


def format_addr(addr: bytes) -> str:
    """Text form of a 4- or 16-byte address.

    >>> format_addr(bytes([10, 0, 0, 1])), format_addr(bytes(15) + b"\\x01")
    ('10.0.0.1', '::1')
    """
    if len(addr) == 4:
        return _ntoa(addr)
    if len(addr) == 16:
        return _ntop(_AF_INET6, addr)
    return addr.hex()
