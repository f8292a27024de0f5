"""DNS (and mDNS / LLMNR, which share its wire format): queries matched to responses.

Matching follows Wireshark 4.0: a response answers the latest query with the
same transaction id in the same conversation (address/port pair); earlier
repeats of that query stay unanswered in the counts (``dns_unanswered``), but
a name is reported unanswered only when none of its queries got a response.
:class:`DnsTracker` (compiled, :mod:`._engine`) counts the messages.

>>> t = DnsTracker()
>>> q = bytes.fromhex("12340100000100000000000003777777076578616d706c6503636f6d0000010001")
>>> t.message(1, 0, ("c", 1000, "s", 53), q, from_client=True)
>>> r = bytearray(q); r[2] = 0x81; r[3] = 0x83
>>> t.message(2, 5_000_000, ("c", 1000, "s", 53), bytes(r), from_client=False)
>>> t.rcodes, t.queries, t.unanswered()
({'NXDomain': 1}, 1, 0)
>>> t.failures[0].name, t.failures[0].rcode
('www.example.com', 'NXDomain')
"""

from __future__ import annotations

from dataclasses import dataclass

from backline.analyzers.net._engine import MAX_PENDING, RCODE_NAMES, DnsTracker, qname  # noqa: F401

DNS_PORTS = frozenset({53, 5353, 5355})


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    """One matched or unanswered query."""

    query_frame: int
    response_frame: int          # 0 when unanswered
    name: str
    qtype: int
    rcode: str                   # "" when unanswered
    server: str
    rtt_ns: int
    ts: int = 0                  # ns since the epoch of the response (or the query)


class DnsTcpParser:
    """DNS over TCP: 2-byte length-prefixed messages in one direction.

    >>> got = []
    >>> p = DnsTcpParser(lambda f, t, m: got.append((f, len(m))))
    >>> p.feed(4, 0, b"\\x00\\x0c" + bytes(12))
    >>> got
    [(4, 12)]
    """

    __slots__ = ("on_message", "buf", "skip", "lost")

    def __init__(self, on_message):
        self.on_message = on_message
        self.buf = b""
        self.skip = 0
        self.lost = False

    def gap(self) -> None:
        self.buf = b""
        self.lost = True

    def feed(self, frame: int, ts: int, data: bytes) -> None:
        if self.lost:          # resynchronise only at a segment that starts a message
            self.lost = False
        buf = self.buf + data if self.buf else data
        off = 0
        while off + 2 <= len(buf):
            ln = (buf[off] << 8) | buf[off + 1]
            if off + 2 + ln > len(buf):
                break
            if ln >= 12:
                self.on_message(frame, ts, buf[off + 2:off + 2 + ln])
            off += 2 + ln
        rest = buf[off:]
        self.buf = rest if len(rest) <= 65_537 else b""
