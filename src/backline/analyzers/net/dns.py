"""DNS (and mDNS / LLMNR, which share its wire format): queries matched to responses.

Matching follows Wireshark 4.0: a response answers the latest query with the
same transaction id in the same conversation (address/port pair); earlier
repeats of that query stay unanswered in the counts (``dns_unanswered``), but
a name is reported unanswered only when none of its queries got a response.

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

RCODE_NAMES = {0: "NoError", 1: "FormErr", 2: "ServFail", 3: "NXDomain", 4: "NotImp",
               5: "Refused", 6: "YXDomain", 7: "YXRRSet", 8: "NXRRSet", 9: "NotAuth",
               10: "NotZone"}
DNS_PORTS = frozenset({53, 5353, 5355})
MAX_PENDING = 200_000


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


def qname(msg: bytes, off: int = 12) -> tuple[str, int]:
    """Read the (uncompressed) first question name; returns (name, next offset)."""
    labels = []
    n = len(msg)
    while off < n:
        ln = msg[off]
        if ln == 0:
            off += 1
            break
        if ln & 0xC0:
            off += 2
            break
        labels.append(msg[off + 1:off + 1 + ln].decode("ascii", "replace"))
        off += 1 + ln
        if len(labels) > 127:
            break
    return ".".join(labels) or "<root>", off


class DnsTracker:
    """Count DNS queries and responses; keep the failures and response times."""

    def __init__(self, keep: int = 10_000) -> None:
        self.queries = 0
        self.responses = 0
        self.rcodes: dict[str, int] = {}
        self.answered: set[int] = set()
        self.pending: dict[tuple, list[tuple[int, int, str, int]]] = {}
        self.failures: list[DnsAnswer] = []      # NXDOMAIN / SERVFAIL / other errors
        self.times_ns: list[int] = []
        self.keep = keep
        self.servers: dict[tuple, str] = {}
        self.retried = 0             # repeated queries that were answered in the end

    def message(self, num: int, ts: int, conv: tuple, msg: bytes, from_client: bool,
                server: str | bytes = "", cut: bool = False) -> None:
        """Count one DNS message; ``server`` is the server's address (text or raw bytes).

        ``cut``: the snaplen cut the message.  tshark 4.0.17 still counts it
        (query, or response and its rcode) from the header, and a cut query can
        still be answered, but a cut response answers no query (it throws before
        ``dns.response_to``).
        """
        if len(msg) < (4 if cut else 12):
            return
        tid = (msg[0] << 8) | msg[1]
        is_resp = msg[2] & 0x80
        key = (conv, tid)
        if not is_resp:
            self.queries += 1
            name, off = qname(msg) if len(msg) >= 12 and (msg[5] or msg[4]) else ("<none>", 12)
            qtype = (msg[off] << 8 | msg[off + 1]) if off + 2 <= len(msg) else 0
            lst = self.pending.get(key)
            if lst is None:
                if len(self.pending) < MAX_PENDING:
                    self.pending[key] = [(num, ts, name, qtype)]
                    if conv not in self.servers and len(self.servers) < MAX_PENDING:
                        self.servers[conv] = _text(server)
            elif len(lst) < 64:
                lst.append((num, ts, name, qtype))
            return
        self.responses += 1
        code = msg[3] & 0x0F
        rname = RCODE_NAMES.get(code, str(code))
        self.rcodes[rname] = self.rcodes.get(rname, 0) + 1
        lst = self.pending.get(key) if not cut else None
        qframe, qts, name, qtype = (0, 0, "", 0)
        if lst:
            qframe, qts, name, qtype = lst[-1]
            if len(lst) > 1:
                self.retried += len(lst) - 1
            self.answered.add(qframe)
            del self.pending[key]
            if len(self.times_ns) < 1_000_000:
                self.times_ns.append(ts - qts)
        if not name:
            name, off = qname(msg) if len(msg) >= 12 and (msg[5] or msg[4]) else ("<none>", 12)
        if code and len(self.failures) < self.keep:
            self.failures.append(DnsAnswer(qframe, num, name, qtype, rname, _text(server),
                                           ts - qts if qframe else 0, ts))

    def unanswered(self) -> int:  # noqa: D401
        """Queries minus distinct answered query frames (the oracle's rule)."""
        return max(0, self.queries - len(self.answered))

    def unanswered_queries(self) -> list[DnsAnswer]:
        out = []
        for (conv, _tid), lst in self.pending.items():
            for qframe, qts, name, qtype in lst:
                out.append(DnsAnswer(qframe, 0, name, qtype, "", self.servers.get(conv, ""), 0, qts))
        out.sort(key=lambda a: a.query_frame)
        return out


def _text(addr: str | bytes) -> str:
    if isinstance(addr, bytes):
        from backline.analyzers.net.decode import format_addr
        return format_addr(addr)
    return addr


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
