"""Link-layer and IP decoding."""

from __future__ import annotations

import struct

import pytest

from backline.analyzers.net.decode import decode, format_addr
from backline.analyzers.net.synth import (A, ACK_F, B, PSH_F, SYN_F, ether, ipv4, ipv6, tcp,
                                          udp)

SEG = tcp(40000, 443, 7, 9, PSH_F | ACK_F, win=1000, payload=b"hello")
A6 = bytes.fromhex("20010db8000000000000000000000001")
B6 = bytes.fromhex("20010db8000000000000000000000002")


def _check(d, src=A, dst=B):
    assert d is not None
    assert (d.src, d.dst, d.proto, d.sport, d.dport) == (src, dst, 6, 40000, 443)
    assert (d.seq, d.ack, d.win, d.seglen, d.payload) == (7, 9, 1000, 5, b"hello")


@pytest.mark.parametrize("vlans", [(), (10,), (100, 200)])
def test_ethernet_vlan_and_qinq(vlans):
    d = decode(1, ether(ipv4(A, B, SEG), vlans=vlans))
    _check(d)
    assert d.vlan == bool(vlans)


def test_linux_cooked_v1_and_v2_raw_ip_and_loopback():
    ip = ipv4(A, B, SEG)
    sll = struct.pack("!HHH8sH", 0, 1, 6, b"\x00" * 8, 0x0800)
    sll2 = struct.pack("!HHIHBB8s", 0x0800, 0, 2, 1, 0, 6, b"\x00" * 8)
    _check(decode(113, sll + ip))
    _check(decode(276, sll2 + ip))
    _check(decode(101, ip))
    _check(decode(0, struct.pack("<I", 2) + ip))          # BSD null, host order
    _check(decode(108, struct.pack(">I", 2) + ip))        # OpenBSD loop, network order
    _check(decode(0, struct.pack("<I", 30) + ipv6(A6, B6, SEG)), A6, B6)


def test_ipv6_extension_headers():
    # hop-by-hop (8 bytes) then destination options (8 bytes) then TCP
    hbh = bytes([60, 0]) + bytes(6)
    dst = bytes([6, 0]) + bytes(6)
    d = decode(1, ether(ipv6(A6, B6, SEG, ext=hbh + dst, first_next=0), 0x86DD))
    _check(d, A6, B6)
    assert format_addr(d.src) == "2001:db8::1"


def test_fragments_are_flagged():
    first = decode(1, ether(ipv4(A, B, udp(5000, 53, b"x" * 40), proto=17, frag=0x2000)))
    later = decode(1, ether(ipv4(A, B, b"y" * 40, proto=17, frag=5)))
    frag6 = bytes([17, 0]) + struct.pack("!H", 8 << 3) + bytes(4)
    six = decode(1, ether(ipv6(A6, B6, b"z" * 16, proto=17, ext=frag6, first_next=44), 0x86DD))
    assert first.fragment and later.fragment and six.fragment
    assert later.sport == 0 and six.payload == b""


def test_window_scale_option_and_wire_length():
    d = decode(1, ether(ipv4(A, B, tcp(1, 2, 0, 0, SYN_F, wscale=7))))
    assert d.wscale == 7
    full = ether(ipv4(A, B, SEG))
    cut = full[:-3]
    assert decode(1, cut, len(full)).seglen == 5          # snaplen: IP length stands
    assert decode(1, cut, len(cut)).seglen == 2           # frame shorter than IP says


@pytest.mark.parametrize("junk", [b"", b"\x00" * 13, b"\xff" * 60])
def test_junk_and_unknown_link_types_give_none(junk):
    assert decode(1, junk) is None
    assert decode(147, ether(ipv4(A, B, SEG))) is None
