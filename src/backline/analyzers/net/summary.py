"""The JSON document of ``backline net`` and the analyzer's facts.

The top-level keys shared with the corpus oracles (``packets``,
``tcp_analysis``, ``rst_frames``, ``syn_frames``, ``synack_frames``,
``tcp_streams``, ``tcp_conversations``, ``dns_queries``, ``dns_rcodes``,
``dns_unanswered``, ``http_requests``, ``http_status``, ``tls_alerts``,
``smb2_error_status``) mean exactly what ``oracle.sh`` counts.
"""

from __future__ import annotations

from typing import Any

from backline.analyzers.net.capture import CaptureStats
from backline.analyzers.net.decode import LINKTYPE_NAMES, format_addr
from backline.analyzers.net.findings import percentile, ts_dt
from backline.model import SCHEMA_VERSION, Finding

ORACLE_KEYS = ("packets", "tcp_analysis", "rst_frames", "syn_frames", "synack_frames",
               "tcp_streams", "tcp_conversations", "dns_queries", "dns_rcodes", "dns_unanswered",
               "http_requests", "http_status", "tls_alerts", "smb2_error_status")

#: Wireshark's expert severity of each analysis flag (for the expert summary).
EXPERT_SEVERITY = {
    "retransmission": "note", "fast_retransmission": "note", "spurious_retransmission": "note",
    "out_of_order": "warn", "lost_segment": "warn", "ack_lost_segment": "warn",
    "duplicate_ack": "note", "zero_window": "warn", "zero_window_probe": "note",
    "zero_window_probe_ack": "note", "window_full": "warn", "window_update": "chat",
    "keep_alive": "note", "keep_alive_ack": "note", "reused_ports": "note",
}


def oracle_counts(st: CaptureStats) -> dict[str, Any]:
    """The counts named like the oracle files' keys."""
    return {
        "packets": st.packets,
        "tcp_analysis": st.tcp.flag_counts(),
        "rst_frames": st.rst_frames,
        "syn_frames": st.syn_frames,
        "synack_frames": st.synack_frames,
        "tcp_streams": st.tcp.n_streams,
        "tcp_conversations": st.tcp.conversations,
        "dns_queries": st.dns.queries,
        "dns_rcodes": dict(st.dns.rcodes),
        "dns_unanswered": st.dns.unanswered(),
        "http_requests": st.http_request_frames,
        "http_status": dict(st.http_status),
        "tls_alerts": dict(st.tls_alert_counts),
        "smb2_error_status": dict(st.smb2_error_status),
    }


def conversations(st: CaptureStats, limit: int = 1000) -> list[dict[str, Any]]:
    """Per TCP stream: endpoints, Zeek state, handshake RTT, bytes/packets each way."""
    rows = []
    conns = st.tcp.conns
    if len(conns) > limit:
        conns = sorted(conns, key=lambda c: -(c.d[0].bytes + c.d[1].bytes))[:limit]
    for c in conns:
        a_orig = c.originator_is_a()
        o, r = (c.d[0], c.d[1]) if a_orig else (c.d[1], c.d[0])
        client, cport, server, sport = (c.a, c.ap, c.b, c.bp) if a_orig else (c.b, c.bp, c.a, c.ap)
        data = c.data_packets
        rows.append({
            "stream": c.stream,
            "client": f"{format_addr(client)}:{cport}",
            "server": f"{format_addr(server)}:{sport}",
            "state": c.state(),
            "first_frame": c.first_frame,
            "start": _iso(c.first_ts),
            "duration_s": round((c.last_ts - c.first_ts) / 1e9, 6),
            "handshake_rtt_ms": round(c.handshake_rtt / 1e6, 3) if c.handshake_rtt else None,
            "packets_c2s": o.packets, "packets_s2c": r.packets,
            "bytes_c2s": o.bytes, "bytes_s2c": r.bytes,
            "retransmissions": c.retrans,
            "retransmission_rate": round(c.retrans / data, 4) if data else 0.0,
        })
    rows.sort(key=lambda x: x["stream"])
    return rows


def expert_summary(st: CaptureStats) -> dict[str, dict[str, int]]:
    """Analysis flags grouped by Wireshark's expert severity (non-zero only)."""
    out: dict[str, dict[str, int]] = {}
    for name, n in st.tcp.flag_counts().items():
        if n:
            out.setdefault(EXPERT_SEVERITY[name], {})[name] = n
    if st.rst_frames:
        out.setdefault("warn", {})["connection_reset"] = st.rst_frames
    return out


def _iso(ns: int) -> str | None:
    dt = ts_dt(ns)
    return dt.isoformat() if dt else None


def _times(values: list[int]) -> dict[str, Any] | None:
    if not values:
        return None
    s = sorted(values)
    return {"n": len(s), "p50_s": percentile(s, 0.5) / 1e9, "p95_s": percentile(s, 0.95) / 1e9,
            "max_s": s[-1] / 1e9}


def build_document(st: CaptureStats, findings: list[Finding], limit: int = 1000) -> dict[str, Any]:
    """The whole ``backline net --json`` document."""
    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "file": st.path,
                           "format": st.format, "compression": st.compression}
    doc.update(oracle_counts(st))
    doc.update({
        "first_ts": _iso(st.first_ts), "last_ts": _iso(st.last_ts),
        "link_types": sorted(LINKTYPE_NAMES.get(lt, str(lt)) for lt in st.linktypes),
        "interfaces": st.interfaces,
        "ipv4_frames": st.ipv4, "ipv6_frames": st.ipv6, "vlan_frames": st.vlan_frames,
        "ip_fragments": st.fragments, "udp_frames": st.udp, "icmp_frames": st.icmp,
        "non_ip_frames": st.non_ip_frames,
        "unsupported_link_type_frames": st.unsupported_linktype_frames,
        "tls_alert_records": st.tls_alert_records,
        "tls_client_hellos": [{"sni": k[0], "version": k[1], "count": v}
                              for k, v in sorted(st.tls_hellos.items())],
        "dns_time": _times(st.dns.times_ns),
        "http_time_by_server": {k: _times(v) for k, v in sorted(st.http_times.items())},
        "smb2_responses": st.smb2_responses,
        "expert": expert_summary(st),
        "tcp_states": _states(st),
        "conversations_total": st.tcp.n_streams,
        "conversations": conversations(st, limit),
        "comments": st.comments,
        "problem": str(st.problem) if st.problem is not None else None,
        "warnings": st.warnings,
        "findings": [_finding(f) for f in findings],
    })
    return doc


def _states(st: CaptureStats) -> dict[str, int]:
    return st.tcp.state_counts()


def _finding(f: Finding) -> dict[str, Any]:
    return {"code": f.code, "title": f.title, "severity": f.severity.label, "count": f.count,
            "detail": f.detail, "first_seen": f.first_seen.isoformat() if f.first_seen else None,
            "last_seen": f.last_seen.isoformat() if f.last_seen else None,
            "evidence": [{"locator": r.locator, "excerpt": r.excerpt} for r in f.evidence],
            "data": dict(f.data)}
