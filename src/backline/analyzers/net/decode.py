"""Link, network and transport decoding: just the fields the analysis needs.

:func:`decode` turns one captured frame into a :class:`Decoded` tuple, or
``None`` when the frame carries no IP packet that can be read.  It knows
Ethernet (with 802.1Q / 802.1ad / QinQ tags), Linux cooked v1 and v2, raw IP,
BSD loopback/null, IPv4 (fragments flagged; the analysis reassembles them) and IPv6 with
its extension headers, and reads TCP, UDP, ICMP and ICMPv6 headers.
The decoding itself is compiled (:mod:`._engine`), as it runs once per packet.

>>> eth = bytes(12) + b"\\x08\\x00"
>>> ip = bytes.fromhex("4500002800010000400600000a0000010a000002")
>>> tcp = bytes.fromhex("04d2005000000001000000005002ffff00000000")
>>> d = decode(1, eth + ip + tcp)
>>> (d.proto, d.sport, d.dport, d.flags, d.seglen)
(6, 1234, 80, 2, 0)
"""

from __future__ import annotations

import socket
from typing import NamedTuple

from backline.analyzers.net._engine import decode_tuple as _decode_tuple

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


def decode(linktype: int, data: bytes, orig_len: int = -1) -> Decoded | None:
    """Decode one frame; ``None`` if it holds no readable IPv4/IPv6 packet.

    ``orig_len`` is the frame's length on the wire; an IP length beyond it is
    cut to it, as Wireshark does ("total length exceeds packet length").
    The decoding is the compiled one the capture analysis uses
    (:mod:`._engine`), so this answers exactly as the analysis reads.
    """
    t = _decode_tuple(linktype, bytes(data), orig_len)
    return None if t is None else Decoded(*t)


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
