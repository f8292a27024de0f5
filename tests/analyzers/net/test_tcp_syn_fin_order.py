"""SYN/FIN duplicates and a SYN-ACK seen before its SYN, as tshark 4.0.17 analyses them.

Found by ``benchmarks/net_difftest.py`` (a corpus capture merged with itself,
and seeded captures with reordering).  Expected values are tshark 4.0.17's
(``-e frame.number -e tcp.stream -e tcp.analysis.retransmission
-e tcp.analysis.out_of_order -e tcp.analysis.reused_ports``).
"""

from __future__ import annotations

import io

from backline.analyzers.net.decode import decode
from backline.analyzers.net.reader import CaptureReader
from backline.analyzers.net.synth import (A, ACK_F, B, FIN_F, PSH_F, SYN_F, PcapWriter, ether,
                                          ipv4, tcp)
from backline.analyzers.net.tcp import FLAG_NAMES, TcpTracker


def _capture(rows) -> bytes:
    """rows: (from_client, seq, ack, flags, payload, dt_ns)."""
    f = io.BytesIO()
    w = PcapWriter(f)
    t = 10**18
    for from_client, seq, ack, fl, payload, dt in rows:
        t += dt
        src, dst, sp, dp = (A, B, 5555, 80) if from_client else (B, A, 80, 5555)
        w.write(t, ether(ipv4(src, dst, tcp(sp, dp, seq, ack, fl, payload=payload))))
    return f.getvalue()


def _analyse(data: bytes):
    tracker = TcpTracker()
    out = {}
    for n, ts, lt, frame, orig in CaptureReader.from_bytes(data, "t.pcap").packets():
        d = decode(lt, frame, orig)
        af = tracker.segment(n, ts, d.src, d.sport, d.dst, d.dport, d.seq, d.ack, d.flags,
                             d.win, d.seglen, d.wscale)
        out[n] = (tracker.last_conn.stream,
                  {FLAG_NAMES[i] for i in range(len(FLAG_NAMES)) if af >> i & 1})
    return out


def test_a_repeated_syn_or_fin_ending_at_nextseq_is_a_retransmission_not_out_of_order():
    """tshark: frames 2, 4, 8, 10 "[TCP Retransmission]", no out_of_order, all stream 0
    (the duplicates come 0 s after the original, well inside the 3 ms OOO window)."""
    ms = 100_000
    got = _analyse(_capture([
        (1, 1000, 0, SYN_F, b"", ms),                      # 1
        (1, 1000, 0, SYN_F, b"", 0),                       # 2 the same SYN again
        (0, 5000, 1001, SYN_F | ACK_F, b"", ms),           # 3
        (0, 5000, 1001, SYN_F | ACK_F, b"", 0),            # 4
        (1, 1001, 5001, ACK_F, b"", ms),                   # 5
        (1, 1001, 5001, PSH_F | ACK_F, b"x" * 10, ms),     # 6
        (0, 5001, 1011, FIN_F | ACK_F, b"y" * 5, ms),      # 7 FIN with data
        (0, 5001, 1011, FIN_F | ACK_F, b"y" * 5, 0),       # 8
        (1, 1011, 5007, FIN_F | ACK_F, b"", ms),           # 9
        (1, 1011, 5007, FIN_F | ACK_F, b"", 0),            # 10
        (0, 5007, 1012, ACK_F, b"", ms),                   # 11
    ]))
    flagged = {n: f for n, (_s, f) in got.items() if f}
    assert flagged == {2: {"retransmission"}, 4: {"retransmission"}, 8: {"retransmission"},
                       10: {"retransmission"}}
    assert {s for s, _f in got.values()} == {0}


def test_syn_ack_before_its_syn_keeps_one_stream():
    """tshark: SYN-ACK (1) then its SYN (2): one stream, nothing flagged.  A SYN-ACK
    whose SYN was not captured, ACK, FIN, then the SYN with that ISN (4) and the SYN-ACK
    again (5): still one stream, no reused_ports (the client's ISN is the SYN-ACK's
    ack - 1)."""
    ms = 100_000
    got = _analyse(_capture([
        (0, 5000, 1001, SYN_F | ACK_F, b"", ms),           # 1
        (1, 1000, 0, SYN_F, b"", ms),                      # 2
        (1, 1001, 5001, ACK_F, b"", ms),                   # 3
    ]))
    assert got == {1: (0, set()), 2: (0, set()), 3: (0, set())}
    got = _analyse(_capture([
        (0, 7000, 2001, SYN_F | ACK_F, b"", ms),           # 1
        (1, 2001, 7001, ACK_F, b"", ms),                   # 2
        (1, 2001, 7001, FIN_F | ACK_F, b"", 10 * ms),      # 3
        (1, 2000, 0, SYN_F, b"", 10 * ms),                 # 4 (the same ISN)
        (0, 7000, 2001, SYN_F | ACK_F, b"", ms),           # 5
    ]))
    assert {s for s, _f in got.values()} == {0}
    # tshark: "[TCP Out-Of-Order] ... [SYN]" (1 ms after the FIN, before nextseq) and
    # "[TCP Retransmission] ... [SYN, ACK]"
    assert {n: f for n, (_s, f) in got.items() if f} == {4: {"out_of_order"},
                                                          5: {"retransmission"}}
