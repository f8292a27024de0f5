"""Per-frame TCP analysis flags on a built conversation that exercises every flag.

The expected flags per frame are what tshark 4.0.17 reports for the same
packets (``tcp.analysis.*`` expert items), checked when this test was written.
"""

from __future__ import annotations

import io

from backline.analyzers.net.capture import analyze_reader
from backline.analyzers.net.decode import decode
from backline.analyzers.net.reader import CaptureReader
from backline.analyzers.net.synth import (A, ACK_F, B, FIN_F, PSH_F, SYN_F, PcapWriter, ether,
                                          ipv4, tcp)
from backline.analyzers.net.tcp import FLAG_NAMES, TcpTracker

MS = 1_000_000

EXPECTED = {
    7: {"window_full"},
    8: {"zero_window"},
    9: {"zero_window_probe"},
    10: {"zero_window", "zero_window_probe_ack"},
    11: {"window_update"},
    12: {"keep_alive"},
    13: {"keep_alive_ack"},
    15: {"lost_segment"},
    17: {"duplicate_ack"},
    18: {"duplicate_ack"},
    19: {"fast_retransmission", "retransmission"},
    21: {"spurious_retransmission", "retransmission"},
    22: {"lost_segment"},
    23: {"out_of_order"},
}


def build():
    f = io.BytesIO()
    w = PcapWriter(f)
    t = [10**18]
    def c(seq, ack, fl, win=65535, pl=b"", dt=MS):      # client -> server
        t[0] += dt
        w.write(t[0], ether(ipv4(A, B, tcp(5555, 80, seq, ack, fl, win, pl))))

    def s(seq, ack, fl, win=65535, pl=b"", dt=MS):      # server -> client
        t[0] += dt
        w.write(t[0], ether(ipv4(B, A, tcp(80, 5555, seq, ack, fl, win, pl))))

    # frame numbers on the right; handshake without window scaling
    c(1000, 0, SYN_F, 8192)                                                          #1
    s(5000,1001,SYN_F|ACK_F, 8192)                                                    #2
    c(1001,5001,ACK_F, 8192)                                                          #3
    c(1001,5001,PSH_F|ACK_F, 8192, b"a"*100)                                          #4
    s(5001,1101,ACK_F, 200)                                                           #5 server window 200
    c(1101,5001,PSH_F|ACK_F, 8192, b"b"*100)                                          #6
    c(1201,5001,PSH_F|ACK_F, 8192, b"c"*100, dt=100_000)                              #7 fills window: 1101+200=1301 -> window full
    s(5001,1301,ACK_F, 0)                                                             #8 zero window
    c(1301,5001,ACK_F, 8192, b"d", dt=200*MS)                                         #9 zero window probe
    s(5001,1301,ACK_F, 0)                                                             #10 zero window probe ack
    s(5001,1301,ACK_F, 4000, dt=500*MS)                                               #11 window update
    c(1300,5001,ACK_F, 8192, dt=5000*MS)                                              #12 keep-alive
    s(5001,1301,ACK_F, 4000)                                                          #13 keep-alive ack
    c(1301,5001,PSH_F|ACK_F, 8192, b"e"*100, dt=10*MS)                                #14
    c(1501,5001,PSH_F|ACK_F, 8192, b"g"*100, dt=1*MS)                                 #15 lost segment (1401 missing)
    s(5001,1401,ACK_F, 4000)                                                          #16
    s(5001,1401,ACK_F, 4000)                                                          #17 dup ack
    s(5001,1401,ACK_F, 4000)                                                          #18 dup ack
    c(1401,5001,PSH_F|ACK_F, 8192, b"f"*100, dt=1*MS)                                 #19 fast retrans
    s(5001,1601,ACK_F, 4000)                                                          #20
    c(1401,5001,PSH_F|ACK_F, 8192, b"f"*100, dt=300*MS)                               #21 spurious retrans
    c(1701,5001,PSH_F|ACK_F, 8192, b"i"*100, dt=1*MS)                                 #22 lost (1601 missing)
    c(1601,5001,PSH_F|ACK_F, 8192, b"h"*100, dt=MS//2)                                #23 out of order
    s(5001,1801,FIN_F|ACK_F, 4000)                                                    #24
    c(1801,5002,FIN_F|ACK_F, 8192)                                                    #25
    s(5002,1802,ACK_F, 4000)                                                          #26
    return f.getvalue()

def test_every_flag_on_the_right_frame():
    reader = CaptureReader.from_bytes(build(), "flags.pcap")
    tracker = TcpTracker()
    got = {}
    for n, ts, lt, data, orig in reader.packets():
        d = decode(lt, data, orig)
        af = tracker.segment(n, ts, d.src, d.sport, d.dst, d.dport, d.seq, d.ack, d.flags,
                             d.win, d.seglen, d.wscale)
        if af:
            got[n] = {FLAG_NAMES[i] for i in range(len(FLAG_NAMES)) if af >> i & 1}
    assert got == EXPECTED


def test_connection_summary():
    st = analyze_reader(CaptureReader.from_bytes(build(), "flags.pcap"))
    (c,) = st.tcp.conns
    assert c.state() == "SF"
    assert c.handshake_rtt == MS and c.first_rtt == 2 * MS
    assert c.retrans == 2 and st.tcp.n_streams == 1 and st.tcp.conversations == 1
    (run, *_rest) = st.zero_windows
    assert (run.first_frame, run.last_frame, run.packets) == (8, 10, 2)
    assert run.end_ts - run.first_ts == 701 * MS


def test_tombstones_beyond_the_limit_drop_the_oldest_first():
    """Retired connections leave tombstones; past ``tomb_max`` the oldest go first,
    also after a late packet has revived (and so removed) one of them."""
    from backline.analyzers.net.tcp import ACK, RST, SYN, TcpTracker, split_key

    t = TcpTracker(grace_ns=1)
    t.tomb_max = 3
    a, b = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    frame = 0

    def refused(port, ts):
        nonlocal frame
        frame += 2
        t.segment(frame - 1, ts, a, port, b, 80, 100, 0, SYN, 8192, 0, -1)
        t.segment(frame, ts, b, 80, a, port, 0, 101, ACK | RST, 0, 0, -1)

    for i, port in enumerate((1001, 1002, 1003)):
        refused(port, i * 10)
    t.evict(100)
    assert [split_key(k)[1] for k in t.tombs] == [1001, 1002, 1003]
    # a late RST of 1001 revives its stream (its tombstone is taken back) ...
    frame += 1
    t.segment(frame, 101, b, 80, a, 1001, 0, 101, ACK | RST, 0, 0, -1)
    assert [split_key(k)[1] for k in t.tombs] == [1002, 1003]
    assert t.n_streams == 3
    # ... and retires again: it is now the newest; two more push out 1002 and 1003
    refused(1004, 200)
    refused(1005, 200)
    t.evict(300)
    assert [split_key(k)[1] for k in t.tombs] == [1001, 1004, 1005]


def test_connection_index_survives_churn():
    """The tracker finds connections through a C hash index kept beside ``table``; with
    thousands of connections opened, reset, retired and reopened in random order every
    segment must land on the stream a plain dict says it belongs to."""
    import random

    from backline.analyzers.net.tcp import ACK, RST, SYN, TcpTracker

    rnd = random.Random(7)
    t = TcpTracker(grace_ns=1)
    t.tomb_max = 0                       # no tombstones: a reused key is a new stream
    live: dict[tuple, int] = {}          # (client, port) -> stream number expected
    streams = 0
    frame = 0
    ts = 0
    for _ in range(30_000):
        frame += 1
        ts += 10
        ip = bytes([10, 0, rnd.randrange(4), rnd.randrange(256)])
        port = rnd.randrange(1024, 1100)
        k = (ip, port)
        srv = bytes([10, 9, 9, 9])
        if k not in live:                             # a new ISN: a new stream even before
            t.segment(frame, ts, ip, port, srv, 80, rnd.randrange(1 << 32), 0, SYN, 8192, 0, -1)
            assert t.last_conn.stream == streams      # the reset one was retired
            live[k] = streams
            streams += 1
        elif rnd.random() < 0.2:                      # reset: retired at the next eviction
            t.segment(frame, ts, srv, 80, ip, port, 0, 1001, ACK | RST, 0, 0, -1)
            assert t.last_conn.stream == live.pop(k)
        else:
            t.segment(frame, ts, ip, port, srv, 80, 0, 1, ACK, 8192, 0, -1)
            assert t.last_conn.stream == live[k]
        if frame % 97 == 0:
            t.evict(ts + 5)
    t.evict(ts + 5)
    assert t.n_streams == streams
    assert len(t.table) == len(live)
    assert sorted(c.stream for c in t.table.values()) == sorted(live.values())
