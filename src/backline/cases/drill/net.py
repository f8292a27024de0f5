"""Packet views: the connection a packet belongs to, and the packet's decoded fields.

Everything is read with the capture code of :mod:`backline.analyzers.net`
(no second parser): :class:`~backline.analyzers.net.reader.CaptureReader`
for the records, :func:`~backline.analyzers.net.decode.decode` for link,
IP and transport fields, the :class:`~backline.analyzers.net.tcp.TcpTracker`
for Wireshark's stream numbers and per-frame TCP analysis flags, and the
HTTP, TLS, DNS and SMB2 parsers for the application layer.

The first view of a capture writes a packet index (one Parquet row per
packet: number, time, addresses, ports, flags, conversation, analysis
flags; :func:`build_index`); later views read it with DuckDB.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from backline.analyzers.net.decode import (LINKTYPE_NAMES, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP,
                                           decode, format_addr)
from backline.analyzers.net.dns import DNS_PORTS, DnsTcpParser
from backline.analyzers.net.http import HTTP_PORTS, HttpParser, looks_like_http
from backline.analyzers.net._engine import Feed, decode_tuple
from backline.analyzers.net.capture import EVICT_MASK
from backline.analyzers.net.reader import CaptureReader
from backline.analyzers.net.smb2 import COMMANDS, SMB_PORTS, Smb2Parser, status_name
from backline.analyzers.net.tcp import FLAG_NAMES, TcpTracker
from backline.analyzers.net.tls import ALERT_LEVELS, ALERT_NAMES, TLS_PORTS, TlsParser, looks_like_tls
from backline.errors import StorageError

#: Most packets of one conversation listed around the packet.
MAX_LISTED = 400
_TCP_FLAGS = ((0x01, "FIN"), (0x02, "SYN"), (0x04, "RST"), (0x08, "PSH"), (0x10, "ACK"), (0x20, "URG"))
_PROTO = {PROTO_TCP: "tcp", PROTO_UDP: "udp", PROTO_ICMP: "icmp", PROTO_ICMPV6: "icmpv6"}
_SCHEMA = pa.schema([
    ("number", pa.int64()), ("ts_ns", pa.int64()), ("length", pa.int64()), ("captured", pa.int64()),
    ("proto", pa.int16()), ("src", pa.string()), ("sport", pa.int32()), ("dst", pa.string()),
    ("dport", pa.int32()), ("flags", pa.int16()), ("seglen", pa.int64()), ("family", pa.string()),
    ("conv", pa.int64()), ("analysis", pa.int32()),
])
_BATCH = 65_536
_RETRANS, _FAST, _SPURIOUS, _OOO = 1, 2, 4, 8          # TcpTracker.segment's bits (FLAG_NAMES order)


def tcp_flags(bits: int) -> str:
    """``SYN,ACK`` for the flag bits of a TCP header.

    >>> tcp_flags(0x12)
    'SYN,ACK'
    """
    return ",".join(name for bit, name in _TCP_FLAGS if bits & bit)


def analysis_names(bits: int) -> str:
    """The TCP analysis flags (Wireshark's expert names) set in ``bits``.

    >>> analysis_names(1 | 64)
    'retransmission,duplicate_ack'
    """
    return ",".join(name for i, name in enumerate(FLAG_NAMES) if bits >> i & 1)


def _ts(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, timezone.utc).isoformat()


def build_index(capture: Path, dest: Path, name: str, room: int) -> dict[str, Any]:
    """Write the packet index of ``capture`` to ``dest`` (Parquet; at most ``room`` bytes,
    else :class:`StorageError`).  A packet's conversation is ``(family, conv)``: ``tcp`` and
    Wireshark's ``tcp.stream``; ``udp`` / ``icmp`` / ``icmpv6`` / ``ip`` and a number per
    address (and port) pair; ``-`` for frames without an IP packet.  TCP header flags and the
    per-frame analysis flags are kept as bits.  Returns ``{"packets", "problem"}``."""
    reader = CaptureReader.open(capture, name)
    tracker = TcpTracker()
    segment = tracker.segment
    pairs: dict[tuple, tuple[str, int]] = {}
    families: dict[str, int] = {}
    texts: dict[bytes, str] = {}
    rows: list[tuple] = []
    tmp = dest.with_name(f"{dest.name}.{os.getpid()}-{threading.get_ident()}.part")   # builders never share one
    n = 0

    def addr(raw: bytes) -> str:
        text = texts.get(raw)
        if text is None:
            if len(texts) > 1_000_000:
                texts.clear()
            text = texts[raw] = format_addr(raw)
        return text

    try:
        with pq.ParquetWriter(tmp, _SCHEMA, compression="zstd") as out:
            def flush() -> None:
                if rows:
                    out.write_table(pa.Table.from_arrays([pa.array(c, f.type) for c, f in zip(zip(*rows), _SCHEMA)],
                                                         schema=_SCHEMA))
                    rows.clear()
                if tmp.stat().st_size > room:
                    raise StorageError(f"the packet index of {name} would pass the room left for this "
                                       f"evidence's derived data ({room} bytes)")

            for num, ts, lt, data, orig in reader.packets():
                n = num
                if not num & EVICT_MASK:           # retire closed connections as the analysis does
                    tracker.evict(ts)
                    if not num & 0xFFFFF:
                        tracker.sweep_idle(ts)
                d = decode_tuple(lt, data, orig)
                if d is None:
                    rows.append((num, ts, orig, len(data), 0, "", 0, "", 0, 0, 0, "-", 0, 0))
                    continue
                src, dst, proto, sport, dport, seq, ack, flags, win, seglen, _p, wscale, frag, _v = d
                if proto == PROTO_TCP and not frag:
                    bits = segment(num, ts, src, sport, dst, dport, seq, ack, flags, win, seglen, wscale)
                    rows.append((num, ts, orig, len(data), proto, addr(src), sport, addr(dst), dport, flags,
                                 seglen, "tcp", tracker.last_conn.stream, bits))
                else:
                    key = (proto, src, sport, dst, dport) if (src, sport) <= (dst, dport) else \
                        (proto, dst, dport, src, sport)
                    conv = pairs.get(key)
                    if conv is None:
                        family = _PROTO.get(proto, "ip") if proto != PROTO_TCP else "ip"
                        families[family] = families.get(family, -1) + 1
                        conv = pairs[key] = (family, families[family])
                    rows.append((num, ts, orig, len(data), proto, addr(src), sport, addr(dst), dport, 0, seglen,
                                 conv[0], conv[1], 0))
                if len(rows) >= _BATCH:
                    flush()
            flush()
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return {"packets": n, "problem": str(reader.problem) if reader.problem else None}


def conversation(index: Path, number: int, around: int = MAX_LISTED // 2) -> dict[str, Any]:
    """The conversation of packet ``number``: its packets (up to ``around`` each side of it)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone='UTC'")
        con.read_parquet(str(index)).create_view("records")     # the packet index (not log records)
        return _conversation(con, number, around)
    finally:
        con.close()


def _conversation(con, number: int, around: int) -> dict[str, Any]:
    def run(sql: str, args: list) -> list[dict[str, Any]]:
        cur = con.execute(sql, args)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    hit = run("SELECT * FROM records WHERE number = ?", [number])
    if not hit:
        return {"packet": None, "conv": None, "packets": [], "count": 0}
    me = hit[0]
    if me["family"] == "-":
        row = _row(me, number)
        row["rel_s"] = 0.0
        del row["_ts"]
        return {"packet": row, "conv": None, "packets": [row], "count": 1, "before_count": 0}
    same = "family = ? AND conv = ?"
    key = [me["family"], me["conv"]]
    before = run(f"SELECT * FROM records WHERE {same} AND number < ? ORDER BY number DESC LIMIT ?",
                 [*key, number, around])
    after = run(f"SELECT * FROM records WHERE {same} AND number > ? ORDER BY number LIMIT ?", [*key, number, around])
    stats = run("SELECT count(*) AS n, min(ts_ns) AS first, max(ts_ns) AS last, sum(length) AS bytes, "
                f"count(*) FILTER (WHERE number < ?) AS before_count FROM records WHERE {same}",
                [number, *key])[0]
    rows = [_row(r, number) for r in [*reversed(before), me, *after]]
    t0 = stats["first"]
    for r in rows:
        r["rel_s"] = round((r.pop("_ts") - t0) / 1e9, 6)
    ends = sorted([(me["src"], me["sport"]), (me["dst"], me["dport"])])
    return {"packet": next(r for r in rows if r["this"]), "conv": f"{me['family']}:{me['conv']}",
            "packets": rows, "count": stats["n"], "before_count": stats["before_count"],
            "bytes": stats["bytes"], "first": _ts(stats["first"]), "last": _ts(stats["last"]),
            "endpoints": [f"{a}:{p}" if p else a for a, p in ends], "proto": _PROTO.get(me["proto"], str(me["proto"]))}


def _row(r: dict[str, Any], number: int) -> dict[str, Any]:
    return {"number": r["number"], "time": _ts(r["ts_ns"]), "_ts": r["ts_ns"], "length": r["length"],
            "proto": _PROTO.get(r["proto"], str(r["proto"])) if r["proto"] else "", "src": r["src"],
            "sport": r["sport"], "dst": r["dst"], "dport": r["dport"], "flags": tcp_flags(r["flags"]),
            "seglen": r["seglen"], "analysis": analysis_names(r["analysis"]), "this": r["number"] == number}


def packet_fields(capture: Path, number: int, name: str, replay: Sequence[int] = (),
                  partial: bool = False) -> dict[str, Any] | None:
    """The decoded fields of packet ``number`` (None when the capture has fewer packets).

    ``replay``: the earlier packets of its connection, fed to the application parsers
    first, so a message that began in an earlier segment is read whole (``partial``:
    the connection began before the first of them; the parsers resynchronise).
    """
    wanted = set(replay)
    apps = AppReplay(number, partial)
    reader = CaptureReader.open(capture, name)
    for num, ts, lt, data, orig in reader.packets():
        if num < number:
            if num in wanted:
                d = decode(lt, data, orig)
                if d is not None:
                    apps.feed(num, ts, d)
            continue
        if num > number:
            break
        out: dict[str, Any] = {"number": num, "time": _ts(ts), "frame": {
            "link_type": f"{LINKTYPE_NAMES.get(lt, 'unknown')} ({lt})", "length": orig, "captured": len(data)}}
        d = decode(lt, data, orig)
        if d is None:
            out["note"] = "no IPv4/IPv6 packet in this frame (or a link type the capture code does not read)"
            return out
        out["frame"]["vlan"] = bool(d.vlan)
        out["ip"] = {"version": 4 if len(d.src) == 4 else 6, "src": format_addr(d.src), "dst": format_addr(d.dst),
                     "protocol": _PROTO.get(d.proto, str(d.proto)), "fragment": bool(d.fragment)}
        if d.proto == PROTO_TCP:
            out["tcp"] = {"src_port": d.sport, "dst_port": d.dport, "seq": d.seq, "ack": d.ack,
                          "flags": tcp_flags(d.flags), "window": d.win, "segment_length": d.seglen,
                          "captured_payload": len(d.payload),
                          "window_scale": d.wscale if d.wscale >= 0 else None}
        elif d.proto == PROTO_UDP:
            out["udp"] = {"src_port": d.sport, "dst_port": d.dport, "length": d.seglen,
                          "captured_payload": len(d.payload)}
        apps.feed(num, ts, d)
        if apps.got:
            out["application"] = apps.got
        return out
    return None


class AppReplay:
    """The capture code's application parsers over one connection's segments, in capture
    order, one parser per direction; keeps what they report for packet ``number`` (every
    packet when ``number`` is None), each message with its ``frame``."""

    def __init__(self, number: int | None, partial: bool = False):
        self.number = number
        self.partial = partial
        self.got: list[dict[str, Any]] = []
        self.parsers: dict[tuple, Any] = {}
        self.tracker = TcpTracker()

    def _keep(self, kind: str, fields: tuple[str, ...]) -> Callable[..., None]:
        def on(frame: int, _ts: int, *values: Any) -> None:
            if self.number in (None, frame):
                self.got.append({"protocol": kind, **dict(zip(fields, values)), "frame": frame})
        return on

    def _smb(self, frame: int, _ts: int, command: int, is_resp: bool, status: int, mid: int) -> None:
        if self.number in (None, frame):
            self.got.append({"protocol": "SMB2 " + ("response" if is_resp else "request"),
                             "command": COMMANDS[command] if 0 <= command < len(COMMANDS) else str(command),
                             "status": status_name(status) if is_resp else None, "message_id": mid,
                             "frame": frame})

    def _tls_alert(self, frame: int, _ts: int, level: int, desc: int) -> None:
        if self.number in (None, frame):
            self.got.append({"protocol": "TLS alert", "level": ALERT_LEVELS.get(level, str(level)),
                             "description": ALERT_NAMES.get(desc, str(desc)), "frame": frame})

    def _parser(self, d) -> Any:
        ports = {d.sport, d.dport}
        if d.proto == PROTO_UDP:
            return None
        if ports & SMB_PORTS:
            return Smb2Parser(self._smb)
        if 53 in ports:
            return DnsTcpParser(lambda frame, ts, msg: self._dns(frame, msg))
        if ports & HTTP_PORTS or looks_like_http(d.payload):
            return HttpParser(self._keep("HTTP request", ("method", "path", "host")),
                              self._keep("HTTP response", ("status",)))
        if ports & TLS_PORTS or looks_like_tls(d.payload):
            return TlsParser(self._tls_alert, self._keep("TLS ClientHello", ("server_name", "version")))
        return None

    def feed(self, num: int, ts: int, d) -> None:
        if d.proto == PROTO_UDP:
            if {d.sport, d.dport} & DNS_PORTS and len(d.payload) >= 12:
                self._dns(num, d.payload)
            return
        if d.proto != PROTO_TCP or d.fragment:
            return
        # as the capture analysis feeds its parsers: in sequence order through a Feed, with
        # Wireshark's per-frame analysis deciding what a retransmission may fill
        af = self.tracker.segment(num, ts, d.src, d.sport, d.dst, d.dport, d.seq, d.ack, d.flags, d.win,
                                  d.seglen, d.wscale)
        plen = len(d.payload)
        if not d.seglen or not plen or ((af & _SPURIOUS) if plen >= d.seglen else (af & _RETRANS and not af & _SPURIOUS)):
            return
        key = (d.src, d.sport, d.dst, d.dport)
        if key not in self.parsers:
            p = self.parsers[key] = self._parser(d)
            if p is not None and self.partial:
                p.gap()
            self.parsers[key] = Feed(p) if p is not None else None
        feed = self.parsers[key]
        if feed is not None:
            feed.late = 0 if af & _FAST else (2 if af & _RETRANS else (1 if af & _OOO else 0))
            feed.segment(num, ts, d.seq, d.payload, 0, d.seglen)

    def _dns(self, frame: int, msg: bytes) -> None:
        if self.number not in (None, frame):
            return
        from backline.analyzers.net._engine import RCODE_NAMES, qname

        flags = int.from_bytes(msg[2:4], "big")
        response = bool(flags & 0x8000)
        name = qname(msg)[0] if int.from_bytes(msg[4:6], "big") else ""
        out: dict[str, Any] = {"protocol": "DNS " + ("response" if response else "query"),
                               "id": int.from_bytes(msg[0:2], "big"), "name": name, "frame": frame}
        if response:
            out["rcode"] = RCODE_NAMES.get(flags & 0xF, str(flags & 0xF))
        self.got.append(out)
