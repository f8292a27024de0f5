"""TCP sequence analysis with Wireshark's definitions, and per-connection state.

The per-frame flags follow ``tcp_analyze_sequence_number`` in Wireshark's
``epan/dissectors/packet-tcp.c`` (re-implemented here from its documented
rules): a segment that does not advance the sequence number is a fast
retransmission (>= 2 duplicate ACKs, within 20 ms), an out-of-order segment
(within the handshake RTT, or 3 ms), a spurious retransmission (already
ACKed) or a plain retransmission; every fast and spurious retransmission is
also counted as a retransmission, as Wireshark's expert info does.

Connection state uses Zeek's ``conn_state`` vocabulary (S0, REJ, SF, RSTO, ...).

The analysis runs once per packet, so it is compiled: the classes live in
the Cython module :mod:`._engine` and are re-exported here.

>>> t = TcpTracker()
>>> a, b = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
>>> f1 = t.segment(1, 0, a, 1000, b, 80, 100, 0, SYN, 8192, 0, -1)
>>> f2 = t.segment(2, 1_000_000, b, 80, a, 1000, 0, 101, ACK | RST, 0, 0, -1)
>>> t.conns[0].state()
'REJ'
"""

from __future__ import annotations

from backline.analyzers.net._engine import (  # noqa: F401  (the public names of this module)
    A_ACK_LOST, A_DUPACK, A_FAST, A_KA, A_KAA, A_LOST, A_OOO, A_REUSED, A_RETRANS, A_SPURIOUS,
    A_WFULL, A_WUPD, A_ZW, A_ZWP, A_ZWPA, ACK, FIN, FLAG_NAMES, PROBLEM_STATES, PSH, RST, SYN,
    URG, Connection, Direction, TcpTracker, split_key)

__all__ = ["FLAG_NAMES", "PROBLEM_STATES", "Connection", "Direction", "TcpTracker", "split_key",
           "FIN", "SYN", "RST", "PSH", "ACK", "URG"]
