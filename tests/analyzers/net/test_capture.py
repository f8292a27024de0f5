"""The one-pass engine: retiring closed connections keeps Wireshark's stream numbering.

Expected values are tshark 4.0.17's for the same packets: the late FIN
retransmission (10 s after the close) and its ACK stay in stream 0 and are
flagged retransmission and duplicate ACK; the SYN reusing the ports 20 s later
starts stream 1 and is flagged reused_ports; the late RST stays in stream 1.
"""

from __future__ import annotations

import io

import pytest

import backline.analyzers.net.capture as capture
from backline.analyzers.net.capture import analyze_reader
from backline.analyzers.net.reader import CaptureReader
from backline.analyzers.net.summary import oracle_counts
from backline.analyzers.net.synth import (A, ACK_F, B, FIN_F, RST_F, SYN_F, PcapWriter, ether,
                                          ipv4, tcp)

S = 10**9


def build():
    f = io.BytesIO()
    w = PcapWriter(f)
    t = [10**18]

    def c(seq, ack, fl, dt=1_000_000):
        t[0] += dt
        w.write(t[0], ether(ipv4(A, B, tcp(5555, 80, seq, ack, fl, 65535))))

    def s(seq, ack, fl, dt=1_000_000):
        t[0] += dt
        w.write(t[0], ether(ipv4(B, A, tcp(80, 5555, seq, ack, fl, 65535))))

    c(1000, 0, SYN_F)
    s(5000, 1001, SYN_F | ACK_F)
    c(1001, 5001, ACK_F)
    c(1001, 5001, FIN_F | ACK_F)
    s(5001, 1002, FIN_F | ACK_F)
    c(1002, 5002, ACK_F)
    s(5001, 1002, FIN_F | ACK_F, dt=10 * S)          # 7: late FIN retransmission, 10 s later
    c(1002, 5002, ACK_F)                             # 8
    c(9000, 0, SYN_F, dt=20 * S)                     # 9: the ports reused 20 s later
    s(7000, 9001, SYN_F | ACK_F)
    c(9001, 7001, ACK_F)
    c(9001, 7001, RST_F | ACK_F)                     # 12
    c(9001, 7001, RST_F | ACK_F, dt=30 * S)          # 13: late RST, 30 s later
    return f.getvalue()

@pytest.mark.parametrize("evict_mask", [0, 0xFFF])
def test_late_packets_continue_their_stream(monkeypatch, evict_mask):
    monkeypatch.setattr(capture, "EVICT_MASK", evict_mask)
    st = analyze_reader(CaptureReader.from_bytes(build(), "late.pcap"))
    counts = oracle_counts(st)
    # tshark -z conv,tcp lists the reused address/port pair twice (one row per tcp.stream)
    assert (counts["tcp_streams"], counts["tcp_conversations"]) == (2, 2)
    flags = {k: v for k, v in counts["tcp_analysis"].items() if v}
    assert flags == {"retransmission": 1, "duplicate_ack": 1, "reused_ports": 1}
    assert st.tcp.state_counts() == {"RSTO": 1, "SF": 1}
    assert [(c.stream, c.state()) for c in st.tcp.conns] == [(0, "SF"), (1, "RSTO")]
    if evict_mask == 0:
        assert len(st.tcp.table) == 1        # stream 0 was retired, brought back, retired


def test_retired_connections_leave_the_live_table(monkeypatch):
    monkeypatch.setattr(capture, "EVICT_MASK", 0)
    f = io.BytesIO()
    w = PcapWriter(f)
    t = 10**18
    for i in range(50):                     # 50 short connections, 1 s apart
        sp = 10_000 + i
        for src, dst, a, b, seq, ack, fl in ((A, B, sp, 80, 1, 0, SYN_F),
                                             (B, A, 80, sp, 9, 2, SYN_F | ACK_F),
                                             (A, B, sp, 80, 2, 10, RST_F | ACK_F)):
            t += S // 3
            w.write(t, ether(ipv4(src, dst, tcp(a, b, seq, ack, fl))))
    st = analyze_reader(CaptureReader.from_bytes(f.getvalue(), "many.pcap"))
    assert st.tcp.n_streams == 50 and st.tcp.state_counts() == {"RSTO": 50}
    assert len(st.tcp.table) <= 6           # only those within the 5 s grace are live


@pytest.mark.parametrize("linktype", [1, 101, 113, 276, 0])
def test_mutated_frames_never_crash(corpus, linktype):
    import random
    rnd = random.Random(linktype)
    frames = [bytes(d) for _, _, _, d, _ in
              CaptureReader.open(corpus / "net" / "zeek_tcp_reassembly.pcap").packets()]
    f = io.BytesIO()
    w = PcapWriter(f, linktype=linktype)
    n = 0
    for i in range(3000):
        fr = bytearray(rnd.choice(frames))
        if linktype != 1:
            fr = fr[14:] if linktype in (101, 0) else bytearray(20) + fr[14:]
        for _ in range(rnd.randint(0, 6)):
            if fr:
                fr[rnd.randrange(len(fr))] = rnd.getrandbits(8)
        if rnd.random() < 0.3:
            fr = fr[:rnd.randint(0, len(fr))]
        w.write(10**18 + i * 1000, bytes(fr), orig_len=len(fr) + rnd.choice((0, 0, 7)))
        n += 1
    st = analyze_reader(CaptureReader.from_bytes(f.getvalue(), "fuzz.pcap"))
    assert st.packets == n and st.problem is None


def test_the_pass_restores_the_garbage_collector_state(corpus):
    """The cyclic collector is paused only during the pass, also when it raises."""
    import gc

    from backline.analyzers.net.capture import analyze_capture
    path = corpus / "net" / "cs_tcp_dupack.pcapng"
    assert gc.isenabled()
    s = analyze_capture(path)
    assert gc.isenabled() and s.packets > 0
    gc.disable()
    try:
        analyze_capture(path)
        assert not gc.isenabled()
    finally:
        gc.enable()
