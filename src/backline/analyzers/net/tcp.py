"""TCP sequence analysis with Wireshark's definitions, and per-connection state.

The per-frame flags follow ``tcp_analyze_sequence_number`` in Wireshark's
``epan/dissectors/packet-tcp.c`` (re-implemented here from its documented
rules): a segment that does not advance the sequence number is a fast
retransmission (>= 2 duplicate ACKs, within 20 ms), an out-of-order segment
(within the handshake RTT, or 3 ms), a spurious retransmission (already
ACKed) or a plain retransmission; every fast and spurious retransmission is
also counted as a retransmission, as Wireshark's expert info does.

Connection state uses Zeek's ``conn_state`` vocabulary (S0, REJ, SF, RSTO, ...).

>>> t = TcpTracker()
>>> a, b = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
>>> f1 = t.segment(1, 0, a, 1000, b, 80, 100, 0, SYN, 8192, 0, -1)
>>> f2 = t.segment(2, 1_000_000, b, 80, a, 1000, 0, 101, ACK | RST, 0, 0, -1)
>>> t.conns[0].state()
'REJ'
"""

from __future__ import annotations

import heapq
import struct
from collections import OrderedDict, deque
from typing import Callable

FIN, SYN, RST, PSH, ACK, URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20

#: Analysis flag names in the order of the oracle files; bit i is FLAG_NAMES[i].
FLAG_NAMES = (
    "retransmission", "fast_retransmission", "spurious_retransmission", "out_of_order",
    "lost_segment", "ack_lost_segment", "duplicate_ack", "zero_window", "zero_window_probe",
    "zero_window_probe_ack", "window_full", "window_update", "keep_alive", "keep_alive_ack",
    "reused_ports",
)
A_RETRANS, A_FAST, A_SPURIOUS, A_OOO, A_LOST, A_ACK_LOST, A_DUPACK, A_ZW, A_ZWP, A_ZWPA, \
    A_WFULL, A_WUPD, A_KA, A_KAA, A_REUSED = (1 << i for i in range(15))

_M = 0xFFFFFFFF
_HALF = 0x80000000


def _gt(a: int, b: int) -> bool:
    """Sequence-space a > b (32-bit wrap)."""
    return a != b and ((a - b) & _M) < _HALF


def _lt(a: int, b: int) -> bool:
    return a != b and ((b - a) & _M) < _HALF


class Direction:
    """Per-direction sequence state (Wireshark's ``tcp_flow_t``)."""

    __slots__ = ("base_seq", "base_set", "nextseq", "nextseqtime", "maxseqtobeacked",
                 "lastack", "lastacktime", "window", "win_scale", "lastflags", "dupacks",
                 "packets", "bytes", "fin", "rst", "last_was_syn")

    def __init__(self) -> None:
        self.base_seq = 0
        self.base_set = False
        self.nextseq = 0
        self.nextseqtime = 0
        self.maxseqtobeacked = 0
        self.lastack = 0
        self.lastacktime = 0
        self.window = -1
        self.win_scale = -1
        self.lastflags = 0
        self.dupacks = 0
        self.packets = 0
        self.bytes = 0
        self.fin = 0          # frame number of first FIN
        self.rst = 0          # frame number of first RST
        self.last_was_syn = False


_STATES = ("S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR",
           "OTH")
_DIR = struct.Struct("<I?IIIibHiQQ")        # one direction's saved sequence state
_TOMB = struct.Struct("<QBbQQq")            # stream, state, syn_from_a, syn/synack frame, iRTT


_STATE_INDEX = {name: i for i, name in enumerate(_STATES)}
# the same bytes as _TOMB followed by _DIR twice ("<": no padding), in one call
_TOMB_ALL = struct.Struct("<" + _TOMB.format[1:] + _DIR.format[1:] * 2)


def _tomb(c: "Connection", state: str) -> bytes:
    """A retired connection's state (``state`` is ``c.state()``) packed small (about 120 bytes)."""
    sfa = -1 if c.syn_from_a is None else int(c.syn_from_a)
    d, e = c.d
    return _TOMB_ALL.pack(
        c.stream, _STATE_INDEX[state], sfa, c.syn_frame, c.synack_frame, c.first_rtt,
        d.base_seq, d.base_set, d.nextseq, d.maxseqtobeacked, d.lastack, d.window,
        d.win_scale, d.lastflags, d.dupacks, d.fin, d.rst,
        e.base_seq, e.base_set, e.nextseq, e.maxseqtobeacked, e.lastack, e.window,
        e.win_scale, e.lastflags, e.dupacks, e.fin, e.rst)


def _untomb(blob: bytes) -> tuple:
    head = _TOMB.unpack_from(blob)
    dirs = (_DIR.unpack_from(blob, _TOMB.size), _DIR.unpack_from(blob, _TOMB.size + _DIR.size))
    return head, dirs


class Connection:
    """One TCP stream (Wireshark's ``tcp.stream``): state and statistics."""

    __slots__ = ("stream", "a", "ap", "b", "bp", "d", "first_ts", "last_ts", "first_frame",
                 "syn_frame", "syn_ts", "synack_frame", "synack_ts", "syn_from_a",
                 "first_rtt", "handshake_rtt", "retrans", "data_packets", "zero_window",
                 "analysis_counts", "rst_frames", "first_frame_from_a", "closed_ts", "key",
                 "queued", "apps", "zw")

    def __init__(self, stream: int, a: bytes, ap: int, b: bytes, bp: int, frame: int, ts: int):
        self.stream = stream
        self.a, self.ap, self.b, self.bp = a, ap, b, bp
        self.d = (Direction(), Direction())       # 0: a->b, 1: b->a
        self.first_ts = ts
        self.last_ts = ts
        self.first_frame = frame
        self.syn_frame = 0
        self.syn_ts = 0
        self.synack_frame = 0
        self.synack_ts = 0
        self.syn_from_a: bool | None = None
        self.first_rtt = 0        # ns, SYN -> first ACK (Wireshark's iRTT)
        self.handshake_rtt = 0    # ns, SYN -> SYN-ACK
        self.retrans = 0
        self.data_packets = 0
        self.zero_window = 0      # zero-window packets
        self.analysis_counts = 0
        self.rst_frames: list[tuple[int, int, int]] = []    # (frame, ts, dir)
        self.first_frame_from_a = True
        self.closed_ts = 0
        self.key: tuple = ()
        self.queued = False
        self.apps: tuple | None = None   # application parsers of each direction (capture.py)
        self.zw = 0                      # bit i: a zero-window run of direction i is open

    # ------------------------------------------------------------ summaries
    def originator_is_a(self) -> bool:
        if self.syn_from_a is not None:
            return self.syn_from_a
        return True

    def state(self) -> str:
        """Zeek ``conn_state`` of this connection."""
        o, r = (self.d[0], self.d[1]) if self.originator_is_a() else (self.d[1], self.d[0])
        syn, synack = bool(self.syn_frame), bool(self.synack_frame)
        first_rst = None
        if o.rst or r.rst:
            first_rst = "o" if (o.rst and (not r.rst or o.rst < r.rst)) else "r"
        if syn and not synack:
            if first_rst == "r":
                return "REJ"
            if first_rst == "o":
                return "RSTOS0"
            if o.fin:
                return "SH"
            return "S0"
        if synack and not syn:
            if first_rst == "r":
                return "RSTRH"
            if r.fin:
                return "SHR"
            return "OTH"
        if not syn and not synack:
            return "OTH"
        if first_rst == "o":
            return "RSTO"
        if first_rst == "r":
            return "RSTR"
        if o.fin and r.fin:
            return "SF"
        if o.fin:
            return "S2"
        if r.fin:
            return "S3"
        return "S1"

    @property
    def packets(self) -> int:
        return self.d[0].packets + self.d[1].packets


#: States worth keeping a closed connection for (findings need them).
PROBLEM_STATES = frozenset({"REJ", "S0", "SH", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SHR"})


class TcpTracker:
    """Run Wireshark's TCP analysis over segments fed in frame order.

    Closed connections (RST, or FIN both ways) are evicted ``grace_ns`` of
    capture time after their last packet, and idle ones after ``idle_ns``;
    an evicted connection is kept only if it has a problem (see
    :data:`PROBLEM_STATES`, retransmissions) or is among the ``top`` largest,
    so memory follows the live connections, not the packets.
    """

    def __init__(self, grace_ns: int = 5 * 10**9, idle_ns: int = 300 * 10**9, top: int = 1000,
                 keep_max: int = 100_000) -> None:
        self.table: dict[tuple, Connection] = {}
        self.counts = [0] * len(FLAG_NAMES)
        self.n_streams = 0
        self.conv_hashes: set[int] = set()
        self.kept: list[Connection] = []
        self.top_heap: list[tuple[int, int, Connection]] = []
        self.evicted_states: dict[str, int] = {}
        self.closing: deque[Connection] = deque()
        self.grace_ns = grace_ns
        self.idle_ns = idle_ns
        self.top = top
        self.keep_max = keep_max
        self.on_evict: Callable[[Connection], None] | None = None
        # retired connections' sequence state, so a late packet (a FIN or RST
        # retransmitted long after the close) continues its stream as in Wireshark
        # (an OrderedDict: dropping the oldest of a plain dict that is emptied from
        # the front rescans its deleted slots each time, quadratic over a long capture)
        self.tombs: OrderedDict[tuple, bytes] = OrderedDict()
        self.tomb_max = 100_000
        self._last_conn: Connection | None = None
        self._last_dir = 0

    @property
    def conns(self) -> list[Connection]:
        """Connections still known (live, kept, or among the largest), by stream."""
        seen: dict[int, Connection] = {}
        for c in self.kept:
            seen[c.stream] = c
        for _b, _s, c in self.top_heap:
            seen[c.stream] = c
        for c in self.table.values():
            seen[c.stream] = c
        return [seen[k] for k in sorted(seen)]

    @property
    def conversations(self) -> int:
        """Distinct address/port pairs (rows of tshark's ``-z conv,tcp``)."""
        return len(self.conv_hashes)

    def state_counts(self) -> dict[str, int]:
        out = dict(self.evicted_states)
        for c in self.table.values():
            st = c.state()
            out[st] = out.get(st, 0) + 1
        return dict(sorted(out.items()))

    def evict(self, now: int) -> None:
        """Retire connections closed (or idle) long enough before ``now``."""
        q = self.closing
        while q and q[0].last_ts + self.grace_ns < now:
            c = q.popleft()
            c.queued = False
            if c.last_ts + self.grace_ns >= now:     # became active again
                self._queue(c)
                continue
            self._retire(c)

    def sweep_idle(self, now: int) -> None:
        for c in [c for c in self.table.values() if c.last_ts + self.idle_ns < now]:
            self._retire(c)

    def _queue(self, c: Connection) -> None:
        if not c.queued:
            c.queued = True
            self.closing.append(c)

    def _retire(self, c: Connection, tomb: bool = True) -> None:
        st = c.state()
        if self.table.get(c.key) is c:
            del self.table[c.key]
            if tomb:
                tombs = self.tombs
                tombs[c.key] = _tomb(c, st)
                if len(tombs) > self.tomb_max:
                    tombs.popitem(last=False)           # the oldest
        if self._last_conn is c:
            self._last_conn = None
        if self.on_evict is not None:
            self.on_evict(c)
        self.evicted_states[st] = self.evicted_states.get(st, 0) + 1
        if (st in PROBLEM_STATES or c.retrans or c.zero_window) and len(self.kept) < self.keep_max:
            self.kept.append(c)
            return
        size = c.d[0].bytes + c.d[1].bytes
        if len(self.top_heap) < self.top:
            heapq.heappush(self.top_heap, (size, c.stream, c))
        elif size > self.top_heap[0][0]:
            heapq.heapreplace(self.top_heap, (size, c.stream, c))

    def segment(self, num: int, ts: int, src: bytes, sport: int, dst: bytes, dport: int,
                seq: int, ack: int, flags: int, win: int, seglen: int, wscale: int) -> int:
        """Analyse one TCP segment; return its analysis flag bits."""
        if src < dst or (src == dst and sport <= dport):
            key = (src, sport, dst, dport)
            fwd_i = 0
        else:
            key = (dst, dport, src, sport)
            fwd_i = 1
        c = self.table.get(key)
        af = 0
        if c is None:
            blob = self.tombs.pop(key, None) if self.tombs else None
            tomb = _untomb(blob) if blob is not None else None
            if tomb is not None and not ((flags & (SYN | ACK)) == SYN and
                                         tomb[1][fwd_i][1] and seq != tomb[1][fwd_i][0]):
                c = self._resurrect(key, tomb, num, ts)
            else:
                c = self._new(key, num, ts)
                if tomb is not None:
                    af |= A_REUSED
                if fwd_i:
                    c.first_frame_from_a = False
        elif flags & 0x02:                 # SYN (checked once; most segments skip this)
            f = c.d[fwd_i]
            if not flags & 0x10:
                if f.base_set and seq != f.base_seq:
                    c = self._new(key, num, ts)
                    af |= A_REUSED
            elif f.base_set and seq != f.base_seq:
                # Wireshark 4.0 flags a SYN-ACK with a new ISN but keeps the stream
                af |= A_REUSED
                f.base_seq = seq
        d = c.d
        fwd = d[fwd_i]
        rev = d[1 - fwd_i]
        c.last_ts = ts
        fwd.packets += 1
        fwd.bytes += seglen

        if not flags & 0x07:               # no SYN, FIN or RST: the common case
            if not c.first_rtt and flags & 0x10 and c.syn_ts:
                c.first_rtt = ts - c.syn_ts
        elif flags & SYN:
            if flags & ACK:
                if not c.synack_frame:
                    c.synack_frame = num
                    c.synack_ts = ts
                    if c.syn_ts and not c.handshake_rtt:
                        c.handshake_rtt = ts - c.syn_ts
                    if c.syn_from_a is None:
                        c.syn_from_a = fwd_i == 1
            else:
                if not c.syn_frame:
                    c.syn_frame = num
                    c.syn_from_a = fwd_i == 0
                c.syn_ts = ts     # most recent SYN (Wireshark's ts_mru_syn)
            # window scaling from the handshake
            fwd.win_scale = wscale if wscale >= 0 else -1
            if fwd.win_scale == -1:
                fwd.win_scale = -2
                rev.win_scale = -2
            elif flags & ACK and rev.win_scale == -2:
                fwd.win_scale = -2
        elif flags & ACK and c.syn_ts and not c.first_rtt:
            c.first_rtt = ts - c.syn_ts
        if flags & 0x05:                   # RST or FIN
            if flags & RST:
                if not fwd.rst:
                    fwd.rst = num
                if len(c.rst_frames) < 16:
                    c.rst_frames.append((num, ts, fwd_i))
                c.closed_ts = ts
                self._queue(c)
            if flags & FIN and not fwd.fin:
                fwd.fin = num
                if rev.fin:
                    c.closed_ts = ts
                    self._queue(c)

        # Fast path: an in-order data segment or a pure ACK moving the ACK number,
        # with none of the conditions below possible (checked here) -> no flags.
        nextseq_f = fwd.nextseq
        if not flags & 7 and not af and win and seq == nextseq_f and nextseq_f and rev.base_set \
                and (seglen > 1 or (seglen == 0 and ack != fwd.lastack)):
            m = rev.maxseqtobeacked
            end = (seq + seglen) & _M
            rl = rev.lastack
            if not (m and ack != m and ((ack - m) & _M) < _HALF and flags & ACK) and not (
                    seglen and ((rl and ((rl - end) & _M) < _HALF) or (
                        rev.win_scale != -1 and end == ((rl + (rev.window << (
                            0 if (rev.win_scale == -2 or rev.last_was_syn) else rev.win_scale)))
                            & _M)))):
                if ack != fwd.lastack:
                    fwd.dupacks = 0
                if seglen:
                    fwd.nextseq = end
                    fwd.nextseqtime = ts
                    c.data_packets += 1
                if seq == fwd.maxseqtobeacked or not fwd.maxseqtobeacked:
                    fwd.maxseqtobeacked = fwd.nextseq
                fwd.window = win
                fwd.lastack = ack
                fwd.lastacktime = ts
                fwd.lastflags = 0
                fwd.last_was_syn = False
                self._last_conn = c
                self._last_dir = fwd_i
                return 0

        # base sequence numbers
        if not fwd.base_set:
            fwd.base_seq = seq if flags & SYN else (seq - 1) & _M
            fwd.base_set = True
        if not rev.base_set and flags & ACK:
            rev.base_seq = ack if flags & SYN else (ack - 1) & _M
            rev.base_set = True

        nextseq_f = fwd.nextseq
        done_fwd = False
        # ZERO WINDOW PROBE
        if seglen == 1 and seq == nextseq_f and rev.window == 0:
            af |= A_ZWP
            done_fwd = True
        if not done_fwd:
            noctl = not (flags & (SYN | FIN | RST))
            if win == 0 and noctl:
                af |= A_ZW
            if nextseq_f and _gt(seq, nextseq_f) and not flags & RST:
                af |= A_LOST
            if seglen <= 1 and seq == ((nextseq_f - 1) & _M) and noctl:
                af |= A_KA
            if seglen == 0 and noctl and seq == nextseq_f and ack == fwd.lastack:
                if win and win != fwd.window:
                    af |= A_WUPD
                if win and win == fwd.window and rev.lastflags & A_KA:
                    af |= A_KAA
                    done_fwd = True
                elif win == 0 and fwd.window == 0 and rev.lastflags & A_ZWP:
                    af |= A_ZWPA
                    done_fwd = True
                elif win and win == fwd.window:
                    fwd.dupacks = 1 if fwd.dupacks == -1 else fwd.dupacks + 1
                    af |= A_DUPACK
            if seglen > 0 and rev.win_scale != -1 and noctl:
                shift = 0 if (rev.win_scale == -2 or rev.last_was_syn) else rev.win_scale
                if ((seq + seglen) & _M) == ((rev.lastack + (rev.window << shift)) & _M):
                    af |= A_WFULL
        # finished_fwd
        if ack != fwd.lastack:
            fwd.dupacks = 0
        if rev.maxseqtobeacked and _gt(ack, rev.maxseqtobeacked) and flags & ACK:
            # Wireshark 4.0: move the boundary when the other side sent more since;
            # otherwise (that side is stalled) flag only once and mark its dup-ACK
            # counter -1 (an unsigned "many" in the fast-retransmission test).
            if _lt(rev.maxseqtobeacked, rev.nextseq):
                rev.maxseqtobeacked = rev.nextseq
                af |= A_ACK_LOST
            else:
                if rev.dupacks == 0:
                    af |= A_ACK_LOST
                rev.dupacks = -1

        if seglen > 0 or flags & (SYN | FIN):
            not_adv = nextseq_f != 0 and _lt(seq, nextseq_f)
            if not af & A_KA:
                if seglen > 1 and ((nextseq_f - 1) & _M) == seq:
                    not_adv = False
                if not_adv and (rev.dupacks >= 2 or rev.dupacks < 0) and rev.lastack == seq \
                        and ts - rev.lastacktime < 20_000_000:
                    af |= A_FAST | A_RETRANS
                elif not_adv and ts - fwd.nextseqtime < (c.first_rtt or 3_000_000) \
                        and nextseq_f != ((seq + seglen) & _M):
                    af |= A_OOO
                elif seglen > 0 and rev.lastack and \
                        not _gt((seq + seglen) & _M, rev.lastack):
                    af |= A_SPURIOUS | A_RETRANS
                elif not_adv:
                    af |= A_RETRANS

        nxt = (seq + seglen + (1 if flags & (SYN | FIN) else 0)) & _M
        if not af & A_ZWP:
            if _gt(nxt, fwd.nextseq) or not fwd.nextseq:
                fwd.nextseq = nxt
                fwd.nextseqtime = ts
            if seq == fwd.maxseqtobeacked or not fwd.maxseqtobeacked:
                fwd.maxseqtobeacked = fwd.nextseq
        fwd.window = win
        fwd.lastack = ack
        fwd.lastacktime = ts
        fwd.lastflags = af
        fwd.last_was_syn = bool(flags & SYN)

        if af:
            counts = self.counts
            for i in range(15):
                if af >> i & 1:
                    counts[i] += 1
            if af & A_RETRANS:
                c.retrans += 1
            if af & A_ZW:
                c.zero_window += 1
        if seglen:
            c.data_packets += 1
        self._last_conn = c
        self._last_dir = fwd_i
        return af

    def _resurrect(self, key: tuple, tomb: tuple, num: int, ts: int) -> Connection:
        """A late packet of a retired connection: restore its stream and state."""
        (stream, state, sfa, syn_frame, synack_frame, first_rtt), dirs = tomb
        c = Connection(stream, key[0], key[1], key[2], key[3], num, ts)
        c.key = key
        c.syn_from_a = None if sfa < 0 else bool(sfa)
        c.syn_frame, c.synack_frame, c.first_rtt = syn_frame, synack_frame, first_rtt
        for d, saved in zip(c.d, dirs):
            (d.base_seq, d.base_set, d.nextseq, d.maxseqtobeacked, d.lastack, d.window,
             d.win_scale, d.lastflags, d.dupacks, d.fin, d.rst) = saved
        self.evicted_states[_STATES[state]] -= 1
        self.table[key] = c
        return c

    def _new(self, key: tuple, num: int, ts: int) -> Connection:
        old = self.table.get(key)
        if old is not None:          # port reuse: the old stream is finished
            self._retire(old, tomb=False)
        c = Connection(self.n_streams, key[0], key[1], key[2], key[3], num, ts)
        self.n_streams += 1
        c.key = key
        self.table[key] = c
        self.conv_hashes.add(hash(key))
        return c

    def flag_counts(self) -> dict[str, int]:
        return dict(zip(FLAG_NAMES, self.counts))
