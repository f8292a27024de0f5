# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""The compiled per-packet path of the capture analysis.

Everything that runs once per packet lives here, typed: walking pcap
records in a read buffer, decoding link/IP/TCP/UDP headers, Wireshark's TCP
sequence analysis (``tcp_analyze_sequence_number`` of
``epan/dissectors/packet-tcp.c``, re-implemented from its documented rules)
and feeding in-order payload to the application parsers.  Python objects are
made only where Python code needs them: a new connection, a segment an
application parser must read, a DNS message, a flagged packet.

The Python modules keep the public names: :mod:`.tcp` (``TcpTracker``,
``Connection``), :mod:`.decode` (``decode``), :mod:`.capture`
(``analyze_capture``), :mod:`.reader` (``CaptureReader``).
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy
from libc.stdlib cimport calloc, free
from cpython.ref cimport PyObject
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.tuple cimport PyTuple_GET_SIZE

import heapq
import struct
from collections import OrderedDict, deque

# ---------------------------------------------------------------- TCP flags
FIN, SYN, RST, PSH, ACK, URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20

#: Analysis flag names in the order of the oracle files; bit i is FLAG_NAMES[i].
FLAG_NAMES = (
    "retransmission", "fast_retransmission", "spurious_retransmission", "out_of_order",
    "lost_segment", "ack_lost_segment", "duplicate_ack", "zero_window", "zero_window_probe",
    "zero_window_probe_ack", "window_full", "window_update", "keep_alive", "keep_alive_ack",
    "reused_ports",
)

cdef enum:
    F_FIN = 0x01
    F_SYN = 0x02
    F_RST = 0x04
    F_ACK = 0x10
    C_RETRANS = 1
    C_FAST = 2
    C_SPURIOUS = 4
    C_OOO = 8
    C_LOST = 16
    C_ACK_LOST = 32
    C_DUPACK = 64
    C_ZW = 128
    C_ZWP = 256
    C_ZWPA = 512
    C_WFULL = 1024
    C_WUPD = 2048
    C_KA = 4096
    C_KAA = 8192
    C_REUSED = 16384
    NFLAGS = 15

A_RETRANS, A_FAST, A_SPURIOUS, A_OOO, A_LOST, A_ACK_LOST, A_DUPACK, A_ZW, A_ZWP, A_ZWPA, \
    A_WFULL, A_WUPD, A_KA, A_KAA, A_REUSED = (1 << i for i in range(15))

cdef uint32_t HALF = 0x80000000u
#: Server data segments that answer no request, counted per stream (AppSink.tcp_unasked).
cdef int UNASKED_KEPT = 8


cdef inline bint _gt(uint32_t a, uint32_t b):
    """Sequence-space a > b (32-bit wrap)."""
    return a != b and <uint32_t>(a - b) < HALF


cdef inline bint _lt(uint32_t a, uint32_t b):
    return a != b and <uint32_t>(b - a) < HALF


cdef inline uint32_t _u32be(const uint8_t* p):
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


cdef inline uint32_t _u32le(const uint8_t* p):
    return (<uint32_t>p[3] << 24) | (<uint32_t>p[2] << 16) | (<uint32_t>p[1] << 8) | p[0]


cdef inline int _u16be(const uint8_t* p):
    return (p[0] << 8) | p[1]


# ------------------------------------------------------------ per direction
cdef class Direction:
    """Per-direction sequence state (Wireshark's ``tcp_flow_t``)."""

    cdef public uint32_t base_seq
    cdef public bint base_set
    cdef public uint32_t nextseq
    cdef public int64_t nextseqtime
    cdef public uint32_t maxseqtobeacked
    cdef public uint32_t lastack
    cdef public int64_t lastacktime
    cdef public int64_t window
    cdef public int win_scale
    cdef public int lastflags
    cdef public int dupacks
    cdef public int64_t packets
    cdef public int64_t nbytes
    cdef public int64_t fin          # frame number of the first FIN
    cdef public int64_t rst          # frame number of the first RST
    cdef public bint last_was_syn

    def __cinit__(self):
        self.window = -1
        self.win_scale = -1

    @property
    def bytes(self):
        return self.nbytes


_STATES = ("S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR",
           "OTH")
_STATE_INDEX = {name: i for i, name in enumerate(_STATES)}

#: States worth keeping a closed connection for (findings need them).
PROBLEM_STATES = frozenset({"REJ", "S0", "SH", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SHR"})


cdef class Connection:
    """One TCP stream (Wireshark's ``tcp.stream``): state and statistics."""

    cdef public int64_t stream
    cdef public object a
    cdef public int ap
    cdef public object b
    cdef public int bp
    cdef public Direction d0
    cdef public Direction d1
    cdef public int64_t first_ts
    cdef public int64_t last_ts
    cdef public int64_t first_frame
    cdef public int64_t syn_frame
    cdef public int64_t syn_ts
    cdef public int64_t synack_frame
    cdef public int64_t synack_ts
    cdef public object syn_from_a        # None, True or False
    cdef public int64_t first_rtt        # ns, SYN -> first ACK (Wireshark's iRTT)
    cdef public int64_t handshake_rtt    # ns, SYN -> SYN-ACK
    cdef public int64_t retrans
    cdef public int64_t data_packets
    cdef public int64_t zero_window      # zero-window packets
    cdef public int64_t analysis_counts
    cdef public list rst_frames          # (frame, ts, dir), the first 16
    cdef public bint first_frame_from_a
    cdef public int64_t closed_ts
    cdef public object key
    cdef public bint queued
    cdef public object apps              # application parsers of each direction (capture.py)
    cdef public int zw                   # bit i: a zero-window run of direction i is open
    cdef public int client_side          # 0: a is the client, 1: b is, -1: not decided yet
    cdef public bint tapped              # a frame with its whole TCP header was seen
    # the request of a stream in a protocol Backline does not decode, waiting for its answer
    # (AppSink.tcp_answer): frame and time of its first client segment, time of its last one
    cdef public int64_t turn_frame
    cdef public int64_t turn_first_ts
    cdef public int64_t turn_ts
    cdef public bint turn_dropped        # the client reset the stream: later server data answers nothing
    cdef public bint turn_given          # the waiting request was already counted as given up (a FIN, then a RST)
    cdef public int turn_unasked         # server data segments that answered no request (counted up to UNASKED_KEPT)

    def __init__(self, int64_t stream, a, int ap, b, int bp, int64_t frame, int64_t ts):
        self._setup(stream, a, ap, b, bp, frame, ts)

    cdef void _setup(self, int64_t stream, object a, int ap, object b, int bp, int64_t frame,
                     int64_t ts):
        self.stream = stream
        self.a = a
        self.ap = ap
        self.b = b
        self.bp = bp
        self.d0 = Direction.__new__(Direction)
        self.d1 = Direction.__new__(Direction)
        self.first_ts = ts
        self.last_ts = ts
        self.first_frame = frame
        self.syn_from_a = None
        self.rst_frames = []
        self.first_frame_from_a = True
        self.key = ()
        self.apps = None
        self.client_side = -1

    @property
    def d(self):
        """The two directions: 0 is a -> b, 1 is b -> a."""
        return (self.d0, self.d1)

    @property
    def packets(self):
        return self.d0.packets + self.d1.packets

    def originator_is_a(self):
        if self.syn_from_a is not None:
            return bool(self.syn_from_a)
        return True

    cpdef str state(self):
        """Zeek ``conn_state`` of this connection."""
        cdef Direction o, r
        if self.originator_is_a():
            o, r = self.d0, self.d1
        else:
            o, r = self.d1, self.d0
        cdef bint syn = self.syn_frame != 0
        cdef bint synack = self.synack_frame != 0
        cdef int first_rst = 0       # 1: originator, 2: responder
        if o.rst or r.rst:
            first_rst = 1 if (o.rst and (not r.rst or o.rst < r.rst)) else 2
        if syn and not synack:
            if first_rst == 2:
                return "REJ"
            if first_rst == 1:
                return "RSTOS0"
            if o.fin:
                return "SH"
            return "S0"
        if synack and not syn:
            if first_rst == 2:
                return "RSTRH"
            if r.fin:
                return "SHR"
            return "OTH"
        if not syn and not synack:
            return "OTH"
        if first_rst == 1:
            return "RSTO"
        if first_rst == 2:
            return "RSTR"
        if o.fin and r.fin:
            return "SF"
        if o.fin:
            return "S2"
        if r.fin:
            return "S3"
        return "S1"


ctypedef struct DirRec:
    uint32_t base_seq
    uint32_t nextseq
    uint32_t maxseqtobeacked
    uint32_t lastack
    int64_t window
    int64_t fin
    int64_t rst
    int32_t win_scale
    int32_t lastflags
    int32_t dupacks
    int32_t base_set


ctypedef struct TombRec:
    int64_t stream
    int64_t syn_frame
    int64_t synack_frame
    int64_t first_rtt
    int32_t state
    int32_t syn_from_a       # -1: unknown
    int32_t tapped           # a frame with its whole TCP header was seen
    DirRec d[2]


cdef inline void _save_dir(Direction d, DirRec* r) noexcept:
    r.base_seq, r.base_set, r.nextseq = d.base_seq, d.base_set, d.nextseq
    r.maxseqtobeacked, r.lastack, r.window = d.maxseqtobeacked, d.lastack, d.window
    r.win_scale, r.lastflags, r.dupacks, r.fin, r.rst = \
        d.win_scale, d.lastflags, d.dupacks, d.fin, d.rst


cdef inline void _load_dir(Direction d, const DirRec* r) noexcept:
    d.base_seq, d.base_set, d.nextseq = r.base_seq, r.base_set != 0, r.nextseq
    d.maxseqtobeacked, d.lastack, d.window = r.maxseqtobeacked, r.lastack, r.window
    d.win_scale, d.lastflags, d.dupacks, d.fin, d.rst = \
        r.win_scale, r.lastflags, r.dupacks, r.fin, r.rst


cdef bytes _tomb(Connection c, str state):
    """A retired connection's sequence state, packed small (a C record in a bytes)."""
    cdef TombRec r
    r.stream, r.syn_frame, r.synack_frame, r.first_rtt = \
        c.stream, c.syn_frame, c.synack_frame, c.first_rtt
    r.state = _STATE_INDEX[state]
    r.syn_from_a = -1 if c.syn_from_a is None else (1 if c.syn_from_a else 0)
    r.tapped = c.tapped
    _save_dir(c.d0, &r.d[0])
    _save_dir(c.d1, &r.d[1])
    return PyBytes_FromStringAndSize(<const char*>&r, sizeof(TombRec))


cdef Connection _conn_for_key(int64_t stream, bytes key, int64_t frame, int64_t ts):
    """A new connection whose endpoints are read from its key."""
    cdef const uint8_t* k = <const uint8_t*>PyBytes_AS_STRING(key)
    cdef Py_ssize_t alen = (PyBytes_GET_SIZE(key) - 4) // 2
    cdef Connection c = Connection.__new__(Connection)
    c._setup(stream, PyBytes_FromStringAndSize(<const char*>k, alen), (k[alen] << 8) | k[alen + 1],
             PyBytes_FromStringAndSize(<const char*>(k + alen + 2), alen),
             (k[2 * alen + 2] << 8) | k[2 * alen + 3], frame, ts)
    c.key = key
    return c


cdef int _fill_key(const uint8_t* src, int sport, const uint8_t* dst, int dport, int alen,
                   uint8_t* k, int* fwd_i) noexcept:
    """Write the connection key to ``k``: lower endpoint first (address, port big-endian).

    Returns its length (12 for IPv4, 36 for IPv6).
    """
    cdef int cmp = memcmp(src, dst, alen)
    cdef const uint8_t* lo
    cdef const uint8_t* hi
    cdef int lop, hip
    if cmp < 0 or (cmp == 0 and sport <= dport):
        lo, lop, hi, hip = src, sport, dst, dport
        fwd_i[0] = 0
    else:
        lo, lop, hi, hip = dst, dport, src, sport
        fwd_i[0] = 1
    memcpy(k, lo, alen)
    memcpy(k + alen + 2, hi, alen)
    k[alen] = lop >> 8
    k[alen + 1] = lop & 0xFF
    k[2 * alen + 2] = hip >> 8
    k[2 * alen + 3] = hip & 0xFF
    return 2 * alen + 4


cdef inline uint64_t _key_hash(const uint8_t* k, int n) noexcept:
    """A 64-bit hash of a connection key (multiply-xorshift over 8-byte words)."""
    cdef uint64_t h = <uint64_t>n * 0x9E3779B97F4A7C15u
    cdef uint64_t w
    cdef int i = 0
    while i + 8 <= n:
        memcpy(&w, k + i, 8)
        h = (h ^ w) * 0xFF51AFD7ED558CCDu
        h ^= h >> 32
        i += 8
    w = 0
    if i < n:
        memcpy(&w, k + i, n - i)
        h = (h ^ w) * 0xC4CEB9FE1A85EC53u
    h ^= h >> 29
    h *= 0x9E3779B97F4A7C15u
    h ^= h >> 32
    return h | 1          # 0 marks an empty slot


ctypedef struct Slot:
    uint64_t h
    PyObject* conn         # borrowed: the ``table`` dict holds the reference
    uint8_t klen
    uint8_t key[36]


def split_key(bytes key):
    """``(a, ap, b, bp)`` of a connection key (addresses as bytes)."""
    cdef Py_ssize_t alen = (len(key) - 4) // 2
    return (key[:alen], int.from_bytes(key[alen:alen + 2], "big"),
            key[alen + 2:2 * alen + 2], int.from_bytes(key[2 * alen + 2:], "big"))


cdef class TcpTracker:
    """Run Wireshark's TCP analysis over segments fed in frame order.

    Closed connections (RST, or FIN both ways) are evicted ``grace_ns`` of
    capture time after their last packet, and idle ones after ``idle_ns``;
    an evicted connection is kept only if it has a problem (see
    :data:`PROBLEM_STATES`, retransmissions) or is among the ``top`` largest,
    so memory follows the live connections, not the packets.  A retired
    connection leaves a small tombstone so a late packet (a FIN or RST
    retransmitted long after the close) continues its stream as in Wireshark.
    """

    cdef public dict table
    cdef int64_t _counts[15]
    cdef public int64_t n_streams
    cdef public int64_t n_tapped     # streams with a frame whose TCP header was all captured
    cdef public bint quiet           # this frame's TCP header was cut: analyse, flag nothing
    cdef public list kept
    cdef public list top_heap
    cdef public dict evicted_states
    cdef public object closing
    cdef public int64_t grace_ns
    cdef public int64_t idle_ns
    cdef public int64_t top
    cdef public int64_t keep_max
    cdef public object on_evict
    cdef public object tombs
    cdef public int64_t tomb_max
    cdef public Connection last_conn
    cdef public int last_dir
    # an index of ``table`` by the key's bytes, probed without making a Python object
    cdef Slot* slots
    cdef size_t cap
    cdef size_t used

    def __cinit__(self):
        self.cap = 1024
        self.used = 0
        self.slots = <Slot*>calloc(self.cap, sizeof(Slot))
        if self.slots == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.slots)

    cdef PyObject* _find(self, const uint8_t* k, int n, uint64_t h) noexcept:
        cdef size_t mask = self.cap - 1
        cdef size_t i = h & mask
        cdef Slot* sl
        while True:
            sl = &self.slots[i]
            if sl.h == 0:
                return NULL
            if sl.h == h and sl.klen == n and memcmp(sl.key, k, n) == 0:
                return sl.conn
            i = (i + 1) & mask

    cdef int _index_add(self, bytes key, Connection c) except -1:
        cdef const uint8_t* k = <const uint8_t*>PyBytes_AS_STRING(key)
        cdef int n = PyBytes_GET_SIZE(key)
        if (self.used + 1) * 2 > self.cap:
            self._grow()
        self._put(k, n, _key_hash(k, n), <PyObject*>c)
        self.used += 1
        return 0

    cdef void _put(self, const uint8_t* k, int n, uint64_t h, PyObject* conn) noexcept:
        cdef size_t mask = self.cap - 1
        cdef size_t i = h & mask
        while self.slots[i].h != 0:
            i = (i + 1) & mask
        self.slots[i].h = h
        self.slots[i].conn = conn
        self.slots[i].klen = n
        memcpy(self.slots[i].key, k, n)

    cdef int _grow(self) except -1:
        cdef Slot* old = self.slots
        cdef size_t oldcap = self.cap, j
        self.slots = <Slot*>calloc(oldcap * 2, sizeof(Slot))
        if self.slots == NULL:
            self.slots = old
            raise MemoryError()
        self.cap = oldcap * 2
        for j in range(oldcap):
            if old[j].h:
                self._put(old[j].key, old[j].klen, old[j].h, old[j].conn)
        free(old)
        return 0

    cdef void _index_remove(self, bytes key) noexcept:
        """Remove ``key`` (backward-shift deletion: no tombstones in the probe chains)."""
        cdef const uint8_t* k = <const uint8_t*>PyBytes_AS_STRING(key)
        cdef int n = PyBytes_GET_SIZE(key)
        cdef uint64_t h = _key_hash(k, n)
        cdef size_t mask = self.cap - 1
        cdef size_t i = h & mask, j, home
        while True:
            if self.slots[i].h == 0:
                return
            if self.slots[i].h == h and self.slots[i].klen == n and \
                    memcmp(self.slots[i].key, k, n) == 0:
                break
            i = (i + 1) & mask
        j = i
        while True:
            j = (j + 1) & mask
            if self.slots[j].h == 0:
                break
            home = self.slots[j].h & mask
            # move slot j into the hole at i when its home is not in (i, j]
            if (j > i and (home <= i or home > j)) or (j < i and (home <= i and home > j)):
                self.slots[i] = self.slots[j]
                i = j
        self.slots[i].h = 0
        self.slots[i].conn = NULL
        self.used -= 1

    def __init__(self, int64_t grace_ns=5 * 10**9, int64_t idle_ns=300 * 10**9, int64_t top=1000,
                 int64_t keep_max=100_000):
        self.table = {}
        cdef int i
        for i in range(NFLAGS):
            self._counts[i] = 0
        self.n_streams = 0
        self.n_tapped = 0
        self.quiet = False
        self.kept = []
        self.top_heap = []
        self.evicted_states = {}
        self.closing = deque()
        self.grace_ns = grace_ns
        self.idle_ns = idle_ns
        self.top = top
        self.keep_max = keep_max
        self.on_evict = None
        self.tombs = OrderedDict()
        self.tomb_max = 100_000
        self.last_conn = None
        self.last_dir = 0

    @property
    def counts(self):
        """Frames carrying each analysis flag, in :data:`FLAG_NAMES` order."""
        return [self._counts[i] for i in range(NFLAGS)]

    @property
    def conns(self):
        """Connections still known (live, kept, or among the largest), by stream."""
        seen = {}
        for c in self.kept:
            seen[c.stream] = c
        for _b, _s, c in self.top_heap:
            seen[c.stream] = c
        for c in self.table.values():
            seen[c.stream] = c
        return [seen[k] for k in sorted(seen)]

    @property
    def conversations(self):
        """Rows of tshark's ``-z conv,tcp``: one per stream, so a reused address/port
        pair gives a row per stream (Wireshark 4.0 keys the table by ``tcp.stream``);
        a stream none of whose frames had its whole TCP header captured (snaplen)
        never reaches the table."""
        return self.n_tapped

    def state_counts(self):
        out = dict(self.evicted_states)
        for c in self.table.values():
            st = c.state()
            out[st] = out.get(st, 0) + 1
        return dict(sorted(out.items()))

    def flag_counts(self):
        return dict(zip(FLAG_NAMES, self.counts))

    cpdef evict(self, int64_t now):
        """Retire connections closed (or idle) long enough before ``now``."""
        q = self.closing
        cdef Connection c
        while q and (<Connection>q[0]).last_ts + self.grace_ns < now:
            c = q.popleft()
            c.queued = False
            if c.last_ts + self.grace_ns >= now:     # became active again
                self._queue(c)
                continue
            self._retire(c, True)

    cpdef sweep_idle(self, int64_t now):
        cdef Connection c
        for c in [c for c in self.table.values() if (<Connection>c).last_ts + self.idle_ns < now]:
            self._retire(c, True)

    cdef inline void _queue(self, Connection c):
        if not c.queued:
            c.queued = True
            self.closing.append(c)

    cdef _retire(self, Connection c, bint tomb):
        cdef str st = c.state()
        if self.table.get(c.key) is c:
            del self.table[c.key]
            self._index_remove(c.key)
            if tomb:
                tombs = self.tombs
                tombs[c.key] = _tomb(c, st)
                if len(tombs) > self.tomb_max:
                    tombs.popitem(last=False)           # the oldest
        if self.last_conn is c:
            self.last_conn = None
        if self.on_evict is not None:
            self.on_evict(c)
        self.evicted_states[st] = self.evicted_states.get(st, 0) + 1
        if (st in PROBLEM_STATES or c.retrans or c.zero_window) and len(self.kept) < self.keep_max:
            self.kept.append(c)
            return
        size = c.d0.nbytes + c.d1.nbytes
        if len(self.top_heap) < self.top:
            heapq.heappush(self.top_heap, (size, c.stream, c))
        elif size > self.top_heap[0][0]:
            heapq.heapreplace(self.top_heap, (size, c.stream, c))

    def segment(self, int64_t num, int64_t ts, bytes src, int sport, bytes dst, int dport,
                uint32_t seq, uint32_t ack, int flags, int64_t win, int64_t seglen, int wscale):
        """Analyse one TCP segment; return its analysis flag bits."""
        if len(src) != len(dst) or len(src) not in (4, 16):
            raise ValueError("addresses must both be 4 or 16 bytes")
        cdef int fwd_i = 0
        cdef uint8_t k[36]
        cdef int n = _fill_key(<const uint8_t*>PyBytes_AS_STRING(src), sport,
                               <const uint8_t*>PyBytes_AS_STRING(dst), dport, len(src), k, &fwd_i)
        return self._segment(num, ts, k, n, fwd_i, seq, ack, flags, win, seglen, wscale)

    cdef int _segment(self, int64_t num, int64_t ts, const uint8_t* kp, int klen, int fwd_i,
                      uint32_t seq, uint32_t ack, int flags, int64_t win, int64_t seglen,
                      int wscale) except -1:
        cdef Connection c
        cdef Direction fwd, rev, f
        cdef int af = 0
        cdef PyObject* found = self._find(kp, klen, _key_hash(kp, klen))
        cdef TombRec tomb
        cdef bint has_tomb = False
        cdef bytes key
        if found == NULL:
            key = PyBytes_FromStringAndSize(<const char*>kp, klen)
            if self.tombs:
                blob = self.tombs.pop(key, None)
                if blob is not None:
                    memcpy(&tomb, PyBytes_AS_STRING(blob), sizeof(TombRec))
                    has_tomb = True
            if has_tomb and not ((flags & (F_SYN | F_ACK)) == F_SYN and
                                 tomb.d[fwd_i].base_set and seq != tomb.d[fwd_i].base_seq):
                c = self._resurrect(key, &tomb, num, ts)
            else:
                c = self._new(key, num, ts)
                if has_tomb:
                    af |= C_REUSED
                if fwd_i:
                    c.first_frame_from_a = False
        else:
            c = <Connection>found
            if flags & F_SYN:               # checked once; most segments skip this
                f = c.d1 if fwd_i else c.d0
                if not flags & F_ACK:
                    if f.base_set and seq != f.base_seq:
                        c = self._new(c.key, num, ts)
                        af |= C_REUSED
                elif f.base_set and seq != f.base_seq:
                    # Wireshark 4.0 flags a SYN-ACK with a new ISN but keeps the stream
                    af |= C_REUSED
                    f.base_seq = seq
        if fwd_i:
            fwd, rev = c.d1, c.d0
        else:
            fwd, rev = c.d0, c.d1
        c.last_ts = ts
        fwd.packets += 1
        fwd.nbytes += seglen

        if not flags & 0x07:               # no SYN, FIN or RST: the common case
            if not c.first_rtt and flags & F_ACK and c.syn_ts:
                c.first_rtt = ts - c.syn_ts
        elif flags & F_SYN:
            if flags & F_ACK:
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
            elif flags & F_ACK and rev.win_scale == -2:
                fwd.win_scale = -2
        elif flags & F_ACK and c.syn_ts and not c.first_rtt:
            c.first_rtt = ts - c.syn_ts
        if flags & 0x05:                   # RST or FIN
            if flags & F_RST:
                if not fwd.rst:
                    fwd.rst = num
                if len(c.rst_frames) < 16:
                    c.rst_frames.append((num, ts, fwd_i))
                c.closed_ts = ts
                self._queue(c)
            if flags & F_FIN and not fwd.fin:
                fwd.fin = num
                if rev.fin:
                    c.closed_ts = ts
                    self._queue(c)

        cdef uint32_t nextseq_f = fwd.nextseq
        cdef uint32_t m, end, rl, nxt
        cdef int shift
        # Fast path: an in-order data segment or a pure ACK moving the ACK number,
        # with none of the conditions below possible (checked here) -> no flags.
        if not flags & 7 and not af and win and seq == nextseq_f and nextseq_f and rev.base_set \
                and (seglen > 1 or (seglen == 0 and ack != fwd.lastack)):
            m = rev.maxseqtobeacked
            end = <uint32_t>(seq + seglen)
            rl = rev.lastack
            shift = 0 if (rev.win_scale == -2 or rev.last_was_syn) else rev.win_scale
            if not (m and ack != m and <uint32_t>(ack - m) < HALF and flags & F_ACK) and not (
                    seglen and ((rl and <uint32_t>(rl - end) < HALF) or (
                        rev.win_scale != -1 and
                        end == <uint32_t>(<uint64_t>rl + <uint64_t>(rev.window * (<int64_t>1 << shift)))))):
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
                if not c.tapped and not self.quiet:
                    c.tapped = True
                    self.n_tapped += 1
                self.last_conn = c
                self.last_dir = fwd_i
                return 0

        # base sequence numbers
        if not fwd.base_set:
            fwd.base_seq = seq if flags & F_SYN else <uint32_t>(seq - 1)
            fwd.base_set = True
        if not rev.base_set and flags & F_ACK:
            # the first ACK seen from this side gives the other side's ISN (ack - 1),
            # also on a SYN-ACK seen before its SYN (Wireshark 4.0's base_seq)
            rev.base_seq = <uint32_t>(ack - 1)
            rev.base_set = True

        nextseq_f = fwd.nextseq
        cdef bint done_fwd = False
        cdef bint noctl, not_adv
        cdef int64_t irtt
        # ZERO WINDOW PROBE
        if seglen == 1 and seq == nextseq_f and rev.window == 0:
            af |= C_ZWP
            done_fwd = True
        if not done_fwd:
            noctl = not (flags & (F_SYN | F_FIN | F_RST))
            if win == 0 and noctl:
                af |= C_ZW
            if nextseq_f and _gt(seq, nextseq_f) and not flags & F_RST:
                af |= C_LOST
            if seglen <= 1 and seq == <uint32_t>(nextseq_f - 1) and noctl:
                af |= C_KA
            if seglen == 0 and noctl and seq == nextseq_f and ack == fwd.lastack:
                if win and win != fwd.window:
                    af |= C_WUPD
                if win and win == fwd.window and rev.lastflags & C_KA:
                    af |= C_KAA
                    done_fwd = True
                elif win == 0 and fwd.window == 0 and rev.lastflags & C_ZWP:
                    af |= C_ZWPA
                    done_fwd = True
                elif win and win == fwd.window:
                    fwd.dupacks = 1 if fwd.dupacks == -1 else fwd.dupacks + 1
                    af |= C_DUPACK
            if seglen > 0 and rev.win_scale != -1 and noctl:
                shift = 0 if (rev.win_scale == -2 or rev.last_was_syn) else rev.win_scale
                if <uint32_t>(seq + seglen) == <uint32_t>(
                        <uint64_t>rev.lastack + <uint64_t>(rev.window * (<int64_t>1 << shift))):
                    af |= C_WFULL
        # finished_fwd
        if ack != fwd.lastack:
            fwd.dupacks = 0
        if rev.maxseqtobeacked and _gt(ack, rev.maxseqtobeacked) and flags & F_ACK:
            # Wireshark 4.0: move the boundary when the other side sent more since;
            # otherwise (that side is stalled) flag only once and mark its dup-ACK
            # counter -1 (an unsigned "many" in the fast-retransmission test).
            if _lt(rev.maxseqtobeacked, rev.nextseq):
                rev.maxseqtobeacked = rev.nextseq
                af |= C_ACK_LOST
            else:
                if rev.dupacks == 0:
                    af |= C_ACK_LOST
                rev.dupacks = -1

        if seglen > 0 or flags & (F_SYN | F_FIN):
            not_adv = nextseq_f != 0 and _lt(seq, nextseq_f)
            if not af & C_KA:
                if seglen > 1 and <uint32_t>(nextseq_f - 1) == seq:
                    not_adv = False
                irtt = c.first_rtt if c.first_rtt else 3_000_000
                if not_adv and (rev.dupacks >= 2 or rev.dupacks < 0) and rev.lastack == seq \
                        and ts - rev.lastacktime < 20_000_000:
                    af |= C_FAST | C_RETRANS
                elif not_adv and ts - fwd.nextseqtime < irtt and nextseq_f != <uint32_t>(
                        seq + seglen + (1 if flags & (F_SYN | F_FIN) else 0)):
                    # (Wireshark 4.0.17 counts the SYN/FIN sequence number here: a
                    # repeated SYN or FIN ending at nextseq is a retransmission)
                    af |= C_OOO
                elif seglen > 0 and rev.lastack and \
                        not _gt(<uint32_t>(seq + seglen), rev.lastack):
                    af |= C_SPURIOUS | C_RETRANS
                elif not_adv:
                    af |= C_RETRANS

        nxt = <uint32_t>(seq + seglen + (1 if flags & (F_SYN | F_FIN) else 0))
        if not af & C_ZWP:
            if _gt(nxt, fwd.nextseq) or not fwd.nextseq:
                fwd.nextseq = nxt
                fwd.nextseqtime = ts
            if seq == fwd.maxseqtobeacked or not fwd.maxseqtobeacked:
                fwd.maxseqtobeacked = fwd.nextseq
        fwd.window = win
        fwd.lastack = ack
        fwd.lastacktime = ts
        fwd.lastflags = af
        fwd.last_was_syn = (flags & F_SYN) != 0

        cdef int i
        if self.quiet:
            # the TCP header was cut by the snaplen: Wireshark 4.0 updates its
            # analysis state but shows (and counts) no flag for the frame
            af = 0
        elif not c.tapped:
            c.tapped = True
            self.n_tapped += 1
        if af:
            for i in range(NFLAGS):
                if af >> i & 1:
                    self._counts[i] += 1
            if af & C_RETRANS:
                c.retrans += 1
            if af & C_ZW:
                c.zero_window += 1
        if seglen:
            c.data_packets += 1
        self.last_conn = c
        self.last_dir = fwd_i
        return af

    cdef Connection _resurrect(self, bytes key, const TombRec* tomb, int64_t num, int64_t ts):
        """A late packet of a retired connection: restore its stream and state."""
        cdef Connection c = _conn_for_key(tomb.stream, key, num, ts)
        c.syn_from_a = None if tomb.syn_from_a < 0 else tomb.syn_from_a == 1
        c.syn_frame, c.synack_frame, c.first_rtt = tomb.syn_frame, tomb.synack_frame, tomb.first_rtt
        c.tapped = tomb.tapped != 0
        _load_dir(c.d0, &tomb.d[0])
        _load_dir(c.d1, &tomb.d[1])
        self.evicted_states[_STATES[tomb.state]] -= 1
        self.table[key] = c
        self._index_add(key, c)
        return c

    cdef Connection _new(self, bytes key, int64_t num, int64_t ts):
        old = self.table.get(key)
        if old is not None:          # port reuse: the old stream is finished
            self._retire(<Connection>old, False)
        cdef Connection c = _conn_for_key(self.n_streams, key, num, ts)
        self.n_streams += 1
        self.table[key] = c
        self._index_add(key, c)
        return c


# ------------------------------------------------------------ decoding
ctypedef struct Dec:
    int ok              # 0: no readable IP packet
    int v6
    int vlan
    int fragment
    int later           # a fragment after the first: no transport header
    int proto
    int alen
    const uint8_t* src
    const uint8_t* dst
    int sport
    int dport
    uint32_t seq
    uint32_t ack
    int flags
    int64_t win
    int64_t seglen      # transport payload length the IP header reports (tcp.len)
    Py_ssize_t poff     # offset of the payload in the frame
    Py_ssize_t plen     # captured payload bytes (<= seglen)
    int wscale
    int hdr_cut         # the TCP header (with its options) is not all captured
    int frag_nxt        # fragment: the protocol the datagram carries
    uint32_t frag_id    # fragment: IPv4 identification or IPv6 fragment identification
    int64_t frag_off    # fragment: offset of its data in the datagram (bytes)
    int frag_more       # fragment: more fragments follow
    int64_t frag_len    # fragment: data length the IP header declares
    Py_ssize_t fpoff    # fragment: offset of its data in the frame
    Py_ssize_t fplen    # fragment: captured data bytes (<= frag_len)


cdef inline bint _supported(int lt):
    return lt == 0 or lt == 1 or lt == 12 or lt == 14 or lt == 101 or lt == 108 or lt == 113 \
        or lt == 228 or lt == 229 or lt == 276


cdef int _window_scale_c(const uint8_t* data, Py_ssize_t off, Py_ssize_t end):
    """The window-scale shift from TCP options, or -1 when absent."""
    cdef int kind, ln
    while off < end:
        kind = data[off]
        if kind == 0:
            break
        if kind == 1:
            off += 1
            continue
        if off + 1 >= end:
            break
        ln = data[off + 1]
        if ln < 2:
            break
        if kind == 3 and ln == 3 and off + 2 < end:
            return data[off + 2] if data[off + 2] < 14 else 14
        off += ln
    return -1


cdef inline bint _ipv6_ext(int p):
    return p == 0 or p == 43 or p == 60 or p == 135 or p == 139 or p == 140 or p == 253 or p == 254


cdef inline void _captured(Dec* d, Py_ssize_t dl) noexcept:
    """Set ``d.plen``: the payload bytes captured from ``d.poff`` (at most ``d.seglen``)."""
    d.plen = dl - d.poff
    if d.plen > d.seglen:
        d.plen = d.seglen
    if d.plen < 0:
        d.plen = 0


cdef void _decode(int lt, const uint8_t* data, Py_ssize_t dl, int64_t orig, Dec* d):
    """Decode one frame into ``d`` (``d.ok`` is 0 when it holds no readable IP packet).

    ``orig`` is the frame's length on the wire; an IP length beyond it is cut
    to it, as Wireshark does ("total length exceeds packet length").
    """
    cdef int et = -1
    cdef Py_ssize_t off = 0
    cdef uint32_t fam
    d.ok = 0
    d.vlan = 0
    d.fragment = 0
    d.later = 0
    d.wscale = -1
    d.hdr_cut = 0
    d.sport = d.dport = 0
    d.seq = d.ack = 0
    d.flags = 0
    d.win = 0
    d.seglen = 0
    d.poff = 0
    d.plen = 0
    # ---- link layer
    if lt == 1:
        if dl < 14:
            return
        et = _u16be(data + 12)
        off = 14
        while (et == 0x8100 or et == 0x88A8 or et == 0x9100 or et == 0x9200) and dl >= off + 4:
            d.vlan = 1
            et = _u16be(data + off + 2)
            off += 4
    elif lt == 101 or lt == 12 or lt == 14 or lt == 228 or lt == 229:
        if dl < 1:
            return
        et = 0x0800 if data[0] >> 4 == 4 else (0x86DD if data[0] >> 4 == 6 else -1)
    elif lt == 113:
        if dl < 16:
            return
        et = _u16be(data + 14)
        off = 16
    elif lt == 276:
        if dl < 20:
            return
        et = _u16be(data)
        off = 20
    elif lt == 0 or lt == 108:
        if dl < 4:
            return
        fam = _u32le(data) if (lt == 0 and data[0]) else _u32be(data)
        if fam == 2:
            et = 0x0800
        elif fam == 10 or fam == 24 or fam == 28 or fam == 30:
            et = 0x86DD
        else:
            return
        off = 4
    else:
        return
    cdef int64_t wire = (orig if orig >= dl else dl) - off
    cdef int ihl, proto, frag, nxt, fo, hl
    cdef int64_t tlen, plen6, l4len
    cdef Py_ssize_t l4, end
    if et == 0x0800:
        if dl < off + 20:
            return
        ihl = (data[off] & 0x0F) * 4
        if data[off] >> 4 != 4 or ihl < 20:
            return
        tlen = _u16be(data + off + 2)
        if tlen < ihl:          # TSO / zero length: trust the capture
            tlen = wire
        elif tlen > wire:
            tlen = wire
        frag = _u16be(data + off + 6)
        proto = data[off + 9]
        d.src = data + off + 12
        d.dst = data + off + 16
        d.alen = 4
        d.v6 = 0
        l4 = off + ihl
        l4len = tlen - ihl
        if frag & 0x3FFF:
            d.fragment = 1
            d.frag_id = _u16be(data + off + 4)
            d.frag_nxt = proto
            d.frag_off = (frag & 0x1FFF) * 8
            d.frag_more = 1 if frag & 0x2000 else 0
            d.frag_len = l4len if l4len > 0 else 0
            d.fpoff = l4
            d.fplen = dl - l4 if dl - l4 < d.frag_len else d.frag_len
            if frag & 0x1FFF:   # not the first fragment: no transport header
                d.later = 1
                d.proto = proto
                d.ok = 1
                return
    elif et == 0x86DD:
        if dl < off + 40:
            return
        plen6 = _u16be(data + off + 4)
        proto = data[off + 6]
        d.src = data + off + 8
        d.dst = data + off + 24
        d.alen = 16
        d.v6 = 1
        l4 = off + 40
        if plen6:
            end = l4 + (plen6 if plen6 < wire - 40 else wire - 40)
        else:
            end = l4 + wire - 40
        while _ipv6_ext(proto) or proto == 44 or proto == 51:
            if dl < l4 + 8:
                return
            nxt = data[l4]
            if proto == 44:
                fo = _u16be(data + l4 + 2)
                if not fo & 0xFFF9:
                    # an atomic fragment (offset 0, no more): a whole packet (RFC 6946),
                    # dissected as such by Wireshark
                    l4 += 8
                    proto = nxt
                    continue
                d.fragment = 1
                d.frag_id = _u32be(data + l4 + 4)
                d.frag_nxt = nxt
                d.frag_off = fo & 0xFFF8
                d.frag_more = fo & 1
                d.frag_len = end - l4 - 8 if end - l4 - 8 > 0 else 0
                d.fpoff = l4 + 8
                d.fplen = dl - d.fpoff if dl - d.fpoff < d.frag_len else d.frag_len
                if d.fplen < 0:
                    d.fplen = 0
                if fo & 0xFFF8:
                    d.later = 1
                    d.proto = nxt
                    d.ok = 1
                    return
                hl = 8
            elif proto == 51:
                hl = (data[l4 + 1] + 2) * 4
            else:
                hl = (data[l4 + 1] + 1) * 8
            proto = nxt
            l4 += hl
        l4len = end - l4
    else:
        return
    d.proto = proto
    cdef int doff, ulen
    cdef int64_t n
    if proto == 6:
        if dl < l4 + 20:
            d.ok = d.fragment       # a first fragment is still an IP fragment
            return
        d.sport = _u16be(data + l4)
        d.dport = _u16be(data + l4 + 2)
        d.seq = _u32be(data + l4 + 4)
        d.ack = _u32be(data + l4 + 8)
        doff = data[l4 + 12]
        hl = (doff >> 4) * 4
        if hl < 20:
            d.ok = d.fragment
            return
        d.flags = data[l4 + 13] | ((doff & 1) << 8)
        d.win = _u16be(data + l4 + 14)
        d.hdr_cut = dl < l4 + hl
        if d.flags & 0x02 and hl > 20:
            d.wscale = _window_scale_c(data, l4 + 20, l4 + hl if l4 + hl < dl else dl)
        d.seglen = l4len - hl if l4len > hl else 0
        d.poff = l4 + hl
        if d.seglen:
            _captured(d, dl)
        d.ok = 1
        return
    if proto == 17:
        if dl < l4 + 8:
            d.ok = d.fragment
            return
        d.sport = _u16be(data + l4)
        d.dport = _u16be(data + l4 + 2)
        ulen = _u16be(data + l4 + 4)
        n = (ulen if ulen >= 8 else l4len) - 8
        d.seglen = n if n > 0 else 0
        d.poff = l4 + 8
        _captured(d, dl)
        d.ok = 1
        return
    d.seglen = l4len if l4len > 0 else 0
    d.ok = 1


def decode_tuple(int linktype, bytes data, int64_t orig_len=-1):
    """Decode one frame; the fields of :class:`~.decode.Decoded` as a tuple, or ``None``."""
    cdef Dec d
    cdef const uint8_t* p = <const uint8_t*>PyBytes_AS_STRING(data)
    _decode(linktype, p, PyBytes_GET_SIZE(data), orig_len, &d)
    if not d.ok:
        return None
    src = PyBytes_FromStringAndSize(<const char*>d.src, d.alen)
    dst = PyBytes_FromStringAndSize(<const char*>d.dst, d.alen)
    if d.later:
        return (src, dst, d.proto, 0, 0, 0, 0, 0, 0, 0, b"", -1, True, bool(d.vlan))
    payload = PyBytes_FromStringAndSize(<const char*>(p + d.poff), d.plen) \
        if (d.plen and d.proto in (6, 17)) else b""
    return (src, dst, d.proto, d.sport, d.dport, d.seq, d.ack, d.flags, d.win, d.seglen,
            payload, d.wscale, bool(d.fragment), bool(d.vlan))


# ------------------------------------------------------------ application feed
cdef uint32_t _M32 = 0xFFFFFFFFu


cdef class Feed:
    """In-order byte feeding of one TCP direction to an application parser.

    Segments after a hole inside a message wait (a few, bounded) for the
    retransmission that fills it, as Wireshark's reassembly does; when too many
    wait, the parser is told about the gap and resynchronises on what follows.
    A segment after a hole between two messages, or after the end of a message
    of known length that cannot complete, is parsed at once as the start of a
    new message (Wireshark dissects it so); what waited for the unfinished
    message is dropped.  As in Wireshark 4.0, a retransmission (not a fast one)
    never fills a hole, an out-of-order segment only while the message's last
    segment has not come (``late``).  A segment in
    the middle of a body the parser skips (its ``skip`` attribute) costs no
    copy and no call.
    """

    cdef public object parser
    cdef public int64_t next      # -1: no byte seen yet
    cdef public dict held
    cdef public int late          # this segment: 2 a retransmission, 1 out of order

    MAX_HELD = 48

    def __init__(self, parser):
        self.parser = parser
        self.next = -1
        self.held = None

    def segment(self, int64_t frame, int64_t ts, uint32_t seq, bytes data, Py_ssize_t off,
                int64_t seglen):
        """Feed the segment whose payload is ``data[off:off + seglen]`` (maybe cut short)."""
        cdef Py_ssize_t avail = len(data) - off
        if avail > seglen:
            avail = seglen
        if avail < 0:
            avail = 0
        self.seg(frame, ts, seq, <const uint8_t*>PyBytes_AS_STRING(data) + off, avail, seglen)

    cdef int seg(self, int64_t frame, int64_t ts, uint32_t seq, const uint8_t* p,
                 Py_ssize_t avail, int64_t seglen) except -1:
        cdef int64_t nxt = self.next
        cdef int64_t skip
        cdef uint32_t delta, old
        if nxt < 0:
            nxt = self.next = seq
        if avail < seglen:
            # the snaplen cut the data: Wireshark cannot reassemble it and dissects
            # what was captured alone, wherever it lies in the stream
            _cut(self.parser, frame, ts, PyBytes_FromStringAndSize(<const char*>p, avail))
            delta = <uint32_t>(<uint32_t>(seq + seglen) - <uint32_t>nxt)
            if delta and delta < HALF:
                self.next = <uint32_t>(seq + seglen)
                if self.held:
                    self._drain()
            return 0
        if seq == nxt and not self.held:          # in order, nothing waiting: the common case
            parser = self.parser
            skip = _get_skip(parser)
            if skip > seglen and avail >= seglen:
                _set_skip(parser, skip - seglen)  # the middle of a body: nothing to parse
                self.next = <uint32_t>(nxt + seglen)
                return 0
            payload = PyBytes_FromStringAndSize(<const char*>p, avail)
            self.next = <uint32_t>(nxt + seglen)
            if avail < seglen:    # snaplen cut the data
                _cut(parser, frame, ts, payload)
            else:
                _pfeed(parser, frame, ts, payload)
            return 0
        payload = PyBytes_FromStringAndSize(<const char*>p, avail)
        delta = <uint32_t>(seq - <uint32_t>nxt)
        if delta == 0:
            if self.late == 2 or (self.late and self._end_held()):
                # a retransmission filling a hole, or an out-of-order segment filling
                # it after the message's last segment came: Wireshark 4.0 does not
                # use it, the message stays incomplete
                return 0
            self._feed(frame, ts, payload, seglen)
        elif delta < HALF:                        # a hole before this segment
            if (not self.held and _at_boundary(self.parser)) or \
                    0 <= _message_left(self.parser) <= <int64_t>delta:
                # a hole between two messages, or one inside a message of known length
                # that this segment starts after: Wireshark dissects the segment at once
                # as the start of a new message (only a segment inside the message
                # waits for the retransmission that fills the hole); segments held
                # for the unfinished message go with it
                held = self.held
                if held:
                    for k in list(held):
                        if <uint32_t>(<uint32_t>k - <uint32_t>nxt) < delta:
                            del held[k]
                self.parser.gap()
                self.next = seq
                self._feed(frame, ts, payload, seglen)
                self._drain()
                return 0
            held = self.held
            if held is None:
                held = self.held = {}
            held[seq] = (frame, ts, payload, seglen)
            if len(held) > self.MAX_HELD:
                self._give_up()
            return 0
        else:                                     # starts before what we have
            old = <uint32_t>(<uint32_t>self.next - seq)
            if old >= seglen:
                return 0
            self._feed(frame, ts, payload[old:], seglen - old)
        self._drain()
        return 0

    cdef bint _end_held(self):
        """Does a held segment reach the end of the message in progress?"""
        cdef int64_t left = _message_left(self.parser)
        if left < 0 or not self.held:
            return False
        for k, (_f, _t, _p, n) in self.held.items():
            if <uint32_t>(<uint32_t>k - <uint32_t>self.next) + n >= left:
                return True
        return False

    cdef _drain(self):
        held = self.held
        while held:
            nxt = held.pop(self.next, None)
            if nxt is None:
                # drop held segments that are now entirely old
                for k in [k for k in held if <uint32_t>(<uint32_t>self.next - <uint32_t>k) < HALF]:
                    f, t, p, n = held.pop(k)
                    old = <uint32_t>(<uint32_t>self.next - <uint32_t>k)
                    if old < n:
                        self._feed(f, t, p[old:], n - old)
                if not held or self.next not in held:
                    break
                continue
            self._feed(*nxt)

    def _feed(self, int64_t frame, int64_t ts, bytes payload, int64_t seglen):
        self.next = <uint32_t>(self.next + seglen)
        p = self.parser
        if len(payload) < seglen:        # snaplen cut the data
            _cut(p, frame, ts, payload)
            return
        _pfeed(p, frame, ts, payload)

    def _give_up(self):
        """The hole will not be filled: skip it and go on with what waited."""
        held = self.held
        self.held = None
        self.parser.gap()
        cdef uint32_t delta
        for seq in sorted(held, key=lambda k: <uint32_t>(<uint32_t>k - <uint32_t>self.next)):
            frame, ts, payload, seglen = held[seq]
            delta = <uint32_t>(<uint32_t>seq - <uint32_t>self.next)
            if delta and delta < HALF:
                self.parser.gap()
                self.next = seq
            elif delta:
                continue
            self._feed(frame, ts, payload, seglen)


# ------------------------------------------------------------ the engine
cdef class Engine:
    """One pass over the frames of a capture (see :mod:`.capture`).

    ``make_apps(conn, payload)`` chooses a new stream's application parsers
    (a tuple of two :class:`Feed`, or ``()``); ``dns`` counts DNS messages;
    ``zw_open`` and ``retrans`` are the capture's open zero-window runs and
    retransmission ranges; ``zw_run(stream, receiver, frame, ts)`` makes a
    run.  With ``collect`` set to a list, frames are only listed as
    ``(number, ts_ns, linktype, data, orig_len)`` (the reader's ``packets()``).
    """

    cdef public TcpTracker tcp
    cdef public object dns
    cdef public object make_apps
    cdef public dict zw_open
    cdef public dict retrans
    cdef public object zw_run
    cdef public object format_addr
    cdef public object zw_closed
    cdef public list collect
    cdef public int64_t evict_mask
    cdef public int64_t n, first_ts, last_ts, backwards, order_ts
    cdef public int64_t ipv4, ipv6, vlan_frames, fragments, udp, icmp
    cdef public int64_t rst_frames, syn_frames, synack_frames, non_ip_frames, unsupported
    cdef public dict frags
    cdef int dns_ports[8]
    cdef int n_dns_ports
    cdef public AppSink sink
    cdef Py_ssize_t app_skip         # bytes before the HTTP start found by _http_start
    cdef uint8_t portkind[65536]     # bit 1 HTTP, 2 TLS, 4 SMB, 8 DNS (well-known ports),
                                     # 16 another protocol's (no HTTP by first bytes)

    def __init__(self, tcp=None, dns=None, make_apps=None, zw_open=None, retrans=None,
                 zw_run=None, format_addr=None, zw_closed=None, collect=None,
                 int64_t evict_mask=0xFFF, dns_ports=(53,), sink=None, http_ports=(),
                 tls_ports=(), smb_ports=(), other_ports=()):
        self.tcp = tcp if tcp is not None else TcpTracker()
        self.dns = dns
        self.make_apps = make_apps
        self.zw_open = zw_open if zw_open is not None else {}
        self.retrans = retrans if retrans is not None else {}
        self.zw_run = zw_run
        self.format_addr = format_addr
        self.zw_closed = zw_closed
        self.collect = collect
        self.evict_mask = evict_mask
        self.frags = {}
        ports = sorted(dns_ports)[:8]
        self.n_dns_ports = len(ports)
        for i, p in enumerate(ports):
            self.dns_ports[i] = p
        self.sink = sink
        cdef int k
        for k in range(65536):
            self.portkind[k] = 0
        for bit, group in ((1, http_ports), (2, tls_ports), (4, smb_ports), (8, dns_ports),
                           (16, other_ports)):
            for p in group:
                self.portkind[<uint16_t>p] |= bit

    cdef inline bint _is_dns(self, int port):
        cdef int i
        for i in range(self.n_dns_ports):
            if self.dns_ports[i] == port:
                return True
        return False

    def pcap_block(self, const uint8_t[::1] buf, Py_ssize_t pos, Py_ssize_t size, int linktype,
                   int64_t mult, bint big_endian, int64_t limit):
        """Analyse every classic-pcap record wholly inside ``buf[:size]`` from ``pos``.

        Returns the offset of the first record not handled: one cut by the
        end of the buffer, or one whose length exceeds ``limit`` (the caller
        tells the two apart and reports damage).
        """
        if size > buf.shape[0]:
            size = buf.shape[0]
        cdef const uint8_t* b = &buf[0] if size else NULL
        cdef uint32_t sec, frac, incl, orig
        cdef Py_ssize_t end
        cdef int64_t ts
        while pos + 16 <= size:
            if big_endian:
                sec, frac, incl, orig = _u32be(b + pos), _u32be(b + pos + 4), \
                    _u32be(b + pos + 8), _u32be(b + pos + 12)
            else:
                sec, frac, incl, orig = _u32le(b + pos), _u32le(b + pos + 4), \
                    _u32le(b + pos + 8), _u32le(b + pos + 12)
            end = pos + 16 + <Py_ssize_t>incl
            if end > size or incl > limit:
                break
            ts = <int64_t>sec * 1_000_000_000 + <int64_t>frac * mult
            if ts < self.order_ts:
                self.backwards += 1
            self.order_ts = ts
            self._frame(ts, linktype, b + pos + 16, incl, orig)
            pos = end
        return pos

    def pcapng_block(self, const uint8_t[::1] buf, Py_ssize_t pos, Py_ssize_t size,
                     bint big_endian, list ifaces):
        """Analyse the run of Enhanced Packet Blocks wholly inside ``buf`` from ``pos``.

        ``ifaces`` holds ``(linktype, ns per tick, offset ns)`` per interface.
        Stops at the first block that is not a plain EPB of a known interface
        with a whole-nanosecond tick, or that looks damaged or crosses the
        buffer's end; the caller reads (and diagnoses) that one.  Returns the
        offset reached.
        """
        if size > buf.shape[0]:
            size = buf.shape[0]
        cdef const uint8_t* b = &buf[0] if size else NULL
        cdef int nif = len(ifaces) if len(ifaces) < 64 else 64
        cdef int lts[64]
        cdef int64_t ticks[64]
        cdef int64_t offs[64]
        cdef int i
        for i in range(nif):
            lt, tick, off = ifaces[i]
            lts[i] = lt
            if type(tick) is int and 1 <= tick <= 1_000_000_000 and -(1 << 62) < off < (1 << 62):
                ticks[i] = tick
                offs[i] = off
            else:
                ticks[i] = 0         # read in Python
        cdef uint32_t btype, blen, iface, incl, orig
        cdef uint64_t raw
        cdef int64_t ts
        while pos + 32 <= size:
            if big_endian:
                btype, blen = _u32be(b + pos), _u32be(b + pos + 4)
            else:
                btype, blen = _u32le(b + pos), _u32le(b + pos + 4)
            if btype != 6 or blen < 32 or blen % 4 or blen > 0x0400_0000 or pos + blen > size:
                break
            if big_endian:
                iface, raw = _u32be(b + pos + 8), \
                    (<uint64_t>_u32be(b + pos + 12) << 32) | _u32be(b + pos + 16)
                incl, orig = _u32be(b + pos + 20), _u32be(b + pos + 24)
            else:
                iface, raw = _u32le(b + pos + 8), \
                    (<uint64_t>_u32le(b + pos + 12) << 32) | _u32le(b + pos + 16)
                incl, orig = _u32le(b + pos + 20), _u32le(b + pos + 24)
            if iface >= <uint32_t>nif or not ticks[iface] or 28 + <uint64_t>incl > blen - 4:
                break
            if raw > <uint64_t>((0x7FFF_FFFF_FFFF_FFFF - (1 << 62)) // ticks[iface]):
                break                # a time stamp beyond what fits: read in Python
            ts = <int64_t>raw * ticks[iface] + offs[iface]
            if ts < self.order_ts:
                self.backwards += 1
            self.order_ts = ts
            self._frame(ts, lts[iface], b + pos + 28, incl, orig)
            pos += blen
        return pos

    def order(self, int64_t ts):
        """Note a record's time stamp read in Python (for the backwards count)."""
        if ts < self.order_ts:
            self.backwards += 1
        self.order_ts = ts

    def frame(self, int64_t ts, int linktype, bytes data, int64_t orig):
        """Analyse one frame (the formats read record by record in Python)."""
        self._frame(ts, linktype, <const uint8_t*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data),
                    orig)

    cdef int _frame(self, int64_t ts, int lt, const uint8_t* data, Py_ssize_t dl,
                    int64_t orig) except -1:
        cdef int64_t n = self.n + 1
        self.n = n
        if n == 1:
            self.first_ts = ts
        self.last_ts = ts
        if self.collect is not None:
            self.collect.append((n, ts, lt, PyBytes_FromStringAndSize(<const char*>data, dl), orig))
            return 0
        cdef TcpTracker tcp = self.tcp
        if not n & self.evict_mask:
            tcp.evict(ts)
            if not n & 0xFFFFF:
                tcp.sweep_idle(ts)
        cdef Dec d
        _decode(lt, data, dl, orig, &d)
        if not d.ok:
            if not _supported(lt):
                self.unsupported += 1
            else:
                self.non_ip_frames += 1
            return 0
        if d.v6:
            self.ipv6 += 1
        else:
            self.ipv4 += 1
        if d.vlan:
            self.vlan_frames += 1
        cdef bytes whole
        if d.fragment:
            self.fragments += 1
            whole = self._defragment(&d, data)
            if whole is None:
                return 0
            # the datagram is complete: analyse it in this frame, as Wireshark's
            # IP reassembly (on by default) does
            data = <const uint8_t*>PyBytes_AS_STRING(whole)
            _decode(101, data, PyBytes_GET_SIZE(whole), PyBytes_GET_SIZE(whole), &d)
            if not d.ok:
                return 0
        cdef int flags = d.flags
        cdef int fwd_i = 0
        cdef int af
        cdef Py_ssize_t skip
        cdef Connection c
        cdef uint8_t kbuf[36]
        cdef int klen
        cdef Feed fd
        if d.proto == 6:
            if flags & 6:                  # RST or SYN
                if flags & 4:
                    self.rst_frames += 1
                if flags & 2:
                    if flags & 16:
                        self.synack_frames += 1
                    else:
                        self.syn_frames += 1
            klen = _fill_key(d.src, d.sport, d.dst, d.dport, d.alen, kbuf, &fwd_i)
            tcp.quiet = d.hdr_cut
            af = tcp._segment(n, ts, kbuf, klen, fwd_i, d.seq, d.ack, flags, d.win, d.seglen,
                              d.wscale)
            tcp.quiet = False
            c = tcp.last_conn
            if af:
                if af & C_RETRANS:
                    r = self.retrans.get(c.stream)
                    self.retrans[c.stream] = (r[0], n, r[2], ts) if r else (n, n, ts, ts)
                if af & C_ZW:
                    zkey = (c.stream, fwd_i)
                    run = self.zw_open.get(zkey)
                    if run is None:
                        self.zw_open[zkey] = self.zw_run(
                            c.stream, self.format_addr(PyBytes_FromStringAndSize(
                                <const char*>d.src, d.alen)), n, ts)
                        c.zw |= 1 << fwd_i
                    else:
                        run.last_frame, run.last_ts = n, ts
                        run.packets += 1
            if c.zw and d.win and not flags & 6:     # not SYN, not RST
                run = self.zw_open.pop((c.stream, fwd_i), None)
                if run is not None:
                    c.zw &= ~(1 << fwd_i)
                    run.end_ts = ts
                    self._zw_closed(run)
            if d.seglen and not d.hdr_cut and (
                    (not af & C_SPURIOUS) if d.plen >= d.seglen else
                    (not af & C_RETRANS or af & C_SPURIOUS)):
                # Wireshark 4.0 gives a spurious retransmission's data to no dissector;
                # a retransmission or out-of-order segment (not a fast retransmission)
                # is "late" (see Feed.seg).  When the snaplen cut the segment it is
                # dissected alone, also a spurious retransmission, not a plain one.
                a = c.apps
                skip = 0
                if a is None:
                    a = self._apps(c, data + d.poff, d.plen, fwd_i)
                    skip = self.app_skip
                elif a is _MAYBE_HTTP:
                    # no protocol yet: each segment may start HTTP, as in tshark
                    if d.plen and _HTTP_START[data[d.poff]]:
                        a = self._http_later(c, data + d.poff, d.plen, fwd_i)
                        skip = self.app_skip
                    else:
                        a = ()
                if PyTuple_GET_SIZE(a):
                    fd = <Feed>(<tuple>a)[fwd_i]
                    fd.late = 0 if af & C_FAST else (2 if af & C_RETRANS else (
                        1 if af & C_OOO else 0))
                    fd.seg(n, ts, d.seq + <uint32_t>skip, data + d.poff + skip, d.plen - skip,
                           d.seglen - skip)
            if self.sink is not None and c.client_side >= 0 and (
                    c.apps is _MAYBE_HTTP or (type(c.apps) is tuple and PyTuple_GET_SIZE(c.apps) == 0)):
                self._turn(c, n, ts, fwd_i == c.client_side,
                           d.seglen > 0 and not af & (C_RETRANS | C_SPURIOUS | C_KA), flags)
        elif d.proto == 17:
            self.udp += 1
            if d.plen and (self._is_dns(d.sport) or self._is_dns(d.dport)):
                self._dns(n, ts, &d, data)
        elif d.proto == 1 or d.proto == 58:
            self.icmp += 1
        return 0

    cdef int _turn(self, Connection c, int64_t n, int64_t ts, bint from_client, bint data,
                   int flags) except -1:
        """Request and answer turns of a stream in a protocol Backline does not decode (a
        database's, a cache's, an in-house RPC's): the client's data opens a request (later
        client segments extend it), the server's next data answers it - the answer time runs
        from the request's last segment (a long upload is not a slow answer).  A client that
        closes (FIN or RST) while a request waits gave up on it; after a FIN a late answer is
        still an answer (a client may only have closed its sending side), after a RST the
        server's data answers nothing.  Reported to :attr:`sink` (``tcp_answer``,
        ``tcp_given_up``, ``tcp_unasked``)."""
        if from_client:
            if data and not c.turn_dropped:
                if c.turn_frame == 0:
                    c.turn_frame = n
                    c.turn_first_ts = ts
                    c.turn_given = False
                c.turn_ts = ts
            if flags & (F_FIN | F_RST) and c.turn_frame and not c.turn_dropped:
                if not c.turn_given:
                    self.sink.tcp_given_up(c, c.turn_frame, c.turn_first_ts, c.turn_ts, n, ts)
                    c.turn_given = True
                if flags & F_RST:
                    c.turn_frame = 0
                    c.turn_dropped = True
        elif data and not c.turn_dropped:
            if c.turn_frame:
                self.sink.tcp_answer(c, c.turn_frame, c.turn_first_ts, c.turn_ts, n, ts)
                c.turn_frame = 0
            elif c.turn_unasked < UNASKED_KEPT:
                # a few per stream tell a feed from a server that answers; a bulk stream's every
                # segment would only cost time
                c.turn_unasked += 1
                self.sink.tcp_unasked(c)
        elif flags & (F_FIN | F_RST):
            c.turn_frame = 0             # the server closed: no answer to wait for
        return 0

    cdef object _apps(self, Connection c, const uint8_t* p, Py_ssize_t n, int from_b):
        """Set ``c.apps`` (:meth:`_choose_apps`); the parsers for this segment (``()`` for a
        stream whose protocol is still open)."""
        self.app_skip = 0
        a = c.apps = self._choose_apps(c, p, n, from_b)
        return () if a is _MAYBE_HTTP else a

    cdef object _choose_apps(self, Connection c, const uint8_t* p, Py_ssize_t n, int from_b):
        """Choose a new stream's application parsers from its ports (and first bytes).

        ``p[:n]`` is the stream's first payload, sent by side b when ``from_b``.
        A stream on no HTTP, SMB, DNS or other protocol's port (a TLS port is
        allowed: plain HTTP sent to an HTTPS port) whose first payload is an
        HTTP/1.x start line (:meth:`_http_start`) gets the HTTP parsers, as
        Wireshark's ``http_tcp`` heuristic gives it to HTTP; on no port at all
        and not TLS by its first bytes, it is ``_MAYBE_HTTP`` and each later
        segment is tried (:meth:`_http_later`).  HTTP and TLS parsers report to
        :attr:`sink`; DNS over TCP and SMB2 streams (and every stream when there
        is no sink) are set up by the Python ``make_apps``.
        """
        if self.sink is None:
            return self.make_apps(c, PyBytes_FromStringAndSize(<const char*>p, n))
        cdef int ka = self.portkind[c.ap], kb = self.portkind[c.bp]
        cdef int head = 0
        cdef TlsParser t0, t1
        if not (ka | kb) & ~2:      # on no port of ours, or on a TLS port (as in tshark)
            head = self._http_start(p, n)
        if (ka | kb) & 1 or head:
            return self._http_parsers(c, head, from_b)
        self._set_client(c, 0, 0)
        if c.ap == 53 or c.bp == 53 or (ka | kb) & 4:
            return self.make_apps(c, PyBytes_FromStringAndSize(<const char*>p, n))
        if (ka | kb) & 2 or _looks_tls(p, n):
            t0 = TlsParser(None, None)
            t1 = TlsParser(None, None)
            t0.sink = t1.sink = self.sink
            t0.conn = t1.conn = c
            t1.side = 1
            return (Feed(t0), Feed(t1))
        # on no port of ours nor of another protocol: a later segment may start HTTP
        return _MAYBE_HTTP if not (ka | kb) else ()

    cdef object _http_later(self, Connection c, const uint8_t* p, Py_ssize_t n, int from_b):
        """A later segment of a stream with no protocol yet: HTTP parsers from here when it
        starts with an HTTP/1.x start line (tshark's heuristic tries every segment), else ()."""
        self.app_skip = 0
        cdef int head = self._http_start(p, n)
        if not head:
            return ()
        a = c.apps = self._http_parsers(c, head, from_b)
        return a

    cdef int _http_start(self, const uint8_t* p, Py_ssize_t n):
        """:func:`_http_first_line` of ``p[:n]``, or of what follows a PROXY protocol v1
        line (a load balancer's ``PROXY TCP4 src dst sport dport``; tshark's ``proxy``
        heuristic hands the rest on); :attr:`app_skip` is then that line's length."""
        cdef int head = _http_first_line(p, n)
        cdef const uint8_t* lf
        cdef Py_ssize_t k
        if head or n < 16 or memcmp(p, b"PROXY ", 6) != 0:
            return head
        lf = <const uint8_t*>memchr(p, 10, n if n < 108 else 108)   # v1 lines: <= 107 bytes
        if lf == NULL or lf == p or lf[-1] != 13:
            return 0
        k = lf - p + 1
        head = _http_first_line(p + k, n - k)
        if head:
            self.app_skip = k
        return head

    cdef int _set_client(self, Connection c, int head, int from_b) except -1:
        """Decide the stream's client: the SYN's sender when seen, else the sender of an HTTP
        request line (the receiver of a status line), else the side off the well-known port."""
        cdef bint a_is_client
        if c.syn_frame:
            a_is_client = c.syn_from_a is None or bool(c.syn_from_a)
        elif head:
            a_is_client = (head == 1) != bool(from_b)
        else:
            a_is_client = (self.portkind[c.bp] & 15) != 0 or c.bp < c.ap
        c.client_side = 0 if a_is_client else 1
        return 0

    cdef tuple _http_parsers(self, Connection c, int head, int from_b):
        """The two directions' HTTP parsers, reporting to :attr:`sink`, client side first."""
        cdef HttpParser req, resp
        self._set_client(c, head, from_b)
        req = HttpParser(None, None)
        resp = HttpParser(None, None)
        req.sink = resp.sink = self.sink
        req.conn = resp.conn = c
        req.peer = resp
        return (Feed(req), Feed(resp)) if c.client_side == 0 else (Feed(resp), Feed(req))

    cdef object _defragment(self, Dec* d, const uint8_t* data):
        """Add one IP fragment; the whole datagram (a raw IP packet) once complete, else None.

        Like Wireshark's ``fragment_add_check``: keyed by addresses, identification
        (and protocol for IPv4); a fragment whose data was not all captured is not
        added, so its datagram never completes; the first copy of a piece wins.
        """
        src = PyBytes_FromStringAndSize(<const char*>d.src, d.alen)
        dst = PyBytes_FromStringAndSize(<const char*>d.dst, d.alen)
        if d.fplen < d.frag_len:
            return None
        key = (src, dst, d.frag_id, -1 if d.v6 else d.frag_nxt)
        table = self.frags
        ent = table.get(key)
        if ent is None:
            if len(table) >= 10_000:
                del table[next(iter(table))]
            ent = table[key] = [{}, -1]
        pieces = ent[0]
        if d.frag_off not in pieces:
            pieces[d.frag_off] = PyBytes_FromStringAndSize(<const char*>(data + d.fpoff), d.fplen)
        if not d.frag_more:
            ent[1] = d.frag_off + d.frag_len
        total = ent[1]
        if total < 0:
            return None
        got = 0
        for off in sorted(pieces):
            if off > got:
                return None
            got = max(got, off + len(pieces[off]))
        if got < total:
            return None
        del table[key]
        if total > 65_515:          # cannot be one IP packet: leave it unanalysed
            return None
        body = bytearray(total)
        for off in sorted(pieces, reverse=True):      # the first-added piece wins overlaps
            piece = pieces[off]
            body[off:off + len(piece)] = piece
        body = bytes(body[:total])
        if d.v6:
            return struct.pack("!IHBB", 6 << 28, total, d.frag_nxt, 64) + src + dst + body
        return struct.pack("!BBHHHBBH", 0x45, 0, 20 + total, d.frag_id, 0, 64, d.frag_nxt,
                           0) + src + dst + body

    cdef _dns(self, int64_t n, int64_t ts, Dec* d, const uint8_t* data):
        cdef bint client_side = self._is_dns(d.dport) and not (self._is_dns(d.sport)
                                                                and d.sport < d.dport)
        src = PyBytes_FromStringAndSize(<const char*>d.src, d.alen)
        dst = PyBytes_FromStringAndSize(<const char*>d.dst, d.alen)
        if client_side:
            conv = (src, d.sport, dst, d.dport)
        else:
            conv = (dst, d.dport, src, d.sport)
        if type(self.dns) is DnsTracker:
            (<DnsTracker>self.dns)._message(n, ts, conv, data + d.poff, d.plen, conv[2],
                                            d.plen < d.seglen)
        else:
            self.dns.message(n, ts, conv, PyBytes_FromStringAndSize(
                <const char*>(data + d.poff), d.plen), client_side, conv[2], d.plen < d.seglen)

    cdef _zw_closed(self, run):
        closed = self.zw_closed
        if closed is not None:
            closed(run)


# ------------------------------------------------------------ HTTP/1.x
cdef extern from "string.h":
    void* memmem(const void* haystack, size_t hlen, const void* needle, size_t nlen) nogil
    const void* memchr(const void* s, int c, size_t n) nogil

cdef const char* _METHODS[23]
#: Request methods a message may start with (and a space).
METHODS = (b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ",
           b"CONNECT ", b"TRACE ", b"PROPFIND ", b"PROPPATCH ", b"MKCOL ", b"COPY ",
           b"MOVE ", b"LOCK ", b"UNLOCK ", b"RPC_IN_DATA ", b"RPC_OUT_DATA ", b"SEARCH ",
           b"REPORT ", b"NOTIFY ", b"SUBSCRIBE ", b"M-SEARCH ")
cdef tuple _METHODS_HELD = METHODS     # keeps the bytes _METHODS points into alive
cdef int _METHOD_LEN[23]
cdef bytes _m
for _i in range(23):
    _m = _METHODS_HELD[_i]
    _METHODS[_i] = <const char*>_m
    _METHOD_LEN[_i] = len(_m)

cdef enum:
    H_HEAD = 0
    H_BODY = 1
    H_CHUNK_SIZE = 2
    H_CHUNK_DATA = 3
    H_CHUNK_TRAILER = 4
    H_UNTIL_CLOSE = 5
    H_LOST = 6
    MAX_HEAD = 64 * 1024


cdef bint _looks_http(const uint8_t* p, Py_ssize_t n):
    """Does a message start here (``HTTP/1.`` or a request method and a space)?"""
    cdef int i
    if n >= 7 and memcmp(p, b"HTTP/1.", 7) == 0:
        return True
    for i in range(23):
        if n >= _METHOD_LEN[i] and memcmp(p, _METHODS[i], _METHOD_LEN[i]) == 0:
            return True
    return False


cdef bint _http_prefix(const uint8_t* p, Py_ssize_t n):
    """Could a message start with these few bytes (a prefix of ``HTTP/1.`` or a method)?"""
    cdef int i
    if n <= 0:
        return False
    if n <= 7 and memcmp(p, b"HTTP/1.", n) == 0:
        return True
    for i in range(23):
        if n <= _METHOD_LEN[i] and memcmp(p, _METHODS[i], n) == 0:
            return True
    return False


def looks_like_http(bytes data):
    return _looks_http(<const uint8_t*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))


cdef inline Py_ssize_t _line_end(const uint8_t* p, Py_ssize_t n, Py_ssize_t i):
    """``i`` if a line ends there (CRLF or a bare LF), else -1."""
    if i < n and p[i] == 10:
        return i
    if i + 1 < n and p[i] == 13 and p[i + 1] == 10:
        return i
    return -1


cdef int _http_first_line(const uint8_t* p, Py_ssize_t n):
    """Is the whole first line an HTTP/1.x start line?  1 a request, 2 a status line, 0 not.

    Request: a method of :data:`METHODS`, a space, a target of visible
    characters, a space, ``HTTP/1.0`` or ``HTTP/1.1`` and the line's end (CRLF or
    LF).  Status: ``HTTP/1.0`` or ``HTTP/1.1``, a space, three digits, then the
    line's end or a space and a reason phrase without control characters.
    The line must end inside ``p[:n]``.  So SIP (``INVITE sip:x SIP/2.0``,
    ``SIP/2.0 200 OK``), RTSP (``RTSP/1.0``), SMTP, FTP, POP3, IMAP, Redis and
    memcached lines are not taken for HTTP.
    """
    cdef Py_ssize_t i, m, t
    cdef int k
    if n >= 13 and memcmp(p, b"HTTP/1.", 7) == 0 and (p[7] == 48 or p[7] == 49) \
            and p[8] == 32 and 48 <= p[9] <= 57 and 48 <= p[10] <= 57 and 48 <= p[11] <= 57:
        if _line_end(p, n, 12) >= 0:
            return 2
        if p[12] != 32:
            return 0
        i = 13
        while i < n and (p[i] >= 32 or p[i] == 9) and p[i] != 127:
            i += 1
        return 2 if _line_end(p, n, i) >= 0 else 0
    if n < 15:                      # "GET / HTTP/1.1" and an LF: the shortest request line
        return 0
    for k in range(23):
        m = _METHOD_LEN[k]
        if <uint8_t>_METHODS[k][0] == p[0] and memcmp(p, _METHODS[k], m) == 0:
            break
    else:
        return 0
    t = m
    while t < n and p[t] > 32 and p[t] != 127:
        t += 1
    if t == m or n - t < 10 or p[t] != 32 or memcmp(p + t + 1, b"HTTP/1.", 7) != 0 \
            or not (p[t + 8] == 48 or p[t + 8] == 49):
        return 0
    return 1 if _line_end(p, n, t + 9) >= 0 else 0


#: the first bytes an HTTP/1.x start line can have (``H``, or a method's first letter,
#: which include PROXY's ``P``)
cdef bint _HTTP_START[256]
for _i in range(256):
    _HTTP_START[_i] = _i == 72          # 'H' of HTTP/1.x
for _i in range(23):
    _HTTP_START[<uint8_t>_METHODS[_i][0]] = True

#: ``Connection.apps`` of a stream with no protocol yet, on no port of ours nor of
#: another protocol: each later data segment is tried as the start of HTTP
cdef tuple _MAYBE_HTTP = (None,)


def http_first_line(bytes data):
    """What a stream's first payload starts with: 1 an HTTP request line, 2 a status line,
    0 neither (the test that gives a stream on no known port to HTTP)."""
    return _http_first_line(<const uint8_t*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))


cdef inline bint _ws(uint8_t c):
    return c == 32 or c == 9 or c == 10 or c == 13 or c == 11 or c == 12


cdef inline bint _name_is(const uint8_t* p, Py_ssize_t n, const char* want, Py_ssize_t wn):
    """Case-insensitive compare of a header name with a lower-case ``want``."""
    cdef Py_ssize_t i
    cdef uint8_t ch
    if n != wn:
        return False
    for i in range(n):
        ch = p[i]
        if 65 <= ch <= 90:
            ch += 32
        if ch != <uint8_t>want[i]:
            return False
    return True


#: Largest HTTP body length believed (Content-Length, chunk size); larger is damage, not a body.
cdef int64_t _MAX_BODY = 1 << 50


cdef class HttpParser:
    """Parse one direction of an HTTP/1.x stream.

    ``on_request(frame, ts, method, path, host)`` and ``on_response(frame,
    ts, status)`` are called when a message is complete (its head, and its
    body when it has one).  Bodies are skipped by Content-Length or chunked
    coding; after a gap the parser waits for the next message start.
    """

    cdef public object on_request
    cdef public object on_response
    cdef public int state
    cdef public bytes buf
    cdef public int64_t remaining
    cdef public int64_t head_frame
    cdef public int64_t head_ts
    cdef public bint expect_no_body   # set by the engine when the request was HEAD
    cdef public object pending        # (callback, args) until the body is complete
    cdef public int64_t skip          # body bytes still to pass over
    cdef public AppSink sink          # the capture's collector (then no callbacks are used)
    cdef public Connection conn       # ... and the stream it reports for
    cdef public HttpParser peer       # the other direction (told when a request was HEAD)

    def __init__(self, on_request, on_response):
        self.on_request = on_request
        self.on_response = on_response
        self.state = H_HEAD
        self.buf = b""
        self.skip = 0
        self.pending = None

    def gap(self):
        """Bytes are missing: drop partial state and wait for a message start.

        A message whose body was cut is not reported (Wireshark cannot
        reassemble it either).
        """
        self.state = H_LOST
        self.buf = b""
        self.pending = None
        self.skip = 0           # a body being skipped is gone too (the Feed would
                                # otherwise skip the next message's bytes)

    cdef _cut_segment(self, int64_t frame, int64_t ts, bytes data):
        """A segment cut by the snaplen: Wireshark cannot reassemble it and gives
        what was captured to HTTP alone.  tshark 4.0.17 then shows a status code
        when ``HTTP/1.x NNN`` was captured, and a request when the method name
        was, unless the data ends inside a header name (it throws before adding
        ``http.request``)."""
        self.gap()
        cdef const uint8_t* p = <const uint8_t*>PyBytes_AS_STRING(data)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
        cdef Py_ssize_t off = 0, i, m
        cdef const uint8_t* hit
        cdef bint ok = False
        while off < n and (p[off] == 13 or p[off] == 10):
            off += 1
        p += off
        n -= off
        if n >= 7 and memcmp(p, b"HTTP/1.", 7) == 0:
            ok = n >= 12 and p[8] == 32 and 48 <= p[9] <= 57 and 48 <= p[10] <= 57 \
                and 48 <= p[11] <= 57
        else:
            for i in range(23):
                m = _METHOD_LEN[i] - 1               # the name without its space
                if n >= m and memcmp(p, _METHODS[i], m) == 0 and (n == m or p[m] == 32):
                    ok = True
                    break
            if ok:
                i = n - 1                            # the last line: a cut header name?
                while i >= 0 and p[i] != 10:
                    i -= 1
                if i >= 0 and n - i - 1 > 0 and not (n - i - 1 == 1 and p[n - 1] == 13) \
                        and memchr(p + i + 1, 58, n - i - 1) == NULL:
                    ok = False
        if not ok:
            return
        hit = <const uint8_t*>memmem(p, n, b"\r\n\r\n", 4)
        self.state = H_HEAD
        self._head(frame, ts, p, (hit - p) if hit != NULL else n)
        if self.pending is not None:            # a body that will not come: report now
            kind, args = self.pending
            self.pending = None
            self._report(kind, frame, ts, args)
        self.gap()

    cdef _done(self, int64_t frame, int64_t ts):
        """The current message is complete in ``frame``: report it."""
        self.state = H_HEAD
        if self.pending is not None:
            kind, args = self.pending
            self.pending = None
            self._report(kind, frame, ts, args)

    cdef _report(self, int kind, int64_t frame, int64_t ts, tuple args):
        """Report a request (kind 0: method, path, host) or a response (1: status)."""
        if self.sink is not None:
            if kind == 0:
                if args[0] == "HEAD" and self.peer is not None:
                    self.peer.expect_no_body = True
                self.sink.http_request(self.conn, frame, ts, args[0], args[1], args[2])
            else:
                self.sink.http_response(self.conn, frame, ts, args[0])
        elif kind == 0:
            self.on_request(frame, ts, *args)
        else:
            self.on_response(frame, ts, *args)

    def feed(self, int64_t frame, int64_t ts, bytes data):
        self._feed(frame, ts, data)

    cdef int _feed(self, int64_t frame, int64_t ts, bytes data) except -1:
        cdef Py_ssize_t off = 0
        cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
        cdef const uint8_t* p = <const uint8_t*>PyBytes_AS_STRING(data)
        cdef Py_ssize_t i, k, start
        cdef const uint8_t* hit
        cdef int st
        cdef bytes buf, line
        if self.state == H_LOST:
            if not _looks_http(p, n) and not (n < 8 and _http_prefix(p, n)):
                # (a few bytes that may begin a message, such as a zero-window
                # probe's one byte, are kept: Wireshark asks for one more segment)
                return 0
            self.state = H_HEAD
        while off < n:
            st = self.state
            if st == H_HEAD:
                if not PyBytes_GET_SIZE(self.buf):
                    # skip stray CRLFs between messages
                    while off < n and (p[off] == 13 or p[off] == 10):
                        off += 1
                    if off >= n:
                        return 0
                    if n - off >= 8 and not _looks_http(p + off, min(n - off, 16)):
                        self.state = H_LOST
                        return 0
                    self.head_frame, self.head_ts = frame, ts
                    hit = <const uint8_t*>memmem(p + off, n - off, b"\r\n\r\n", 4)
                    if hit == NULL:
                        self.buf = data[off:]
                        if n - off > MAX_HEAD:
                            self.gap()
                        return 0
                    i = hit - p
                    self._head(frame, ts, p + off, i - off)
                    off = i + 4
                    continue
                start = PyBytes_GET_SIZE(self.buf) - 3
                if start < 0:
                    start = 0
                buf = self.buf + data[off:]
                i = buf.find(b"\r\n\r\n", start)
                if i < 0:
                    self.buf = buf
                    if PyBytes_GET_SIZE(buf) > MAX_HEAD:
                        self.gap()
                    return 0
                self.buf = b""
                self._head(frame, ts, <const uint8_t*>PyBytes_AS_STRING(buf), i)
                data = buf
                p = <const uint8_t*>PyBytes_AS_STRING(data)
                n = PyBytes_GET_SIZE(data)
                off = i + 4
            elif st == H_BODY:
                k = self.skip if self.skip < n - off else n - off
                self.skip -= k
                off += k
                if not self.skip:
                    self._done(frame, ts)
            elif st == H_CHUNK_SIZE or st == H_CHUNK_TRAILER:
                buf = self.buf + data[off:]
                i = buf.find(b"\r\n")
                if i < 0:
                    self.buf = buf
                    if PyBytes_GET_SIZE(buf) > 4096:
                        self.gap()
                    return 0
                line = buf[:i]
                self.buf = b""
                data = buf
                p = <const uint8_t*>PyBytes_AS_STRING(data)
                n = PyBytes_GET_SIZE(data)
                off = i + 2
                if st == H_CHUNK_TRAILER:
                    if not line:
                        self._done(frame, ts)
                    continue
                try:
                    size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                except ValueError:
                    size = -1
                if not 0 <= size < _MAX_BODY:        # not hex, negative, or past any real body
                    self.gap()
                    return 0
                if size == 0:
                    self.state = H_CHUNK_TRAILER
                else:
                    self.skip = size + 2
                    self.state = H_CHUNK_DATA
            elif st == H_CHUNK_DATA:
                k = self.skip if self.skip < n - off else n - off
                self.skip -= k
                off += k
                if not self.skip:
                    self.state = H_CHUNK_SIZE
            else:   # H_UNTIL_CLOSE or H_LOST
                return 0
        return 0

    cdef _head(self, int64_t frame, int64_t ts, const uint8_t* h, Py_ssize_t hn):
        """One message head (without the blank line): report or wait for its body."""
        cdef Py_ssize_t e, ls, le, c, ns, ne, vs, ve
        cdef const uint8_t* hit
        cdef int64_t clen = -1
        cdef bint chunked = False
        host = ""
        hit = <const uint8_t*>memmem(h, hn, b"\r\n", 2)
        e = (hit - h) if hit != NULL else hn
        first = PyBytes_FromStringAndSize(<const char*>h, e).decode("latin-1", "replace")
        ls = e + 2
        while ls <= hn:
            hit = <const uint8_t*>memmem(h + ls, hn - ls, b"\r\n", 2)
            le = (hit - h) if hit != NULL else hn
            c = ls
            while c < le and h[c] != 58:      # ':'
                c += 1
            ns, ne = ls, c
            while ns < ne and _ws(h[ns]):
                ns += 1
            while ne > ns and _ws(h[ne - 1]):
                ne -= 1
            vs, ve = (c + 1 if c < le else le), le
            while vs < ve and _ws(h[vs]):
                vs += 1
            while ve > vs and _ws(h[ve - 1]):
                ve -= 1
            if _name_is(h + ns, ne - ns, b"content-length", 14):
                try:
                    big = int(PyBytes_FromStringAndSize(<const char*>(h + vs), ve - vs))
                except ValueError:
                    big = -1
                clen = big if 0 <= big < _MAX_BODY else -1
            elif _name_is(h + ns, ne - ns, b"transfer-encoding", 17):
                chunked = b"chunked" in PyBytes_FromStringAndSize(
                    <const char*>(h + c + 1), le - c - 1).lower() if c < le else False
            elif _name_is(h + ns, ne - ns, b"host", 4):
                host = PyBytes_FromStringAndSize(<const char*>(h + vs), ve - vs).decode(
                    "latin-1", "replace")
            ls = le + 2
        cdef int status
        cdef bint no_body
        if first.startswith("HTTP/"):
            parts = first.split(" ", 2)
            # (boundscheck is off in this module: a missing field must be tested, never caught)
            try:
                code = int(parts[1]) if len(parts) > 1 else 0
            except ValueError:
                code = 0
            status = code if 0 <= code < 1000 else 0
            no_body = self.expect_no_body or 100 <= status < 200 or status == 204 or status == 304
            if not 100 <= status < 200:
                self.expect_no_body = False
            if no_body or (clen <= 0 and not chunked):
                # no body, or a body that runs to the close: report now
                self._report(1, frame, ts, (status,))
                self.state = H_HEAD if (no_body or clen == 0) else H_UNTIL_CLOSE
                return
            self.pending = (1, (status,))
        else:
            parts = first.split(" ")
            method = parts[0]
            path = parts[1] if len(parts) > 1 else ""
            if clen <= 0 and not chunked:
                self._report(0, frame, ts, (method, path, host))
                self.state = H_HEAD
                return
            self.pending = (0, (method, path, host))
        if chunked:
            self.state = H_CHUNK_SIZE
        else:
            self.skip = clen
            self.state = H_BODY


# ------------------------------------------------------------ TLS records
cdef inline bint _looks_tls(const uint8_t* p, Py_ssize_t n):
    return n >= 5 and 20 <= p[0] <= 23 and p[1] == 3 and p[2] <= 4


def looks_like_tls(bytes data):
    """Does a TLS record (handshake, alert, CCS or application data) start here?"""
    return _looks_tls(<const uint8_t*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))


_client_hello_fn = None


cdef class TlsParser:
    """Parse one direction's TLS records.

    ``on_alert(frame, ts, level, desc)`` for a plaintext alert;
    ``on_hello(frame, ts, sni, version)`` for a ClientHello.  Application
    data is passed over without copying.
    """

    cdef public object on_alert
    cdef public object on_hello
    cdef public bytes buf
    cdef public bint encrypted
    cdef public bint lost
    cdef public int64_t alert_records
    cdef public int64_t skip          # bytes of an opaque record body still to pass over
    cdef public AppSink sink          # the capture's collector (then no callbacks are used)
    cdef public Connection conn       # ... the stream it reports for
    cdef public int side              # ... and which end sends this direction (0: a, 1: b)

    def __init__(self, on_alert, on_hello):
        self.on_alert = on_alert
        self.on_hello = on_hello
        self.buf = b""

    def gap(self):
        self.buf = b""
        self.lost = True
        self.skip = 0

    def feed(self, int64_t frame, int64_t ts, bytes data):
        self._feed(frame, ts, data)

    cdef int _feed(self, int64_t frame, int64_t ts, bytes data) except -1:
        global _client_hello_fn
        cdef Py_ssize_t off = 0
        cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
        cdef Py_ssize_t k, ln
        cdef int ctype
        cdef const uint8_t* p
        cdef bytes buf
        if self.skip:
            k = self.skip if self.skip < n else n
            self.skip -= k
            off = k
            if off >= n:
                return 0
        if self.lost:
            if not _looks_tls(<const uint8_t*>PyBytes_AS_STRING(data) + off, n - off):
                return 0
            self.lost = False
        if PyBytes_GET_SIZE(self.buf):
            buf = self.buf + data[off:]
            off = 0
        else:
            buf = data
        p = <const uint8_t*>PyBytes_AS_STRING(buf)
        n = PyBytes_GET_SIZE(buf)
        while off + 5 <= n:
            ctype = p[off]
            if not (20 <= ctype <= 24) or p[off + 1] != 3:
                self.gap()
                return 0
            ln = (p[off + 3] << 8) | p[off + 4]
            if off + 5 + ln > n:
                if ctype == 23 or (ctype == 22 and self.encrypted):
                    # opaque body: no need to hold it
                    self.skip = off + 5 + ln - n
                    off = n
                break
            if ctype == 23:
                pass                      # application data: opaque, never copied
            elif ctype == 20:
                self.encrypted = True
            elif ctype == 21:
                self.alert_records += 1
                # Wireshark 4.0 decodes any 2-byte alert record (even after
                # ChangeCipherSpec); an encrypted alert is always longer
                if ln == 2:
                    if self.sink is not None:
                        self.sink.tls_alert(self.conn, self.side, frame, ts, p[off + 5], p[off + 6])
                    else:
                        self.on_alert(frame, ts, p[off + 5], p[off + 6])
            elif ctype == 22 and not self.encrypted and ln >= 4 and p[off + 5] == 1:
                if _client_hello_fn is None:
                    from backline.analyzers.net.tls import _client_hello
                    _client_hello_fn = _client_hello
                sni, ver = _client_hello_fn(buf[off + 5:off + 5 + ln])
                if self.sink is not None:
                    self.sink.tls_hello(self.conn, frame, ts, sni, ver)
                else:
                    self.on_hello(frame, ts, sni, ver)
            off += 5 + ln
        if off >= n:
            self.buf = b""
        else:
            rest = buf[off:]
            self.buf = rest if len(rest) <= 65_540 else b""
        return 0


# ------------------------------------------------------------ parser dispatch
cdef int64_t _get_skip(object parser) except? -1:
    if type(parser) is HttpParser:
        return (<HttpParser>parser).skip
    if type(parser) is TlsParser:
        return (<TlsParser>parser).skip
    return parser.skip


cdef int _set_skip(object parser, int64_t skip) except -1:
    if type(parser) is HttpParser:
        (<HttpParser>parser).skip = skip
    elif type(parser) is TlsParser:
        (<TlsParser>parser).skip = skip
    else:
        parser.skip = skip
    return 0


cdef int _pfeed(object parser, int64_t frame, int64_t ts, bytes payload) except -1:
    if type(parser) is HttpParser:
        return (<HttpParser>parser)._feed(frame, ts, payload)
    if type(parser) is TlsParser:
        return (<TlsParser>parser)._feed(frame, ts, payload)
    parser.feed(frame, ts, payload)
    return 0


# ------------------------------------------------------------ DNS
RCODE_NAMES = {0: "NoError", 1: "FormErr", 2: "ServFail", 3: "NXDomain", 4: "NotImp",
               5: "Refused", 6: "YXDomain", 7: "YXRRSet", 8: "NXRRSet", 9: "NotAuth",
               10: "NotZone"}
MAX_PENDING = 200_000
_answer_type = None


cdef str _qname(const uint8_t* m, Py_ssize_t n, Py_ssize_t* at):
    """The (uncompressed) first question name from ``at``; ``at`` moves past it."""
    cdef Py_ssize_t off = at[0]
    cdef int ln, labels = 0
    cdef Py_ssize_t e
    parts = bytearray()
    while off < n:
        ln = m[off]
        if ln == 0:
            off += 1
            break
        if ln & 0xC0:
            off += 2
            break
        if labels:
            parts.append(46)                  # "."
        e = off + 1 + ln
        if e > n:
            e = n
        parts += m[off + 1:e]
        labels += 1
        off += 1 + ln
        if labels > 127:
            break
    at[0] = off
    return parts.decode("ascii", "replace") if labels else "<root>"


def qname(bytes msg, Py_ssize_t off=12):
    """Read the (uncompressed) first question name; returns (name, next offset)."""
    cdef Py_ssize_t at = off
    name = _qname(<const uint8_t*>PyBytes_AS_STRING(msg), PyBytes_GET_SIZE(msg), &at)
    return name, at


cdef str _text(addr):
    if isinstance(addr, bytes):
        from backline.analyzers.net.decode import format_addr
        return format_addr(addr)
    return addr


cdef class DnsTracker:
    """Count DNS queries and responses; keep the failures and response times."""

    cdef public int64_t queries
    cdef public int64_t responses
    cdef public dict rcodes
    cdef public set answered
    cdef public dict pending
    cdef public list failures          # DnsAnswer: NXDOMAIN / SERVFAIL / other errors
    cdef public list times_ns
    cdef public int64_t keep
    cdef public dict servers
    cdef public int64_t retried        # repeated queries that were answered in the end

    def __init__(self, int64_t keep=10_000):
        self.rcodes = {}
        self.answered = set()
        self.pending = {}
        self.failures = []
        self.times_ns = []
        self.keep = keep
        self.servers = {}

    def message(self, int64_t num, int64_t ts, tuple conv, bytes msg, bint from_client,
                server="", bint cut=False):
        """Count one DNS message; ``server`` is the server's address (text or raw bytes).

        ``cut``: the snaplen cut the message.  tshark 4.0.17 still counts it
        (query, or response and its rcode) from the header, and a cut query can
        still be answered, but a cut response answers no query (it throws before
        ``dns.response_to``).
        """
        self._message(num, ts, conv, <const uint8_t*>PyBytes_AS_STRING(msg),
                      PyBytes_GET_SIZE(msg), server, cut)

    cdef int _message(self, int64_t num, int64_t ts, tuple conv, const uint8_t* msg,
                      Py_ssize_t n, server, bint cut) except -1:
        global _answer_type
        if n < (4 if cut else 12):
            return 0
        cdef int tid = (msg[0] << 8) | msg[1]
        cdef Py_ssize_t off = 12
        cdef int qtype = 0, code
        cdef list lst
        key = (conv, tid)
        if not msg[2] & 0x80:
            self.queries += 1
            if n >= 12 and (msg[5] or msg[4]):
                name = _qname(msg, n, &off)
            else:
                name = "<none>"
            if off + 2 <= n:
                qtype = (msg[off] << 8) | msg[off + 1]
            lst = self.pending.get(key)
            if lst is None:
                if len(self.pending) < MAX_PENDING:
                    self.pending[key] = [(num, ts, name, qtype)]
                    if conv not in self.servers and len(self.servers) < MAX_PENDING:
                        self.servers[conv] = server     # text made when reported
            elif len(lst) < 64:
                lst.append((num, ts, name, qtype))
            return 0
        self.responses += 1
        code = msg[3] & 0x0F
        rname = RCODE_NAMES.get(code)
        if rname is None:
            rname = str(code)
        self.rcodes[rname] = self.rcodes.get(rname, 0) + 1
        lst = self.pending.get(key) if not cut else None
        qframe, qts, name, qtype = (0, 0, "", 0)
        if lst:
            qframe, qts, name, qtype = lst[len(lst) - 1]      # (no negative index: wraparound is off)
            if len(lst) > 1:
                self.retried += len(lst) - 1
            self.answered.add(qframe)
            del self.pending[key]
            if len(self.times_ns) < 1_000_000:
                self.times_ns.append(ts - qts)
        if not name:
            if n >= 12 and (msg[5] or msg[4]):
                name = _qname(msg, n, &off)
            else:
                name = "<none>"
        if code and len(self.failures) < self.keep:
            if _answer_type is None:
                from backline.analyzers.net.dns import DnsAnswer
                _answer_type = DnsAnswer
            self.failures.append(_answer_type(qframe, num, name, qtype, rname, _text(server),
                                              ts - qts if qframe else 0, ts))
        return 0

    def unanswered(self):
        """Queries minus distinct answered query frames (the oracle's rule)."""
        return max(0, self.queries - len(self.answered))

    def unanswered_queries(self):
        from backline.analyzers.net.dns import DnsAnswer
        out = []
        for (conv, _tid), lst in self.pending.items():
            for qframe, qts, name, qtype in lst:
                out.append(DnsAnswer(qframe, 0, name, qtype, "", _text(self.servers.get(conv, "")),
                                     0, qts))
        out.sort(key=lambda a: a.query_frame)
        return out


# ------------------------------------------------------------ what HTTP and TLS report
cdef class HttpExchange:
    """One HTTP request and (when seen) its response."""

    cdef public int64_t stream
    cdef public str server
    cdef public str method
    cdef public str path
    cdef public str host
    cdef public int64_t request_frame
    cdef public int64_t request_ts
    cdef public int status
    cdef public int64_t response_frame
    cdef public int64_t response_ts

    def __init__(self, int64_t stream, str server, str method, str path, str host,
                 int64_t request_frame, int64_t request_ts, int status=0,
                 int64_t response_frame=0, int64_t response_ts=0):
        self.stream, self.server, self.method, self.path, self.host = \
            stream, server, method, path, host
        self.request_frame, self.request_ts = request_frame, request_ts
        self.status, self.response_frame, self.response_ts = status, response_frame, response_ts

    def __repr__(self):
        return (f"HttpExchange(stream={self.stream}, server={self.server!r}, "
                f"method={self.method!r}, path={self.path!r}, status={self.status}, "
                f"request_frame={self.request_frame}, response_frame={self.response_frame})")


cdef class AppSink:
    """Where the compiled HTTP and TLS parsers report, with the stream they saw it on.

    It fills the capture's statistics object ``st`` (see ``capture.CaptureStats``):
    HTTP requests waiting for their response per stream, statuses, response
    times and the slowest exchanges per server, failures kept as evidence;
    TLS alerts and ClientHellos.
    """

    cdef public object st
    cdef public dict pending_http      # stream -> [HttpExchange] waiting for a response
    cdef public dict hellos            # stream -> SNI of its ClientHello
    cdef public object alert_type      # capture.TlsAlert
    cdef public dict alert_names
    cdef public int64_t keep           # failures of each kind kept with their evidence
    cdef public int64_t slowest_kept   # slowest exchanges kept per server
    cdef dict endpoints

    def __init__(self, st, dict pending_http, dict hellos, alert_type, dict alert_names,
                 int64_t keep, int64_t slowest_kept):
        self.st = st
        self.pending_http = pending_http
        self.hellos = hellos
        self.alert_type = alert_type
        self.alert_names = alert_names
        self.keep = keep
        self.slowest_kept = slowest_kept
        self.endpoints = {}

    cpdef str endpoint(self, addr, int port):
        """``address:port`` text (memoised: servers repeat, clients rarely do)."""
        key = (addr, port)
        text = self.endpoints.get(key)
        if text is None:
            if len(self.endpoints) >= 50_000:
                self.endpoints.clear()
            from backline.analyzers.net.decode import format_addr
            text = self.endpoints[key] = f"{format_addr(addr)}:{port}"
        return text

    cpdef str server(self, Connection c):
        """``address:port`` of a stream's server (the side that is not the client)."""
        return self.endpoint(c.b, c.bp) if c.client_side != 1 else self.endpoint(c.a, c.ap)

    cpdef http_request(self, Connection c, int64_t frame, int64_t ts, str method, str path,
                       str host):
        cdef list q = self.pending_http.get(c.stream)
        if q is None:
            q = self.pending_http[c.stream] = []
        if len(q) < 10_000:
            q.append(HttpExchange(c.stream, self.server(c), method, path, host, frame, ts))
        st = self.st
        if st.http_last_req_frame != frame:
            st.http_request_frames += 1
            st.http_last_req_frame = frame

    cpdef http_response(self, Connection c, int64_t frame, int64_t ts, int status):
        st = self.st
        cdef dict counts = st.http_status
        key = str(status)
        counts[key] = counts.get(key, 0) + 1
        if 100 <= status < 200:
            return
        cdef list q = self.pending_http.get(c.stream)
        cdef HttpExchange ex
        cdef int64_t took
        cdef list times, slowest
        if q:
            ex = q.pop(0)
            ex.status, ex.response_frame, ex.response_ts = status, frame, ts
            took = ts - ex.request_ts
            times = st.http_times.get(ex.server)
            if times is None:
                times = st.http_times[ex.server] = []
            if len(times) < 200_000:
                times.append(took)
            slowest = st.http_slowest.get(ex.server)
            if slowest is None:
                slowest = st.http_slowest[ex.server] = []
            if len(slowest) < self.slowest_kept:
                heapq.heappush(slowest, (took, frame, ts, ex.method, ex.path))
            elif took > slowest[0][0]:
                heapq.heapreplace(slowest, (took, frame, ts, ex.method, ex.path))
            if status >= 400 and len(st.http) < self.keep:
                st.http.append(ex)

    cpdef tcp_answer(self, Connection c, int64_t req_frame, int64_t req_ts, int64_t last_ts,
                     int64_t frame, int64_t ts):
        """A request of an undecoded protocol answered: its answer time per server, and the
        slowest kept with their request and answer frames."""
        st = self.st
        cdef int64_t took = ts - last_ts
        server = self.server(c)
        cdef list times = st.tcp_times.get(server)
        if times is None:
            times = st.tcp_times[server] = []
        if len(times) < 200_000:
            times.append(took)
        cdef list slowest = st.tcp_slowest.get(server)
        if slowest is None:
            slowest = st.tcp_slowest[server] = []
        if len(slowest) < self.slowest_kept:
            heapq.heappush(slowest, (took, req_frame, req_ts, frame, ts))
        elif took > slowest[0][0]:
            heapq.heapreplace(slowest, (took, req_frame, req_ts, frame, ts))

    cpdef tcp_unasked(self, Connection c):
        """Server data that answers no request (a greeting, a pushed message)."""
        server = self.server(c)
        self.st.tcp_unasked[server] = self.st.tcp_unasked.get(server, 0) + 1

    cpdef tcp_given_up(self, Connection c, int64_t req_frame, int64_t req_ts, int64_t last_ts,
                       int64_t frame, int64_t ts):
        """A client closed its stream while its request waited for an answer."""
        server = self.server(c)
        cdef list lst = self.st.tcp_given_up.get(server)
        if lst is None:
            lst = self.st.tcp_given_up[server] = []
        if len(lst) < self.keep:
            lst.append((ts - last_ts, req_frame, req_ts, frame, ts))

    cpdef tls_alert(self, Connection c, int side, int64_t frame, int64_t ts, int level, int desc):
        st = self.st
        nm = self.alert_names.get(desc)
        if nm is None:
            nm = str(desc)
        st.tls_alert_counts[nm] = st.tls_alert_counts.get(nm, 0) + 1
        if len(st.tls_alerts) < self.keep:
            from backline.analyzers.net.decode import format_addr
            st.tls_alerts.append(self.alert_type(frame, ts, c.stream,
                                                 format_addr(c.b if side else c.a),
                                                 self.server(c), level, desc,
                                                 self.hellos.get(c.stream, "")))

    cpdef tls_hello(self, Connection c, int64_t frame, int64_t ts, str sni, str version):
        self.hellos[c.stream] = sni
        k = (sni, version)
        cdef dict hellos = self.st.tls_hellos
        if len(hellos) < 10_000 or k in hellos:
            hellos[k] = hellos.get(k, 0) + 1


cdef bint _at_boundary(object parser) except -1:
    """Is the parser between two messages (nothing partial held or to skip)?"""
    cdef HttpParser h
    cdef TlsParser t
    if type(parser) is HttpParser:
        h = <HttpParser>parser
        return (h.state == H_HEAD or h.state == H_LOST) and not PyBytes_GET_SIZE(h.buf) \
            and not h.skip and h.pending is None
    if type(parser) is TlsParser:
        t = <TlsParser>parser
        return not PyBytes_GET_SIZE(t.buf) and not t.skip
    return not getattr(parser, "buf", b"") and not getattr(parser, "skip", 0)


cdef int64_t _message_left(object parser) except -2:
    """Bytes until the message in progress ends, or -1 when unknown."""
    cdef HttpParser h
    cdef TlsParser t
    if type(parser) is HttpParser:
        h = <HttpParser>parser
        if h.state == H_HEAD and PyBytes_GET_SIZE(h.buf):
            # a head cut short: Wireshark asks for one more segment, so anything
            # after a hole is outside the message
            return 0
        return h.skip if h.state == H_BODY and h.skip else -1
    if type(parser) is TlsParser:
        t = <TlsParser>parser
        return t.skip if t.skip and not PyBytes_GET_SIZE(t.buf) else -1
    return -1


cdef int _cut(object parser, int64_t frame, int64_t ts, bytes payload) except -1:
    """A segment whose data the snaplen cut: no reassembly across it."""
    if type(parser) is HttpParser:
        (<HttpParser>parser)._cut_segment(frame, ts, payload)
        return 0
    cut = getattr(parser, "cut", None)
    if cut is not None:
        cut(frame, ts, payload)
        return 0
    if PyBytes_GET_SIZE(payload):
        _pfeed(parser, frame, ts, payload)
    parser.gap()
    return 0
