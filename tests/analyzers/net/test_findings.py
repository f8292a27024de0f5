"""Findings point at the right frames, on real captures and on built ones."""

from __future__ import annotations

import io

from backline.analyzers.net.capture import analyze_capture, analyze_reader
from backline.analyzers.net.findings import Thresholds, build_findings
from backline.analyzers.net.reader import CaptureReader
from backline.analyzers.net.synth import (A, ACK_F, B, FIN_F, PSH_F, RST_F, SYN_F, PcapWriter,
                                          dns_query, dns_response, ether, ipv4, tcp, udp)
from backline.model import Severity

MS = 1_000_000
T0 = 1_600_000_000 * 1_000_000_000


def _codes(findings):
    return sorted({f.code for f in findings})


def _run(path_or_bytes, th=None):
    if isinstance(path_or_bytes, bytes):
        st = analyze_reader(CaptureReader.from_bytes(path_or_bytes, "built.pcap"))
    else:
        st = analyze_capture(path_or_bytes)
    return st, build_findings(st, "cap", th=th)


def _locs(f):
    return [r.locator for r in f.evidence]


class Cap:
    """A little traffic builder: TCP sessions between A (client) and B (server)."""

    def __init__(self):
        self.f = io.BytesIO()
        self.w = PcapWriter(self.f)
        self.t = T0
        self.n = 0

    def pkt(self, src, dst, l4, proto=6, dt=MS):
        self.t += dt
        self.n += 1
        self.w.write(self.t, ether(ipv4(src, dst, l4, proto=proto)))
        return self.n

    def c(self, sport, dport, seq, ack, flags, payload=b"", win=65535, dt=MS):
        return self.pkt(A, B, tcp(sport, dport, seq, ack, flags, win, payload), dt=dt)

    def s(self, sport, dport, seq, ack, flags, payload=b"", win=65535, dt=MS):
        return self.pkt(B, A, tcp(dport, sport, seq, ack, flags, win, payload), dt=dt)

    def handshake(self, sport, dport):
        self.c(sport, dport, 100, 0, SYN_F)
        self.s(sport, dport, 500, 101, SYN_F | ACK_F)
        self.c(sport, dport, 101, 501, ACK_F)

    def bytes(self):
        return self.f.getvalue()


def test_refused_connection_from_corpus(corpus):
    st, (findings, events) = _run(corpus / "net" / "cs_tcp_refuseconnection.pcapng")
    (f,) = [f for f in findings if f.code == "NET.TCP.RST_TO_SYN"]
    assert _locs(f) == ["packet:1", "packet:2"]
    assert f.severity == Severity.HIGH and f.count == 1
    assert f.data["server"] == "192.168.100.1:80"          # tshark: 3372 -> 80 [SYN], RST back
    assert [c.state() for c in st.tcp.conns] == ["REJ"]
    assert {e.ref.locator for e in events if e.kind == "net.tcp.rst_to_syn"} == {"packet:1", "packet:2"}


def test_zero_window_stall_from_corpus(corpus):
    st, (findings, _) = _run(corpus / "net" / "cs_tcp_zerowindowdead.pcapng")
    (f,) = [f for f in findings if f.code == "NET.TCP.ZERO_WINDOW_STALL"]
    assert f.count == 4                         # the oracle's zero_window count
    assert f.data["duration_s"] > 20 and not f.data["reopened"]


def test_dns_failures_from_corpus(corpus):
    _, (nx, _) = _run(corpus / "net" / "cs_dns_query_nonexistent.pcapng")
    (f,) = [f for f in nx if f.code == "NET.DNS.NXDOMAIN"]
    assert _locs(f) == ["packet:2"]
    _, (sf, _) = _run(corpus / "net" / "cs_stranded_branchdns.pcapng")
    assert [f.code for f in sf if f.code.startswith("NET.DNS")] == ["NET.DNS.SERVFAIL"]


def test_tls_alerts_from_corpus(corpus):
    _, (fs, _) = _run(corpus / "net" / "zeek_tls12_handshake_failure.pcap")
    (f,) = [f for f in fs if f.code == "NET.TLS.ALERT"]
    assert f.data["description"] == "handshake_failure" and f.data["level"] == "fatal"
    _, (fs2, _) = _run(corpus / "net" / "zeek_tls13draft16_ff52_unknown_ca.pcap")
    assert [f.data["description"] for f in fs2 if f.code == "NET.TLS.ALERT"] == ["unknown_ca"]


def test_smb2_normal_statuses_are_not_failures(corpus):
    st, (fs, _) = _run(corpus / "net" / "msod_FASOD_ex2_smb2_domain.pcapng")
    smb = [f for f in fs if f.code == "NET.SMB2.ERROR"]
    names = {f.data["status_name"] for f in smb}
    assert "STATUS_OBJECT_NAME_NOT_FOUND" in names and "STATUS_ACCESS_DENIED" in names
    assert not names & {"STATUS_PENDING", "STATUS_MORE_PROCESSING_REQUIRED",
                        "STATUS_NO_MORE_FILES", "STATUS_CANCELLED"}
    # the 26 s CHANGE_NOTIFY long polls are not a slow server
    assert "NET.SMB2.SLOW" not in _codes(fs)
    assert st.smb2_error_status["0xc0000120"] == 3      # but they are counted like tshark


def test_truncated_capture_finding(corpus):
    _, (fs, _) = _run(corpus / "net" / "derived_zeek_tcp_reassembly_truncated.pcap")
    (f,) = [f for f in fs if f.code == "NET.CAPTURE.TRUNCATED"]
    assert _locs(f) == ["packet:82"] and "record:83" in f.detail


def test_syn_unanswered_and_midstream_reset_and_retransmissions():
    c = Cap()
    for i in range(3):                                   # SYN + 2 retries, never answered
        c.c(5000, 8443, 1, 0, SYN_F, dt=1000 * MS)
    c.handshake(5001, 80)
    seq = 101
    for i in range(10):
        c.c(5001, 80, seq, 501, PSH_F | ACK_F, b"x" * 100)
        if i % 3 == 0:                                   # retransmitted after an RTO
            c.c(5001, 80, seq, 501, PSH_F | ACK_F, b"x" * 100, dt=300 * MS)
        seq += 100
        c.s(5001, 80, 501, seq, ACK_F)
    rst = c.s(5001, 80, 501, seq, RST_F | ACK_F)
    st, (fs, events) = _run(c.bytes())
    by = {f.code: f for f in fs}
    assert by["NET.TCP.SYN_UNANSWERED"].evidence[0].locator == "packet:1"
    assert by["NET.TCP.RST_MIDSTREAM"].data["sender_role"] == "server"
    assert _locs(by["NET.TCP.RST_MIDSTREAM"]) == [f"packet:{rst}"]
    rr = by["NET.TCP.RETRANS_RATE"]
    assert rr.count == 4 and rr.data["retransmissions"] == 4
    assert st.tcp.flag_counts()["retransmission"] == 4 + 2    # + the 2 SYN retries
    _, (strict, _) = _run(c.bytes(), Thresholds(retrans_rate=0.5))
    assert "NET.TCP.RETRANS_RATE" not in _codes(strict)


def test_http_errors_and_slow_server():
    c = Cap()
    c.handshake(6000, 80)
    seq, sseq = 101, 501
    statuses = [200, 404, 500, 500, 200]
    for i, status in enumerate(statuses):
        req = f"GET /api/item?id={i} HTTP/1.1\r\nHost: shop\r\n\r\n".encode()
        c.c(6000, 80, seq, sseq, PSH_F | ACK_F, req)
        seq += len(req)
        body = b"{}"
        resp = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
        c.s(6000, 80, sseq, seq, PSH_F | ACK_F, resp, dt=(3000 if i == 2 else 20) * MS)
        sseq += len(resp)
    st, (fs, _) = _run(c.bytes())
    assert st.http_request_frames == 5
    assert st.http_status == {"200": 2, "404": 1, "500": 2}
    five = [f for f in fs if f.code == "NET.HTTP.5XX"]
    assert len(five) == 1 and five[0].count == 2 and five[0].data["path"] == "/api/item"
    assert [f.data["status"] for f in fs if f.code == "NET.HTTP.4XX"] == [404]
    (slow,) = [f for f in fs if f.code == "NET.HTTP.SLOW"]
    assert abs(slow.data["max_s"] - 3.0) < 0.01 and slow.data["p50_s"] < 0.1


def test_dns_unanswered_by_name_and_matching():
    c = Cap()
    q1 = dns_query(0x1111, "db.internal")
    q2 = dns_query(0x2222, "ok.internal")
    c.pkt(A, B, udp(40000, 53, q1), proto=17)
    c.pkt(A, B, udp(40000, 53, q1), proto=17, dt=1000 * MS)     # retry, never answered
    c.pkt(A, B, udp(40001, 53, q2), proto=17)
    c.pkt(B, A, udp(53, 40001, dns_response(q2)), proto=17)
    st, (fs, _) = _run(c.bytes())
    assert (st.dns.queries, st.dns.unanswered(), st.dns.rcodes) == (3, 2, {"NoError": 1})
    (un,) = [f for f in fs if f.code == "NET.DNS.UNANSWERED"]
    assert un.data["name"] == "db.internal" and _locs(un) == ["packet:1", "packet:2"]


def test_unsupported_link_type_is_counted_not_fatal():
    f = io.BytesIO()
    w = PcapWriter(f, linktype=147)
    w.write(T0, b"\x01\x02\x03")
    st = analyze_reader(CaptureReader.from_bytes(f.getvalue(), "odd.pcap"))
    assert st.packets == 1 and st.unsupported_linktype_frames == 1
    assert any("unsupported link type" in w for w in st.warnings)


def test_fin_close_is_sf_state():
    c = Cap()
    c.handshake(7000, 22)
    c.c(7000, 22, 101, 501, FIN_F | ACK_F)
    c.s(7000, 22, 501, 102, FIN_F | ACK_F)
    c.c(7000, 22, 102, 502, ACK_F)
    st, (fs, _) = _run(c.bytes())
    (conn,) = st.tcp.conns
    assert conn.state() == "SF" and fs == []
    assert conn.handshake_rtt == MS


def test_many_names_are_capped_with_one_summary_finding():
    c = Cap()
    for i in range(60):                                   # 60 different names, NXDOMAIN each
        q = dns_query(i, f"host{i}.corp")
        c.pkt(A, B, udp(30000 + i, 53, q), proto=17)
        c.pkt(B, A, udp(53, 30000 + i, dns_response(q, 3)), proto=17)
    st, (fs, _) = _run(c.bytes())
    nx = [f for f in fs if f.code == "NET.DNS.NXDOMAIN"]
    assert len(nx) == 51
    (rest,) = [f for f in nx if "other_names" in f.data]
    assert rest.data["other_names"] == 10 and rest.count == 10
    assert sum(f.count for f in nx) == st.dns.rcodes["NXDomain"] == 60
