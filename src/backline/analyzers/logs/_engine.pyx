# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""The compiled per-line path of the text-log analysis.

Everything that runs once per log line lives here, typed, on bytes:
time stamps are read by one generic scanner driven by a field order
(``YMDhmsf``, ``MDhmsf`` ...), so every time stamp shape of
:mod:`.timestamps` is parsed by the same code.

The Python modules keep the public names (:class:`.timestamps.TsParser`).
"""

from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint32_t, uint64_t, INT64_MAX, INT64_MIN
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memchr, memcmp, memcpy, memset, strlen

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE

cdef extern from *:
    """
    static const char *BL_MONTHS = "janfebmaraprmayjunjulaugsepoctnovdec";
    static const int BL_MDAYS[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    """
    const char *BL_MONTHS
    const int BL_MDAYS[13]

# quality codes returned by the scanner
DEF Q_NONE = 0
DEF Q_EXACT = 1
DEF Q_INFERRED_YEAR = 2
DEF Q_INFERRED = 3

DEF US = 1000000
cdef int64_t HALF_DAY = <int64_t>43200 * 1000000
cdef int64_t DAY_US = <int64_t>86400 * 1000000


cdef inline int64_t days_from_civil(int64_t y, int64_t m, int64_t d) nogil:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    cdef int64_t era, yoe, doy, doe
    if m <= 2:
        y -= 1
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


cdef inline int lower(int c) nogil:
    return c + 32 if 65 <= c <= 90 else c


cdef inline int month_of(const unsigned char *s, Py_ssize_t n) nogil:
    """1..12 for an English month name (first three letters), else 0."""
    cdef int i
    if n < 3:
        return 0
    for i in range(12):
        if (lower(s[0]) == BL_MONTHS[3 * i] and lower(s[1]) == BL_MONTHS[3 * i + 1]
                and lower(s[2]) == BL_MONTHS[3 * i + 2]):
            return i + 1
    return 0


cdef inline bint is_digit(int c) nogil:
    return 48 <= c <= 57


cdef inline bint is_alpha(int c) nogil:
    return (65 <= c <= 90) or (97 <= c <= 122)


cdef struct TsState:
    int year               # year for shapes without one (from the file's mtime), rolls at New Year
    int last_month
    int day_y, day_m, day_d   # date for time-only shapes
    int64_t last_tod       # last time of day seen by a time-only shape (us), to roll the date
    int64_t limit          # latest wall time (us) an inferred year may give: when the evidence
                           # was collected; INT64_MAX for no limit


cdef void civil_from_days(int64_t z, int *y, int *m, int *d) noexcept nogil:
    cdef int64_t era, doe, yoe, doy, mp
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d[0] = <int>(doy - (153 * mp + 2) // 5 + 1)
    m[0] = <int>(mp + 3 if mp < 10 else mp - 9)
    y[0] = <int>(yoe + era * 400 + (1 if m[0] <= 2 else 0))


cdef int scan_ts(TsState *st, const unsigned char *order, Py_ssize_t norder,
                 const unsigned char *s, Py_ssize_t n, int64_t *out, bint *zoned) noexcept nogil:
    """Read the time stamp text ``s`` by the field ``order``; the result (microseconds since the
    epoch, UTC when the text carries a zone, else local wall time) goes to ``out``.
    Returns a quality code (0 when the text does not hold a valid stamp of that order)."""
    cdef int64_t v[9]          # Y M D h m s us, offset seconds
    cdef bint have[9]
    cdef int k
    for k in range(9):
        v[k] = 0
        have[k] = False
    cdef Py_ssize_t i = 0, j, nd, slot = 0
    cdef int c, prev = 0, mon, pm = 0
    cdef int64_t val
    cdef int sign
    cdef bint time_done = False
    cdef unsigned char o
    # epoch shapes: one number
    if norder == 1 and (order[0] == b'E' or order[0] == b'L' or order[0] == b'U' or order[0] == b'n'):
        val = 0
        while i < n and is_digit(s[i]):
            val = val * 10 + (s[i] - 48)
            i += 1
        if i == 0:
            return Q_NONE
        if order[0] == b'E':
            val *= US
            if i < n and s[i] == b'.':
                i += 1
                nd = 0
                k = 0
                while i < n and is_digit(s[i]):
                    if nd < 6:
                        k = k * 10 + (s[i] - 48)
                        nd += 1
                    i += 1
                while nd < 6:
                    k *= 10
                    nd += 1
                val += k
        elif order[0] == b'L':
            val *= 1000
        elif order[0] == b'n':
            val //= 1000
        if val < 0 or val > <int64_t>253402300799 * US:
            return Q_NONE
        out[0] = val
        zoned[0] = True
        return Q_EXACT
    while i < n:
        c = s[i]
        if is_digit(c):
            j = i
            val = 0
            while j < n and is_digit(s[j]):
                if j - i < 18:
                    val = val * 10 + (s[j] - 48)
                j += 1
            nd = j - i
            # a zone offset after the time of day: +hh:mm, +hhmm, -hh
            if time_done and (prev == b'+' or prev == b'-') and not have[7]:
                sign = -1 if prev == b'-' else 1
                if nd == 4:
                    v[7] = sign * ((val // 100) * 3600 + (val % 100) * 60)
                elif nd <= 2:
                    v[7] = sign * val * 3600
                    if j + 2 < n and s[j] == b':' and is_digit(s[j + 1]) and is_digit(s[j + 2]):
                        v[7] += sign * ((s[j + 1] - 48) * 10 + (s[j + 2] - 48)) * 60
                        j += 3
                else:
                    return Q_NONE
                have[7] = True
                prev = 0
                i = j
                continue
            while slot < norder:
                o = order[slot]
                if o == b'M' and have[1]:            # month already given by name
                    slot += 1
                    continue
                if o == b'f' and not (prev == b'.' or prev == b',' or prev == b':'):
                    slot += 1                        # no fraction here
                    continue
                break
            if slot >= norder:
                break                                # trailing digits: not part of the stamp
            o = order[slot]
            if o == b'Y' or o == b'y':
                if nd == 14 and o == b'Y':           # YYYYMMDDhhmmss
                    v[0] = val // (<int64_t>10000000000)
                    v[1] = (val // 100000000) % 100
                    v[2] = (val // 1000000) % 100
                    v[3] = (val // 10000) % 100
                    v[4] = (val // 100) % 100
                    v[5] = val % 100
                    for k in range(6):
                        have[k] = True
                    slot += 6
                    time_done = True
                elif nd == 8:                        # YYYYMMDD
                    v[0], v[1], v[2] = val // 10000, (val // 100) % 100, val % 100
                    have[0] = have[1] = have[2] = True
                    slot += 3
                elif nd == 6 and o == b'y':          # YYMMDD
                    v[0], v[1], v[2] = 2000 + val // 10000, (val // 100) % 100, val % 100
                    have[0] = have[1] = have[2] = True
                    slot += 3
                elif nd == 4 or nd == 2:
                    v[0] = val + 2000 if nd == 2 else val
                    have[0] = True
                    slot += 1
                else:
                    return Q_NONE
            elif o == b'M' and nd == 4 and slot + 1 < norder and order[slot + 1] == b'D':
                v[1], v[2] = val // 100, val % 100   # MMDD (glog)
                have[1] = have[2] = True
                slot += 2
            elif o == b'M' or o == b'D':
                if nd > 2:
                    return Q_NONE
                k = 1 if o == b'M' else 2
                v[k] = val
                have[k] = True
                slot += 1
            elif o == b'h':
                if nd == 6:                          # hhmmss
                    v[3], v[4], v[5] = val // 10000, (val // 100) % 100, val % 100
                    have[3] = have[4] = have[5] = True
                    slot += 3
                    time_done = True
                elif nd <= 2:
                    v[3] = val
                    have[3] = True
                    slot += 1
                else:
                    return Q_NONE
            elif o == b'm':
                if nd > 2:
                    return Q_NONE
                v[4] = val
                have[4] = True
                slot += 1
            elif o == b's':
                if nd > 2:
                    return Q_NONE
                v[5] = val
                have[5] = True
                slot += 1
                time_done = True
            elif o == b'f':
                if prev == b':':                     # h:m:s:SSS - a count of milliseconds
                    if nd > 3:
                        return Q_NONE
                    v[6] = val * 1000
                else:                                # .123 / ,123456789 - a decimal fraction
                    k = 0
                    val = 0
                    while k < 6:
                        val = val * 10 + ((s[i + k] - 48) if k < nd else 0)
                        k += 1
                    v[6] = val
                have[6] = True
                slot += 1
            else:
                return Q_NONE
            i = j
            prev = 0
            continue
        if is_alpha(c):
            j = i
            while j < n and is_alpha(s[j]):
                j += 1
            mon = month_of(s + i, j - i) if (j - i == 3 or j - i >= 4) else 0
            if mon and not have[1] and not time_done:
                v[1] = mon
                have[1] = True
            elif j - i == 2 and (lower(c) == b'a' or lower(c) == b'p') and lower(s[i + 1]) == b'm':
                pm = 1 if lower(c) == b'p' else 2
            elif time_done and ((j - i == 1 and (c == b'Z' or c == b'z'))
                                or (j - i == 3 and ((c == b'U' and s[i + 1] == b'T' and s[i + 2] == b'C')
                                                    or (c == b'G' and s[i + 1] == b'M' and s[i + 2] == b'T')))):
                have[7] = True
            elif time_done and j - i == 1 and (c == b'T' or c == b't'):
                pass
            elif j - i == 1 and (c == b'T' or c == b't') and have[2] and not have[3]:
                pass                                 # ISO date/time separator
            # weekday names and other words are ignored
            prev = 0
            i = j
            continue
        prev = c
        i += 1
    if not (have[3] and have[4]):
        return Q_NONE
    if pm == 1 and v[3] < 12:
        v[3] += 12
    elif pm == 2 and v[3] == 12:
        v[3] = 0
    if v[3] > 23 or v[4] > 59 or v[5] > 60:
        return Q_NONE
    if v[5] == 60:
        v[5] = 59
    cdef int q = Q_EXACT
    cdef int64_t tod = ((v[3] * 60 + v[4]) * 60 + v[5]) * US + v[6]
    if not have[1] and not have[2] and not have[0]:
        # a time of day only: the date comes from the file and rolls over at midnight
        if st.last_tod >= 0 and tod + HALF_DAY < st.last_tod:
            val = days_from_civil(st.day_y, st.day_m, st.day_d) + 1
            civil_from_days(val, &st.day_y, &st.day_m, &st.day_d)
        st.last_tod = tod
        v[0], v[1], v[2] = st.day_y, st.day_m, st.day_d
        q = Q_INFERRED
    else:
        if not (have[1] and have[2]):
            return Q_NONE
        if v[1] < 1 or v[1] > 12 or v[2] < 1 or v[2] > BL_MDAYS[v[1]]:
            return Q_NONE
        if have[0] and (v[0] < 1 or v[0] > 9999):
            return Q_NONE
        if not have[0]:
            if st.last_month and v[1] < st.last_month - 6:
                st.year += 1                         # New Year roll-over
            elif st.last_month and v[1] > st.last_month + 6:
                st.year -= 1                         # the file went back over New Year
            st.last_month = <int>v[1]
            v[0] = st.year
            q = Q_INFERRED_YEAR
            # an inferred year never puts a stamp after the evidence was collected
            while st.year > 1 and days_from_civil(v[0], v[1], v[2]) * DAY_US + tod - v[7] * US > st.limit:
                st.year -= 1
                v[0] = st.year
        elif v[1] == 2 and v[2] == 29 and not ((v[0] % 4 == 0 and v[0] % 100 != 0) or v[0] % 400 == 0):
            return Q_NONE
    out[0] = days_from_civil(v[0], v[1], v[2]) * DAY_US + tod - v[7] * US
    zoned[0] = have[7]
    return q


cdef class TsScanner:
    """One file's time stamp reader state (year inference, the date of time-only stamps).

    ``scan(order, text)`` returns ``(microseconds, quality, zoned)``: microseconds since
    the epoch (UTC when ``zoned``, else the wall time of the file's zone), quality 0 (no
    valid stamp), 1 exact, 2 year inferred, 3 date inferred.

    >>> TsScanner(2005, (2005, 1, 1)).scan(b"YMDhmsf", b"2005-06-03-15.42.50.675872")
    (1117813370675872, 1, False)
    """

    cdef TsState st

    def __init__(self, int year, tuple day):
        self.st.year = year
        self.st.last_month = 0
        self.st.day_y, self.st.day_m, self.st.day_d = day
        self.st.last_tod = -1
        self.st.limit = INT64_MAX

    def set_limit(self, int64_t limit):
        """Latest wall time (microseconds since the epoch) an inferred year may give."""
        self.st.limit = limit

    def scan(self, bytes order, bytes text):
        cdef int64_t out = 0
        cdef bint zoned = False
        cdef int q = scan_ts(&self.st, <const unsigned char *>order, len(order),
                             <const unsigned char *>text, len(text), &out, &zoned)
        return out, q, zoned


# ===================================================================== template keys
# A message's template depends on where its digits are, not on which digits they are
# (masking, :mod:`.masking`), so messages are keyed by their text with every digit read
# as ``0``.  A key maps to a shape, or to a class: -1 "the lone digits decide" (the
# template keeps single digits, ``jk2_init``), -2 "each message decides" (it keeps longer
# digit runs).  Keys are 128-bit hashes (two 64-bit lanes) plus the length.


cdef struct Slot:
    uint64_t a
    uint64_t b
    int32_t val
    int32_t used

cdef struct Table:
    Slot *slots
    Py_ssize_t cap        # a power of two
    Py_ssize_t n


cdef int table_init(Table *t, Py_ssize_t cap) except -1:
    t.slots = <Slot *>calloc(cap, sizeof(Slot))
    if t.slots == NULL:
        raise MemoryError()
    t.cap = cap
    t.n = 0
    return 0


cdef inline Slot *table_find(Table *t, uint64_t a, uint64_t b) noexcept nogil:
    cdef Py_ssize_t mask = t.cap - 1
    cdef Py_ssize_t i = <Py_ssize_t>(a & mask)
    while True:
        if not t.slots[i].used:
            return &t.slots[i]
        if t.slots[i].a == a and t.slots[i].b == b:
            return &t.slots[i]
        i = (i + 1) & mask


cdef void table_clear(Table *t) noexcept nogil:
    memset(t.slots, 0, t.cap * sizeof(Slot))
    t.n = 0


cdef int table_grow(Table *t) except -1:
    """Double the table (kept at most half full, so probes stay short and it stays in cache
    while it is small)."""
    cdef Py_ssize_t old_cap = t.cap, i
    cdef Slot *old = t.slots
    cdef Slot *sl
    table_init(t, old_cap * 2)
    for i in range(old_cap):
        if old[i].used:
            sl = table_find(t, old[i].a, old[i].b)
            sl[0] = old[i]
            t.n += 1
    free(old)
    return 0


cdef extern from *:
    """
    #define BL_P1 0x100000001b3ULL
    #define BL_P2 0x9E3779B97F4A7C15ULL
    #define BL_H0 0xcbf29ce484222325ULL
    #define BL_H1 0x84222325cbf29ce4ULL
    """
    uint64_t P1 "BL_P1"
    uint64_t P2 "BL_P2"
    uint64_t H0 "BL_H0"
    uint64_t H1 "BL_H1"


cdef extern from *:
    """
    #include <string.h>
    static inline uint64_t bl_load(const unsigned char *s, Py_ssize_t n) {
        uint64_t w = 0;
        if (n >= 8) { memcpy(&w, s, 8); return w; }
        memcpy(&w, s, (size_t)n);
        return w;
    }
    /* the bytes of w that are ASCII digits become '0' (bytes past n are zero: no digits) */
    static inline uint64_t bl_zero_digits(uint64_t w) {
        const uint64_t hi = 0x8080808080808080ULL;
        uint64_t ge0 = (w | hi) - 0x3030303030303030ULL;   /* high bit kept where b >= '0' */
        uint64_t ge10 = (w | hi) - 0x3a3a3a3a3a3a3a3aULL;  /* high bit kept where b >= ':' */
        uint64_t d = ge0 & ~ge10 & ~w & hi;               /* '0' <= b <= '9', b < 0x80 */
        uint64_t m = (d >> 7) * 0xffULL;
        return (w & ~m) | (0x3030303030303030ULL & m);
    }
    /* a word holds a byte < 0x20 or >= 0x80 */
    static inline int bl_ctrl_or_high(uint64_t w, Py_ssize_t n) {
        const uint64_t hi = 0x8080808080808080ULL;
        uint64_t lt = (w - 0x2020202020202020ULL) & ~w & hi;
        if (n < 8) {
            uint64_t keep = n ? (~0ULL >> (8 * (8 - n))) : 0;
            lt &= keep & hi;
            return ((lt | (w & hi)) & keep) != 0;
        }
        return (lt | (w & hi)) != 0;
    }
    static inline uint64_t bl_rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
    """
    uint64_t bl_load(const unsigned char *s, Py_ssize_t n) nogil
    uint64_t bl_zero_digits(uint64_t w) nogil
    int bl_ctrl_or_high(uint64_t w, Py_ssize_t n) nogil
    uint64_t bl_rotl(uint64_t x, int r) nogil


cdef inline void key_hash(const unsigned char *s, Py_ssize_t n, uint64_t *h) noexcept nogil:
    """h[0..1]: the digit key (every digit read as 0), 8 bytes at a time."""
    cdef uint64_t a1 = H0 ^ <uint64_t>n, b1 = H1
    cdef Py_ssize_t i = 0
    cdef uint64_t w
    while i < n:
        w = bl_zero_digits(bl_load(s + i, n - i))
        a1 = bl_rotl((a1 ^ w) * P1, 29)
        b1 = bl_rotl((b1 + w) * P2, 31) ^ a1
        i += 8
    a1 ^= a1 >> 33
    a1 *= P2
    a1 ^= a1 >> 29
    b1 ^= b1 >> 32
    b1 *= P1
    b1 ^= b1 >> 31
    h[0] = a1
    h[1] = b1


cdef inline void key_hashes2(const unsigned char *s, Py_ssize_t n, uint64_t *h) noexcept nogil:
    """h[2..3]: the digit key with lone digits kept; h[4..5]: the raw text."""
    cdef uint64_t a2 = H0, b2 = H1
    cdef uint64_t a3 = H0, b3 = H1
    cdef Py_ssize_t i
    cdef unsigned int c, k2
    cdef bint prev_digit = False, digit
    for i in range(n):
        c = s[i]
        digit = 48 <= c <= 57
        k2 = 48 if digit else c
        if digit and not prev_digit and (i + 1 == n or not (48 <= s[i + 1] <= 57)):
            k2 = c                          # a lone digit
        a2 = (a2 ^ k2) * P1
        b2 = (b2 + k2 + 1) * P2
        a3 = (a3 ^ c) * P1
        b3 = (b3 + c + 1) * P2
        prev_digit = digit
    h[2] = a2 ^ (<uint64_t>n << 56)
    h[3] = b2 ^ (b2 >> 29)
    h[4] = a3 ^ (<uint64_t>n << 56)
    h[5] = b3 ^ (b3 >> 29)


# Tokens that masking always turns into one ``<*>`` whatever their letters and digits, so
# a message is also keyed with each of them read as a mark (the "token key", h[6..7]).  A
# token is a maximal run of ASCII letters, digits and ``_``, bounded by a neighbour that
# masking treats as a delimiter, in a message without ``://`` (a URL keeps its scheme):
#
# * D: all digits, at least 5 (a year, a clock field, a MAC or UUID part are shorter or
#   sit next to ``-`` and hex; every rule that takes longer digit runs takes any length);
#   shorter runs too in a message without a month name or protocol version (the rules
#   that read digit widths: embedded dates, ``HTTP/1.1``), with 2-digit runs a mark of
#   their own (a MAC's parts) - not next to a ``-`` that has hex on its other side;
# * X: two or more digits and a letter or ``_``, not a version (``v12``), not next to
#   ``.`` on its left or ``-`` (a version's tail, a UUID part): the identifier rule takes
#   the whole run however its characters mix.
#
# Masking gives every message of one token key the same masked text (the rest of the
# message is the same, digits included), so the key maps straight to the shape whatever
# digits the shape kept (tests check this against :func:`.masking.mask` on generated
# messages).  It is looked up only when the other keys miss.

cdef inline bint is_word(unsigned int c) noexcept nogil:
    return (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122) or c == 95


cdef inline bint is_hex(unsigned int c) noexcept nogil:
    return (48 <= c <= 57) or (65 <= c <= 70) or (97 <= c <= 102)


cdef inline bint token_edge(unsigned int c) noexcept nogil:
    """A neighbour byte of a token that masking reads as a delimiter (ASCII only)."""
    return c == 32 or c == 9 or c == 44 or c == 59 or c == 58 or c == 61 or c == 124 \
        or c == 34 or c == 39 or c == 91 or c == 93 or c == 40 or c == 41 or c == 123 \
        or c == 125 or c == 43 or c == 64 or c == 35 or c == 36 or c == 37 or c == 38 \
        or c == 33 or c == 47 or c == 46


cdef inline bint dash_ok(const unsigned char *s, Py_ssize_t n, Py_ssize_t k, int side) noexcept nogil:
    """``s[k]`` is a ``-`` on a digit run's ``side`` (-1 left, +1 right): fine unless hex is
    on the dash's other side (a UUID's parts)."""
    cdef Py_ssize_t o = k + side
    return o < 0 or o >= n or not is_hex(s[o])


cdef inline int token_kind(const unsigned char *s, Py_ssize_t n, Py_ssize_t i, Py_ssize_t j,
                           Py_ssize_t digits, bint short_ok) noexcept nogil:
    """The mark of ``s[i:j]`` (a maximal word run) when it is a token, else 0."""
    cdef Py_ssize_t ln = j - i
    cdef unsigned int left = s[i - 1] if i > 0 else 32
    cdef unsigned int right = s[j] if j < n else 32
    if digits == ln:
        if ln < 5 and not short_ok:
            return 0
        if not (token_edge(left) or (left == 45 and dash_ok(s, n, i - 1, -1))):
            return 0
        if not (token_edge(right) or (right == 45 and dash_ok(s, n, j, 1))):
            return 0
        return 1 if ln >= 5 else 3 if ln == 2 else 4
    if digits < 2 or left == 46 or not token_edge(left) or not token_edge(right):
        return 0
    if (s[i] == 118 or s[i] == 86) and 48 <= s[i + 1] <= 57:
        return 0                                # v12...: a version's start
    return 2


cdef extern from *:
    """
    static const char *BL_SHORT_STOP[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug",
        "Sep", "Oct", "Nov", "Dec", "HTTP/", "HTTPS/", "RTSP/", "SIP/", "SPDY/", 0};
    """
    const char **BL_SHORT_STOP


cdef inline int fold_stops(const unsigned char *s, Py_ssize_t n) noexcept nogil:
    """1 when the message holds ``://`` (no token key); 2 when digit runs shorter than 5
    may not be tokens: a month name (an embedded date reads its day, clock and year by
    their widths) or a protocol version (``HTTP/1.1`` is kept); else 0.  One pass."""
    cdef Py_ssize_t i, ln
    cdef int k, out = 0
    cdef unsigned int c
    for i in range(n):
        c = s[i]
        if c == 58:
            if i + 2 < n and s[i + 1] == 47 and s[i + 2] == 47:
                return 1
        elif 65 <= c <= 83 and not (out & 2):
            k = 0
            while BL_SHORT_STOP[k] != NULL:
                if <unsigned char>BL_SHORT_STOP[k][0] == c:
                    ln = strlen(BL_SHORT_STOP[k])
                    if i + ln <= n and memcmp(s + i, BL_SHORT_STOP[k], ln) == 0:
                        out |= 2
                        break
                k += 1
    return out


cdef bint key_fold(const unsigned char *s, Py_ssize_t n, uint64_t *h) noexcept nogil:
    """h[6..7]: the token key (see above): the text with every token read as its mark.
    False when the message has no token or holds ``://``."""
    cdef uint64_t a = H0 ^ <uint64_t>0x5bd1e995, b = H1
    cdef Py_ssize_t i = 0, j, digits
    cdef unsigned int c, k
    cdef bint any = False
    cdef int stops = fold_stops(s, n)
    cdef bint short_ok = stops == 0
    if stops & 1:
        return False
    while i < n:
        c = s[i]
        if is_word(c):
            j = i
            digits = 0
            while j < n and is_word(s[j]):
                digits += 48 <= s[j] <= 57
                j += 1
            k = token_kind(s, n, i, j, digits, short_ok)
            if k:
                any = True
                a = (a ^ (k | 0x100)) * P1
                b = (b + k + 0x101) * P2
            else:
                while i < j:
                    c = s[i]
                    a = (a ^ c) * P1
                    b = (b + c + 1) * P2
                    i += 1
            i = j
        else:
            a = (a ^ c) * P1
            b = (b + c + 1) * P2
            i += 1
    h[6] = a ^ (a >> 31)
    h[7] = b ^ (b >> 29)
    return any


cdef inline bint utf8_valid(const unsigned char *s, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i = 0, k, need
    cdef unsigned int c
    while i < n:
        c = s[i]
        if c < 0x80:
            i += 1
            continue
        if 0xC2 <= c <= 0xDF:
            need = 1
        elif 0xE0 <= c <= 0xEF:
            need = 2
        elif 0xF0 <= c <= 0xF4:
            need = 3
        else:
            return False
        for k in range(1, need + 1):
            if i + k >= n or (s[i + k] & 0xC0) != 0x80:
                return False
        if c == 0xE0 and s[i + 1] < 0xA0:
            return False
        if c == 0xED and s[i + 1] > 0x9F:
            return False
        if c == 0xF0 and s[i + 1] < 0x90:
            return False
        if c == 0xF4 and s[i + 1] > 0x8F:
            return False
        i += need + 1
    return True


cdef class KeyTable:
    """The miner's message -> shape lookup (see above).  ``miss(message)`` is called for a
    key not seen yet and returns ``(shape, key_class)``; counts per shape are kept here."""

    cdef Table t1, t2, t3, t4
    cdef object miss
    cdef int32_t *counts
    cdef Py_ssize_t ncounts
    cdef Py_ssize_t limit
    cdef public Py_ssize_t misses

    def __cinit__(self, miss, Py_ssize_t limit=50000):
        table_init(&self.t1, 4096)
        table_init(&self.t2, 1024)
        table_init(&self.t3, 1024)
        table_init(&self.t4, 1024)
        self.miss = miss
        self.limit = limit
        self.counts = <int32_t *>calloc(1024, sizeof(int32_t))
        self.ncounts = 1024
        self.misses = 0

    def __dealloc__(self):
        free(self.t1.slots)
        free(self.t2.slots)
        free(self.t3.slots)
        free(self.t4.slots)
        free(self.counts)

    cdef int _grow(self, Py_ssize_t si) except -1:
        cdef Py_ssize_t n = self.ncounts
        while n <= si:
            n *= 2
        cdef int32_t *c = <int32_t *>realloc(self.counts, n * sizeof(int32_t))
        if c == NULL:
            raise MemoryError()
        memset(c + self.ncounts, 0, (n - self.ncounts) * sizeof(int32_t))
        self.counts = c
        self.ncounts = n
        return 0

    cdef int32_t _call(self, const unsigned char *s, Py_ssize_t n, bint latin, int32_t *cls) except -3:
        raw = PyBytes_FromStringAndSize(<const char *>s, n)
        if latin:
            text = raw.decode("latin-1")
        else:
            try:
                text = raw.decode("utf-8", "surrogatepass")
            except UnicodeDecodeError:
                text = raw.decode("latin-1")
        self.misses += 1
        si, c = self.miss(text)
        cls[0] = c
        return si

    cdef int _fold_put(self, uint64_t *h, int32_t si, int32_t cls) except -1:
        """Remember a token key's shape and its digit key's class (in ``used``: 1 the shape,
        2 "lone digits decide", 3 "each message decides")."""
        cdef Slot *sl
        if self.t4.n >= self.limit:
            table_clear(&self.t4)
        elif 2 * (self.t4.n + 1) > self.t4.cap:
            table_grow(&self.t4)
        sl = table_find(&self.t4, h[6], h[7])
        sl.a, sl.b, sl.val, sl.used = h[6], h[7], si, 1 if cls >= 0 else 1 - cls
        self.t4.n += 1
        return 0

    cdef int32_t lookup(self, const unsigned char *s, Py_ssize_t n, bint latin, bint count=True) except -3:
        """Shape of one message (counted unless ``count`` is false)."""
        cdef uint64_t h[8]
        cdef Slot *sl
        cdef int32_t si = -1, cls
        cdef bint new_key, folded
        key_hash(s, n, h)
        sl = table_find(&self.t1, h[0], h[1])
        new_key = not sl.used
        if not new_key:
            cls = sl.val
            if cls >= 0:
                si = cls
            else:
                key_hashes2(s, n, h)
                if cls == -1:
                    sl = table_find(&self.t2, h[2], h[3])
                else:
                    sl = table_find(&self.t3, h[4], h[5])
                if sl.used:
                    si = sl.val
        if si < 0:
            # not seen: the token key, else masking (Python)
            folded = key_fold(s, n, h)
            if folded:
                sl = table_find(&self.t4, h[6], h[7])
                if sl.used:
                    si = sl.val
                    cls = si if sl.used == 1 else 1 - sl.used
            if si < 0:
                si = self._call(s, n, latin, &cls)
                if folded:
                    self._fold_put(h, si, cls)
            if new_key:
                self._put_key(s, n, h, si, cls)
            else:
                self._put_digits(h, si, cls)
        if si >= self.ncounts:
            self._grow(si)
        if count:
            self.counts[si] += 1
        return si

    cdef int _put_key(self, const unsigned char *s, Py_ssize_t n, uint64_t *h, int32_t si,
                      int32_t cls) except -1:
        """Remember a new digit key (h[0..1]) of class ``cls`` and, for a class, the message's
        finer key."""
        cdef Slot *sl
        if self.t1.n >= self.limit:
            table_clear(&self.t1)
            table_clear(&self.t2)
            table_clear(&self.t3)
        elif 2 * (self.t1.n + 1) > self.t1.cap:
            table_grow(&self.t1)
        if self.t2.n * 2 + 2 > self.t2.cap:
            table_grow(&self.t2)
        if self.t3.n * 2 + 2 > self.t3.cap:
            table_grow(&self.t3)
        sl = table_find(&self.t1, h[0], h[1])
        sl.a, sl.b, sl.val, sl.used = h[0], h[1], cls, 1
        self.t1.n += 1
        if cls >= 0:
            return 0
        key_hashes2(s, n, h)
        if cls == -1:
            sl = table_find(&self.t2, h[2], h[3])
            sl.a, sl.b, sl.val, sl.used = h[2], h[3], si, 1
            self.t2.n += 1
        else:
            sl = table_find(&self.t3, h[4], h[5])
            sl.a, sl.b, sl.val, sl.used = h[4], h[5], si, 1
            self.t3.n += 1
        return 0

    cdef int _put_digits(self, uint64_t *h, int32_t si, int32_t cls) except -1:
        """Remember the finer key (h[2..5], computed) of a message whose digit key is known."""
        cdef Slot *sl
        if (self.t2.n if cls == -1 else self.t3.n) >= self.limit:
            table_clear(&self.t2)
            table_clear(&self.t3)
        if self.t2.n * 2 + 2 > self.t2.cap:
            table_grow(&self.t2)
        if self.t3.n * 2 + 2 > self.t3.cap:
            table_grow(&self.t3)
        sl = table_find(&self.t2, h[2], h[3]) if cls == -1 else table_find(&self.t3, h[4], h[5])
        sl.a = h[2] if cls == -1 else h[4]
        sl.b = h[3] if cls == -1 else h[5]
        sl.val, sl.used = si, 1
        if cls == -1:
            self.t2.n += 1
        else:
            self.t3.n += 1
        return 0

    def lookup_block(self, bytes data):
        """Shapes of the ``\\n``-separated messages in ``data`` (UTF-8), as a list."""
        cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(data)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(data), i = 0, j
        cdef const unsigned char *e
        out = []
        while True:
            e = <const unsigned char *>memchr(p + i, 10, n - i)
            j = (e - p) if e != NULL else n
            out.append(self.lookup(p + i, j - i, False))
            if e == NULL:
                break
            i = j + 1
        return out

    def lookup_one(self, str message, bint count=True):
        cdef bytes b = message.encode("utf-8", "surrogatepass")
        return self.lookup(<const unsigned char *>PyBytes_AS_STRING(b), len(b), False, count)

    def count(self, Py_ssize_t si):
        return self.counts[si] if 0 <= si < self.ncounts else 0

    def add_count(self, Py_ssize_t si, int32_t k=1):
        if si >= self.ncounts:
            self._grow(si)
        self.counts[si] += k

    def clear(self):
        table_clear(&self.t1)
        table_clear(&self.t2)
        table_clear(&self.t3)
        table_clear(&self.t4)


# ===================================================================== lines of a file
cdef extern from *:
    """
    #define PCRE2_CODE_UNIT_WIDTH 8
    #include <pcre2.h>
    """
    ctypedef struct pcre2_code:
        pass
    ctypedef struct pcre2_match_data:
        pass
    ctypedef struct pcre2_match_context:
        pass
    ctypedef struct pcre2_compile_context:
        pass
    ctypedef struct pcre2_general_context:
        pass
    ctypedef struct pcre2_jit_stack:
        pass
    pcre2_code *pcre2_compile(const unsigned char *, size_t, uint32_t, int *, size_t *, pcre2_compile_context *)
    int pcre2_jit_compile(pcre2_code *, uint32_t)
    void pcre2_code_free(pcre2_code *)
    pcre2_match_data *pcre2_match_data_create_from_pattern(const pcre2_code *, pcre2_general_context *)
    void pcre2_match_data_free(pcre2_match_data *)
    int pcre2_match(const pcre2_code *, const unsigned char *, size_t, size_t, uint32_t, pcre2_match_data *,
                    pcre2_match_context *) nogil
    int pcre2_jit_match(const pcre2_code *, const unsigned char *, size_t, size_t, uint32_t, pcre2_match_data *,
                        pcre2_match_context *) nogil
    size_t *pcre2_get_ovector_pointer(pcre2_match_data *) nogil
    int pcre2_get_error_message(int, unsigned char *, size_t)
    uint32_t PCRE2_ANCHORED
    uint32_t PCRE2_CASELESS
    uint32_t PCRE2_JIT_COMPLETE
    uint32_t PCRE2_NO_UTF_CHECK
    size_t PCRE2_UNSET


DEF MAXPAT = 8


cdef class Pattern:
    """A header pattern compiled by PCRE2 (JIT) for the per-line path; the same text as
    the Python :class:`re` pattern of a :class:`.formats.LogFormat`."""

    cdef pcre2_code *code
    cdef pcre2_match_data *md
    cdef bint jit

    def __cinit__(self, bytes pattern, bint anchored=True, bint caseless=False):
        cdef int err = 0
        cdef size_t off = 0
        cdef unsigned char buf[256]
        self.code = pcre2_compile(<const unsigned char *>PyBytes_AS_STRING(pattern), len(pattern),
                                  (PCRE2_ANCHORED if anchored else 0) | (PCRE2_CASELESS if caseless else 0),
                                  &err, &off, NULL)
        if self.code == NULL:
            pcre2_get_error_message(err, buf, 256)
            raise ValueError(f"header pattern does not compile at {off}: {(<bytes>buf).decode()}")
        self.jit = pcre2_jit_compile(self.code, PCRE2_JIT_COMPLETE) == 0
        self.md = pcre2_match_data_create_from_pattern(self.code, NULL)

    def __dealloc__(self):
        if self.md != NULL:
            pcre2_match_data_free(self.md)
        if self.code != NULL:
            pcre2_code_free(self.code)

    cdef inline int match(self, const unsigned char *s, Py_ssize_t n) noexcept nogil:
        """Match (anchored patterns) or search (the others) ``s``; < 0 when nothing."""
        if self.jit:
            return pcre2_jit_match(self.code, s, n, 0, 0, self.md, NULL)
        return pcre2_match(self.code, s, n, 0, 0, self.md, NULL)

    cdef inline Py_ssize_t start(self) noexcept nogil:
        return <Py_ssize_t>pcre2_get_ovector_pointer(self.md)[0]

    cdef inline Py_ssize_t end(self) noexcept nogil:
        return <Py_ssize_t>pcre2_get_ovector_pointer(self.md)[1]

    def groups(self, bytes line):
        """The spans of every group of a match of ``line`` (``None`` when it does not match);
        for tests and the Python side of :class:`.formats.LogFormat`."""
        cdef int rc = self.match(<const unsigned char *>PyBytes_AS_STRING(line), len(line))
        if rc < 0:
            return None
        cdef size_t *ov = pcre2_get_ovector_pointer(self.md)
        out = []
        for i in range(rc):
            if ov[2 * i] == PCRE2_UNSET:
                out.append((-1, -1))
            else:
                out.append((<Py_ssize_t>ov[2 * i], <Py_ssize_t>ov[2 * i + 1]))
        return out


cdef struct Buf:
    char *p
    Py_ssize_t n
    Py_ssize_t cap


cdef int buf_reserve(Buf *b, Py_ssize_t extra) except -1:
    cdef Py_ssize_t cap = b.cap or 4096
    cdef char *q
    if b.n + extra <= b.cap:
        return 0
    while cap < b.n + extra:
        cap *= 2
    q = <char *>realloc(b.p, cap)
    if q == NULL:
        raise MemoryError()
    b.p, b.cap = q, cap
    return 0


cdef inline int buf_put(Buf *b, const void *s, Py_ssize_t n) except -1:
    if b.n + n > b.cap:
        buf_reserve(b, n)
    memcpy(b.p + b.n, s, n)
    b.n += n
    return 0



cdef struct Fields:
    const unsigned char *s      # the line: NULs at its start, CR and the part past max_line removed
    Py_ssize_t ln
    Py_ssize_t nul
    bint long_line
    bint crlf
    bint high                   # holds a byte >= 0x80
    int pat                     # the header pattern that matched, -1 for none
    Py_ssize_t msg_s, msg_e     # spans into s (the message is the whole line without a header)
    Py_ssize_t lvl_s, lvl_e, comp_s, comp_e, pid_s, pid_e, thr_s, thr_e, host_s, host_e
    int64_t ts
    int q
    bint zoned


cdef class LineEngine:
    """The per-line path of a text log: line split, CR and NUL handling, binary and
    over-long lines, UTF-8 check, header split (PCRE2 patterns of the file's format and its
    alternates), time stamp, template key lookup.

    ``feed(block)`` takes complete lines (``\\n``-separated, no final terminator) as the
    reader hands them over.  Per line it keeps the shape (``take_shapes``, int32, -1 for a
    skipped line) when ``keep_shapes``; per shape the first and last time stamp and the
    first line; ``on_new(shape, line, level, message)`` is called for a shape's first line.
    Time stamps are microseconds (UTC when the text carries a zone, else the file's wall
    time; ``zoned`` tells).
    """

    cdef KeyTable keys
    cdef list patterns          # the Pattern objects (owners of the compiled codes)
    cdef pcre2_code *codes[MAXPAT]
    cdef pcre2_match_data *mds[MAXPAT]
    cdef bint jits[MAXPAT]
    cdef int npat
    cdef int g_msg[MAXPAT]
    cdef int g_ts[MAXPAT]
    cdef int g_level[MAXPAT]
    cdef int g_comp[MAXPAT]
    cdef int g_pid[MAXPAT]
    cdef int g_thread[MAXPAT]
    cdef int g_host[MAXPAT]
    cdef unsigned char orders[MAXPAT][16]
    cdef int olen[MAXPAT]
    cdef TsState st
    cdef bint keep_shapes
    cdef Buf shapes             # int32 per line (keep_shapes)
    cdef object on_new
    cdef Py_ssize_t max_line
    cdef int64_t *ts_min
    cdef int64_t *ts_max
    cdef int64_t *first_line
    cdef Py_ssize_t nshape
    cdef public int64_t lines, binary_lines, long_lines, decode_errors, crlf_lines, nul_bytes, with_ts
    cdef public bint any_zoned, all_zoned

    def __cinit__(self, KeyTable keys, list patterns, int year, tuple day, bint keep_shapes=False,
                  on_new=None, Py_ssize_t max_line=65536, **_subclass_options):
        """``patterns``: per format, tried in order, ``(pattern bytes, ts field order bytes,
        msg, ts, level, component, pid, thread, host group numbers)`` (-1 when absent)."""
        self.keys = keys
        self.npat = 0
        self.patterns = []
        self.add_patterns(patterns)
        self.st.year = year
        self.st.last_month = 0
        self.st.day_y, self.st.day_m, self.st.day_d = day
        self.st.last_tod = -1
        self.st.limit = INT64_MAX
        self.keep_shapes = keep_shapes
        memset(&self.shapes, 0, sizeof(Buf))
        self.on_new = on_new
        self.max_line = max_line
        self.nshape = 0
        self.ts_min = self.ts_max = self.first_line = NULL
        self.lines = self.binary_lines = self.long_lines = self.decode_errors = 0
        self.crlf_lines = self.nul_bytes = self.with_ts = 0
        self.any_zoned = False
        self.all_zoned = True

    def set_limit(self, int64_t limit):
        """Latest wall time (microseconds since the epoch) an inferred year may give."""
        self.st.limit = limit

    def __dealloc__(self):
        free(self.ts_min)
        free(self.ts_max)
        free(self.first_line)
        free(self.shapes.p)

    cdef int _grow(self, Py_ssize_t si) except -1:
        cdef Py_ssize_t n = self.nshape or 1024, i
        while n <= si:
            n *= 2
        cdef int64_t *a = <int64_t *>realloc(self.ts_min, n * sizeof(int64_t))
        cdef int64_t *b = <int64_t *>realloc(self.ts_max, n * sizeof(int64_t))
        cdef int64_t *c = <int64_t *>realloc(self.first_line, n * sizeof(int64_t))
        if a == NULL or b == NULL or c == NULL:
            raise MemoryError()
        for i in range(self.nshape, n):
            a[i] = INT64_MAX
            b[i] = INT64_MIN
            c[i] = 0
        self.ts_min, self.ts_max, self.first_line, self.nshape = a, b, c, n
        return 0

    cdef int _prep(self, const unsigned char *s, Py_ssize_t ln, Fields *f) noexcept nogil:
        """Clean one line (without its LF) into ``f``: NULs at its start, cut at ``max_line``,
        CR, binary check.  Returns 0 for a text line, 1 for a line of NULs only, 2 for binary."""
        cdef Py_ssize_t k, j, nctrl, lim
        cdef unsigned int c
        f.nul = 0
        f.long_line = f.crlf = f.high = False
        if ln and s[0] == 0:                        # a zero-filled run (copytruncate)
            while f.nul < ln and s[f.nul] == 0:
                f.nul += 1
            s += f.nul
            ln -= f.nul
            if ln == 0:
                f.s, f.ln = s, 0
                return 1
        if ln > self.max_line:
            f.long_line = True
            ln = self.max_line
        if ln and s[ln - 1] == 13:
            ln -= 1
            f.crlf = True
        f.s, f.ln = s, ln
        # binary: a NUL, or more than 10% control bytes in the first 512 bytes; the bytes
        # are looked at one by one only in words that hold a control or non-ASCII byte
        nctrl = 0
        lim = ln if ln < 512 else 512
        k = 0
        while k < ln:
            if not bl_ctrl_or_high(bl_load(s + k, ln - k), ln - k):
                k += 8
                continue
            for j in range(k, k + 8 if k + 8 < ln else ln):
                c = s[j]
                if c < 32:
                    if c == 0:
                        nctrl = ln + 1
                        break
                    if j < lim and c != 9 and c != 12 and c != 27 and c != 13 and c != 10:
                        nctrl += 1
                elif c >= 128:
                    f.high = True
            if nctrl > ln:
                break
            k += 8
        if nctrl > 0 and nctrl * 10 > lim:
            return 2
        return 0

    cdef void _match(self, Fields *f) noexcept:
        """Split the header off ``f``'s line with the first pattern that matches (spans into
        the line, the message the whole line when none does) and read its time stamp."""
        cdef int pi, rc = -1, k
        cdef size_t *ov
        cdef const unsigned char *s = f.s
        f.pat = -1
        f.msg_s, f.msg_e = 0, f.ln
        f.lvl_s = f.lvl_e = f.comp_s = f.comp_e = f.pid_s = f.pid_e = 0
        f.thr_s = f.thr_e = f.host_s = f.host_e = 0
        f.q = 0
        f.ts = 0
        f.zoned = False
        for pi in range(self.npat):
            if self.jits[pi]:
                rc = pcre2_jit_match(self.codes[pi], s, f.ln, 0, 0, self.mds[pi], NULL)
            else:
                rc = pcre2_match(self.codes[pi], s, f.ln, 0, 0, self.mds[pi], NULL)
            if rc < 0:
                continue
            f.pat = pi
            ov = pcre2_get_ovector_pointer(self.mds[pi])
            k = self.g_msg[pi]
            if k >= 0 and ov[2 * k] != PCRE2_UNSET:
                f.msg_s, f.msg_e = <Py_ssize_t>ov[2 * k], <Py_ssize_t>ov[2 * k + 1]
            k = self.g_ts[pi]
            if k >= 0 and ov[2 * k] != PCRE2_UNSET:
                f.q = scan_ts(&self.st, self.orders[pi], self.olen[pi], s + ov[2 * k],
                              <Py_ssize_t>(ov[2 * k + 1] - ov[2 * k]), &f.ts, &f.zoned)
            k = self.g_level[pi]
            if k >= 0 and ov[2 * k] != PCRE2_UNSET:
                f.lvl_s, f.lvl_e = <Py_ssize_t>ov[2 * k], <Py_ssize_t>ov[2 * k + 1]
            k = self.g_comp[pi]
            if k >= 0 and ov[2 * k] != PCRE2_UNSET:
                f.comp_s, f.comp_e = <Py_ssize_t>ov[2 * k], <Py_ssize_t>ov[2 * k + 1]
            k = self.g_pid[pi]
            if k >= 0 and ov[2 * k] != PCRE2_UNSET:
                f.pid_s, f.pid_e = <Py_ssize_t>ov[2 * k], <Py_ssize_t>ov[2 * k + 1]
            k = self.g_thread[pi]
            if k >= 0 and ov[2 * k] != PCRE2_UNSET:
                f.thr_s, f.thr_e = <Py_ssize_t>ov[2 * k], <Py_ssize_t>ov[2 * k + 1]
            k = self.g_host[pi]
            if k >= 0 and ov[2 * k] != PCRE2_UNSET:
                f.host_s, f.host_e = <Py_ssize_t>ov[2 * k], <Py_ssize_t>ov[2 * k + 1]
            return

    cdef inline void _count(self, Fields *f) noexcept:
        """Count a line that is read (not deferred)."""
        self.lines += 1
        self.nul_bytes += f.nul
        self.long_lines += f.long_line
        self.crlf_lines += f.crlf

    cdef inline bint _latin(self, Fields *f) noexcept:
        """A line that is not UTF-8 (read as Latin-1); counted."""
        if f.high and not utf8_valid(f.s, f.ln):
            self.decode_errors += 1
            return True
        return False

    cdef int _one(self, const unsigned char *s, Py_ssize_t ln, bint defer) except -3:
        """Read one line (without its LF).  Returns its shape, -1 for a line that gives no
        row (only NULs, binary), or -2 - without reading it - when ``defer`` is set and no
        header pattern matches this text line."""
        cdef Fields f
        cdef int kind = self._prep(s, ln, &f)
        cdef int32_t si
        cdef bint latin
        if kind:
            self._count(&f)
            if kind == 2:
                self.binary_lines += 1
            return -1
        self._match(&f)
        if f.pat < 0 and defer and f.ln and f.s[0] != 32 and f.s[0] != 9:
            return -2
        self._count(&f)
        latin = self._latin(&f)
        si = self.keys.lookup(f.s + f.msg_s, f.msg_e - f.msg_s, latin, True)
        self._shape_seen(si, &f)
        return si

    cdef int _shape_seen(self, int32_t si, Fields *f) except -1:
        """Per-shape numbers: first line (and ``on_new``), time range."""
        if si >= self.nshape:
            self._grow(si)
        if self.first_line[si] == 0:
            self.first_line[si] = self.lines
            if self.on_new is not None:
                self.on_new(si, self.lines,
                            PyBytes_FromStringAndSize(<const char *>f.s + f.lvl_s, f.lvl_e - f.lvl_s),
                            PyBytes_FromStringAndSize(<const char *>f.s + f.msg_s, f.msg_e - f.msg_s))
        if f.q:
            self._ts_seen(si, f.ts, f.zoned)
        return 0

    cdef inline void _ts_seen(self, int32_t si, int64_t ts, bint zoned) noexcept:
        """A line or record of shape ``si`` (already grown into) with time stamp ``ts``:
        the shape's time range and the file's zone flags."""
        self.with_ts += 1
        if zoned:
            self.any_zoned = True
        else:
            self.all_zoned = False
        if ts < self.ts_min[si]:
            self.ts_min[si] = ts
        if ts > self.ts_max[si]:
            self.ts_max[si] = ts

    cdef inline int _out(self, int32_t si) except -1:
        """Keep a line's shape (``keep_shapes``)."""
        if self.keep_shapes:
            buf_put(&self.shapes, &si, 4)
        return 0

    def feed(self, bytes block, Py_ssize_t start=0, int stop_after=0):
        """Read the lines of ``block`` from offset ``start``.  Returns -1 when all were read;
        with ``stop_after`` > 0, the offset of the first of that many consecutive text lines
        that no header pattern matches (those lines are not read yet: the caller may add a
        pattern and go on from there)."""
        cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(block)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(block), i = start, j, pend = -1, q
        cdef const unsigned char *e
        cdef int npend = 0
        cdef int32_t si
        cdef bint defer = stop_after > 0 and self.npat > 0
        while True:
            e = <const unsigned char *>memchr(p + i, 10, n - i)
            j = (e - p) if e != NULL else n
            si = self._one(p + i, j - i, defer)
            if si == -2:
                if npend == 0:
                    pend = i
                npend += 1
                if npend >= stop_after:
                    return pend
            else:
                if npend:                           # fewer than stop_after: read them now
                    q = pend
                    while q < i:
                        e = <const unsigned char *>memchr(p + q, 10, i - q)
                        j = e - p
                        self._out(self._one(p + q, j - q, False))
                        q = j + 1
                    npend = 0
                    e = <const unsigned char *>memchr(p + i, 10, n - i)
                    j = (e - p) if e != NULL else n
                self._out(si)
            if e == NULL:
                break
            i = j + 1
        if npend:
            q = pend
            while q <= n:
                e = <const unsigned char *>memchr(p + q, 10, n - q)
                j = (e - p) if e != NULL else n
                self._out(self._one(p + q, j - q, False))
                if e == NULL:
                    break
                q = j + 1
        return -1

    def add_patterns(self, list patterns):
        """More header patterns (another format met later in the file), tried after the others;
        returns how many were added (at most 8 in all)."""
        cdef Pattern cp
        cdef int added = 0
        for pat, order, gm, gt, gl, gc, gp, gth, gh in patterns:
            if self.npat >= MAXPAT:
                break
            i = self.npat
            cp = Pattern(pat)
            self.patterns.append(cp)
            self.codes[i], self.mds[i], self.jits[i] = cp.code, cp.md, cp.jit
            self.g_msg[i], self.g_ts[i], self.g_level[i] = gm, gt, gl
            self.g_comp[i], self.g_pid[i], self.g_thread[i], self.g_host[i] = gc, gp, gth, gh
            order = order[:15]
            memcpy(self.orders[i], <const char *>order, len(order))
            self.olen[i] = len(order)
            self.npat += 1
            added += 1
        return added

    def unmatched(self, bytes block, Py_ssize_t limit=200):
        """``(lines looked at, lines no pattern matches)`` among the first ``limit`` non-empty lines."""
        cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(block)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(block), i = 0, j, seen = 0, miss = 0, ln
        cdef const unsigned char *e
        cdef int pi, rc
        while seen < limit and i < n:
            e = <const unsigned char *>memchr(p + i, 10, n - i)
            j = (e - p) if e != NULL else n
            ln = j - i
            if ln and p[i + ln - 1] == 13:
                ln -= 1
            if ln:
                seen += 1
                rc = -1
                for pi in range(self.npat):
                    if self.jits[pi]:
                        rc = pcre2_jit_match(self.codes[pi], p + i, ln, 0, 0, self.mds[pi], NULL)
                    else:
                        rc = pcre2_match(self.codes[pi], p + i, ln, 0, PCRE2_ANCHORED, self.mds[pi], NULL)
                    if rc >= 0:
                        break
                if rc < 0:
                    miss += 1
            i = j + 1
        return seen, miss

    @property
    def patterns_in_use(self):
        return self.npat

    def take_shapes(self):
        """The shapes of the lines fed since the last call (int32 bytes, -1 = no row)."""
        out = PyBytes_FromStringAndSize(self.shapes.p, self.shapes.n)
        self.shapes.n = 0
        return out

    def shape_stats(self, Py_ssize_t si):
        """``(first line, first ts, last ts)`` of a shape (ts ``None`` when it had none)."""
        if si >= self.nshape or self.first_line[si] == 0:
            return 0, None, None
        if self.ts_min[si] == INT64_MAX:
            return self.first_line[si], None, None
        return self.first_line[si], self.ts_min[si], self.ts_max[si]


def write_rows(bytes shapes, list fragments, int64_t first_line):
    """CSV rows ``line<fragment of the shape>`` for per-line shapes (int32 bytes; -1 = no row);
    lines are numbered from ``first_line``.  Returns the bytes to write."""
    cdef Py_ssize_t n = len(shapes) // 4, i, total = 0, k, nf = len(fragments)
    cdef const int32_t *sp = <const int32_t *>PyBytes_AS_STRING(shapes)
    cdef const char **fp = <const char **>malloc(nf * sizeof(char *) + 1)
    cdef Py_ssize_t *fl = <Py_ssize_t *>malloc(nf * sizeof(Py_ssize_t) + 1)
    cdef char num[24]
    cdef int64_t v
    cdef int nd
    cdef int32_t si
    if fp == NULL or fl == NULL:
        free(fp)
        free(fl)
        raise MemoryError()
    try:
        for k in range(nf):
            fp[k] = PyBytes_AS_STRING(fragments[k])
            fl[k] = PyBytes_GET_SIZE(fragments[k])
        for i in range(n):
            si = sp[i]
            if si >= 0:
                v = first_line + i
                nd = 1
                while v >= 10:
                    v //= 10
                    nd += 1
                total += fl[si] + nd
        out = PyBytes_FromStringAndSize(NULL, total)
        o = PyBytes_AS_STRING(out)
        k = 0
        for i in range(n):
            si = sp[i]
            if si < 0:
                continue
            v = first_line + i
            nd = 0
            while True:
                num[nd] = <char>(48 + v % 10)
                nd += 1
                v //= 10
                if v == 0:
                    break
            while nd:
                nd -= 1
                o[k] = num[nd]
                k += 1
            memcpy(o + k, fp[si], fl[si])
            k += fl[si]
        return out
    finally:
        free(fp)
        free(fl)


# ===================================================================== records
cdef int buf_put_text(Buf *b, const unsigned char *s, Py_ssize_t n, bint latin) except -1:
    """Text bytes as UTF-8 (a Latin-1 line is transcoded)."""
    cdef Py_ssize_t i
    cdef unsigned int c
    if not latin:
        return buf_put(b, s, n)
    buf_reserve(b, 2 * n)
    for i in range(n):
        c = s[i]
        if c < 0x80:
            b.p[b.n] = <char>c
            b.n += 1
        else:
            b.p[b.n] = <char>(0xC0 | (c >> 6))
            b.p[b.n + 1] = <char>(0x80 | (c & 0x3F))
            b.n += 2
    return 0


cdef inline Py_ssize_t utf8_cut(const char *s, Py_ssize_t n, Py_ssize_t limit) noexcept nogil:
    """The longest prefix of at most ``limit`` bytes that ends on a character boundary."""
    if n <= limit:
        return n
    while limit > 0 and (<unsigned char>s[limit] & 0xC0) == 0x80:
        limit -= 1
    return limit


DEF NSTR = 7            # level, component, pid, thread, host, message, head
DEF F_LEVEL = 0
DEF F_COMP = 1
DEF F_PID = 2
DEF F_THREAD = 3
DEF F_HOST = 4
DEF F_MSG = 5
DEF F_HEAD = 6
DEF MAX_MESSAGE = 4096  # bytes of a message kept in the table
DEF MAX_HEAD = 500
DEF MAX_RECORD = 65536  # bytes of a record's text (head line and continuation lines)
DEF NLEVELS = 64


cdef class RecordEngine(LineEngine):
    """The records of a text log, as columns: a line without the file's header (a stack
    frame, an indented continuation) joins the record before it.  Per record: head line,
    last line, time stamp and its quality, severity, shape, and the level, component,
    pid, thread, host, message and head-line texts (UTF-8, Arrow layout: int32 offsets and
    one data buffer).  Records with continuation lines also get their whole text.

    ``has_header``: the file has a header format (a line that does not match it and has no
    time stamp near its start, or starts with a blank, continues a record); without one a
    line continues a record when ``cont`` matches it.  ``severity_of(level)`` gives the
    severity of a level word (-1: none); a record without a level gets the severity of
    the words in its message (``fatal`` ... ``warning``).  ``status_level``: the level is
    the HTTP status of the message (an access log).
    """

    cdef bint has_header, status_level
    cdef Pattern cont, anyts, msglevel, status
    cdef object severity_of
    cdef char lv_text[NLEVELS][16]
    cdef int lv_len[NLEVELS]
    cdef int lv_sev[NLEVELS]
    cdef int nlv
    # the pending record (fields copied: its lines may be in a block that is gone)
    cdef bint pend, p_latin, p_multi
    cdef int64_t p_line, p_end, p_ts
    cdef int p_q, p_sev
    cdef bint p_zoned
    cdef Buf p_f[NSTR]
    cdef Buf p_text
    # outputs since the last take
    cdef Buf o_line, o_end, o_ts, o_q, o_sev, o_shape, o_zoned
    cdef Buf o_off[NSTR]
    cdef Buf o_data[NSTR]
    cdef list texts
    cdef Py_ssize_t nrec

    def __cinit__(self, KeyTable keys, list patterns, int year, tuple day, bint keep_shapes=False,
                  on_new=None, Py_ssize_t max_line=65536, *, bint has_header=True, bytes cont=b"",
                  bytes anyts=b"", bytes msglevel=b"", bytes status=b"", severity_of=None):
        self.has_header = has_header
        self.cont = Pattern(cont) if cont else None
        self.anyts = Pattern(anyts, False) if anyts else None
        self.msglevel = Pattern(msglevel, False, True) if msglevel else None
        self.status = Pattern(status, False) if status else None
        self.status_level = bool(status)
        self.severity_of = severity_of
        self.nlv = 0
        self.pend = False
        self.texts = []
        self.nrec = 0
        memset(self.p_f, 0, sizeof(self.p_f))
        memset(&self.p_text, 0, sizeof(Buf))
        memset(&self.o_line, 0, sizeof(Buf))
        memset(&self.o_end, 0, sizeof(Buf))
        memset(&self.o_ts, 0, sizeof(Buf))
        memset(&self.o_q, 0, sizeof(Buf))
        memset(&self.o_sev, 0, sizeof(Buf))
        memset(&self.o_shape, 0, sizeof(Buf))
        memset(&self.o_zoned, 0, sizeof(Buf))
        memset(self.o_off, 0, sizeof(self.o_off))
        memset(self.o_data, 0, sizeof(self.o_data))
        self._start_offsets()

    def __dealloc__(self):
        cdef int k
        for k in range(NSTR):
            free(self.p_f[k].p)
            free(self.o_off[k].p)
            free(self.o_data[k].p)
        free(self.p_text.p)
        free(self.o_line.p)
        free(self.o_end.p)
        free(self.o_ts.p)
        free(self.o_q.p)
        free(self.o_sev.p)
        free(self.o_shape.p)
        free(self.o_zoned.p)

    cdef int _start_offsets(self) except -1:
        cdef int32_t zero = 0
        cdef int k
        for k in range(NSTR):
            self.o_off[k].n = 0
            self.o_data[k].n = 0
            buf_put(&self.o_off[k], &zero, 4)
        self.o_line.n = self.o_end.n = self.o_ts.n = self.o_q.n = self.o_sev.n = 0
        self.o_shape.n = self.o_zoned.n = 0
        self.nrec = 0
        return 0

    cdef int _level_severity(self, const unsigned char *s, Py_ssize_t n) except -2:
        """Severity of a level word (cached), -1 when it is not one."""
        cdef int i, sev
        if n == 0:
            return -1
        if n < 16:
            for i in range(self.nlv):
                if self.lv_len[i] == n and memcmp(self.lv_text[i], s, n) == 0:
                    return self.lv_sev[i]
        sev = self.severity_of(PyBytes_FromStringAndSize(<const char *>s, n).decode("utf-8", "replace"))
        if n < 16 and self.nlv < NLEVELS:
            memcpy(self.lv_text[self.nlv], s, n)
            self.lv_len[self.nlv] = <int>n
            self.lv_sev[self.nlv] = sev
            self.nlv += 1
        return sev

    cdef int _message_severity(self, const unsigned char *s, Py_ssize_t n) noexcept:
        cdef Py_ssize_t a, k
        cdef unsigned int c0
        if self.msglevel is None or self.msglevel.match(s, n) < 0:
            return 0
        a = self.msglevel.start()
        k = self.msglevel.end() - a
        c0 = lower(s[a])
        if c0 == b'w':
            return 2                                    # warn, warning
        if (k == 5 and c0 == b'f' and lower(s[a + 1]) == b'a' and lower(s[a + 2]) == b't') \
                or (c0 == b'c') or (c0 == b'p'):
            return 4                                    # fatal, critical, panic
        return 3                                        # error, severe, failed, failure, exception

    cdef int _set(self, int k, const unsigned char *s, Py_ssize_t a, Py_ssize_t e, bint strip) except -1:
        cdef Buf *b = &self.p_f[k]
        if strip:
            while a < e and (s[a] == 32 or s[a] == 9):
                a += 1
            while e > a and (s[e - 1] == 32 or s[e - 1] == 9):
                e -= 1
        b.n = 0
        return buf_put(b, s + a, e - a)

    cdef int _head(self, Fields *f) except -1:
        """Start a record at this line (the pending one is emitted first)."""
        cdef int sev
        if self.pend:
            self._emit()
        self.pend = True
        self.p_line = self.p_end = self.lines
        self.p_latin = self._latin(f)
        self.p_multi = False
        self.p_text.n = 0
        self._set(F_HEAD, f.s, 0, f.ln if f.ln < 4 * MAX_HEAD else 4 * MAX_HEAD, False)
        if f.pat >= 0:
            self._set(F_LEVEL, f.s, f.lvl_s, f.lvl_e, False)
            self._set(F_COMP, f.s, f.comp_s, f.comp_e, True)
            self._set(F_PID, f.s, f.pid_s, f.pid_e, False)
            self._set(F_THREAD, f.s, f.thr_s, f.thr_e, False)
            self._set(F_HOST, f.s, f.host_s, f.host_e, False)
            self._set(F_MSG, f.s, f.msg_s, f.msg_e, False)
            self.p_ts, self.p_q, self.p_zoned = f.ts, f.q, f.zoned
        else:
            for k in range(F_MSG):
                self.p_f[k].n = 0
            self._set(F_MSG, f.s, 0, f.ln, False)
            self.p_ts, self.p_q, self.p_zoned = 0, 0, False
        return 0

    cdef int _cont(self, Fields *f) except -1:
        """A continuation line of the pending record."""
        cdef Buf *t = &self.p_text
        self.p_end = self.lines
        if not self.p_multi:
            self.p_multi = True
            t.n = 0
            buf_put_text(t, <const unsigned char *>self.p_f[F_HEAD].p, self.p_f[F_HEAD].n, self.p_latin)
        if t.n < MAX_RECORD:
            buf_put(t, b"\n", 1)
            buf_put_text(t, f.s, f.ln, self._latin(f))
            if t.n > MAX_RECORD:
                t.n = utf8_cut(t.p, t.n, MAX_RECORD)
        else:
            self._latin(f)                           # counted all the same
        return 0

    cdef int _emit(self) except -1:
        """Write the pending record to the output columns."""
        cdef Buf *m = &self.p_f[F_MSG]
        cdef int32_t si = self.keys.lookup(<const unsigned char *>m.p, m.n, self.p_latin, True)
        cdef int sev = -1, k
        cdef int32_t off
        cdef int8_t q8, s8, z8
        cdef Py_ssize_t cut
        cdef const unsigned char *code
        cdef int st
        if self.status_level and self.p_f[F_LEVEL].n == 0 and self.status.match(<const unsigned char *>m.p, m.n) >= 0:
            code = <const unsigned char *>m.p + pcre2_get_ovector_pointer(self.status.md)[2]
            st = code[0]
            self.p_f[F_LEVEL].n = 0
            if st == b'5':
                buf_put(&self.p_f[F_LEVEL], b"error", 5)
            elif st == b'4':
                buf_put(&self.p_f[F_LEVEL], b"warning", 7)
            else:
                buf_put(&self.p_f[F_LEVEL], b"info", 4)
        if self.p_f[F_LEVEL].n:
            sev = self._level_severity(<const unsigned char *>self.p_f[F_LEVEL].p, self.p_f[F_LEVEL].n)
        if sev < 0:
            sev = self._message_severity(<const unsigned char *>m.p, m.n)
        # per-shape numbers (first line, time range) as for single lines
        if si >= self.nshape:
            self._grow(si)
        if self.first_line[si] == 0:
            self.first_line[si] = self.p_line
        if self.p_q:
            self._ts_seen(si, self.p_ts, self.p_zoned)
        buf_put(&self.o_line, &self.p_line, 8)
        buf_put(&self.o_end, &self.p_end, 8)
        buf_put(&self.o_ts, &self.p_ts, 8)
        q8, s8, z8 = <int8_t>self.p_q, <int8_t>sev, <int8_t>self.p_zoned
        buf_put(&self.o_q, &q8, 1)
        buf_put(&self.o_sev, &s8, 1)
        buf_put(&self.o_zoned, &z8, 1)
        buf_put(&self.o_shape, &si, 4)
        for k in range(NSTR):
            if k == F_MSG or k == F_HEAD:
                cut = self.p_f[k].n
                if self.p_latin:
                    buf_put_text(&self.o_data[k], <const unsigned char *>self.p_f[k].p,
                                 cut if cut < (MAX_MESSAGE if k == F_MSG else MAX_HEAD)
                                 else (MAX_MESSAGE if k == F_MSG else MAX_HEAD), True)
                else:
                    cut = utf8_cut(self.p_f[k].p, cut, MAX_MESSAGE if k == F_MSG else MAX_HEAD)
                    buf_put(&self.o_data[k], self.p_f[k].p, cut)
            else:
                buf_put_text(&self.o_data[k], <const unsigned char *>self.p_f[k].p, self.p_f[k].n, self.p_latin)
            off = <int32_t>self.o_data[k].n
            buf_put(&self.o_off[k], &off, 4)
        if self.p_multi:
            self.texts.append((self.nrec, PyBytes_FromStringAndSize(self.p_text.p, self.p_text.n)
                               .decode("utf-8", "replace")))
        self.nrec += 1
        self.pend = False
        return 0

    cdef bint _is_cont(self, Fields *f) noexcept:
        cdef Py_ssize_t lim
        if not self.pend:
            return False
        if self.has_header:
            if f.pat >= 0:
                return False
            if f.ln == 0 or f.s[0] == 32 or f.s[0] == 9:
                return True
            if self.anyts is None:
                return True
            lim = f.ln if f.ln < 72 else 72
            return self.anyts.match(f.s, lim) < 0 or self.anyts.start() >= 24
        return f.ln > 0 and self.cont is not None and self.cont.match(f.s, f.ln) >= 0

    cdef int _one(self, const unsigned char *s, Py_ssize_t ln, bint defer) except -3:
        cdef Fields f
        cdef int kind = self._prep(s, ln, &f)
        if kind:
            self._count(&f)
            if kind == 2:
                self.binary_lines += 1
            return -1
        self._match(&f)
        if f.pat < 0 and defer and f.ln and f.s[0] != 32 and f.s[0] != 9 and not self._is_cont(&f):
            return -2
        self._count(&f)
        if self._is_cont(&f):
            self._cont(&f)
        else:
            self._head(&f)
        return 0

    def finish(self):
        """Emit the last record (at the end of the file)."""
        if self.pend:
            self._emit()

    def take_records(self):
        """The records completed since the last call, as a dict of buffers (see class doc)."""
        cdef int k
        out = {
            "n": self.nrec,
            "line": PyBytes_FromStringAndSize(self.o_line.p, self.o_line.n),
            "end_line": PyBytes_FromStringAndSize(self.o_end.p, self.o_end.n),
            "ts": PyBytes_FromStringAndSize(self.o_ts.p, self.o_ts.n),
            "ts_quality": PyBytes_FromStringAndSize(self.o_q.p, self.o_q.n),
            "zoned": PyBytes_FromStringAndSize(self.o_zoned.p, self.o_zoned.n),
            "severity": PyBytes_FromStringAndSize(self.o_sev.p, self.o_sev.n),
            "shape": PyBytes_FromStringAndSize(self.o_shape.p, self.o_shape.n),
            "texts": self.texts,
        }
        for k, name in enumerate(("level", "component", "pid", "thread", "host", "message", "head")):
            out[name] = (PyBytes_FromStringAndSize(self.o_off[k].p, self.o_off[k].n),
                         PyBytes_FromStringAndSize(self.o_data[k].p, self.o_data[k].n))
        self.texts = []
        self._start_offsets()
        return out
