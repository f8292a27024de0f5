# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""The compiled per-line path of the text-log analysis.

Everything that runs once per log line lives here, typed, on bytes:
time stamps are read by one generic scanner driven by a field order
(``YMDhmsf``, ``MDhmsf`` ...), so every time stamp shape of
:mod:`.timestamps` is parsed by the same code.

The Python modules keep the public names (:class:`.timestamps.TsParser`).
"""

from libc.stdint cimport int64_t

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
        if not have[0]:
            if st.last_month and v[1] < st.last_month - 6:
                st.year += 1                         # New Year roll-over
            elif st.last_month and v[1] > st.last_month + 6:
                st.year -= 1                         # the file went back over New Year
            st.last_month = <int>v[1]
            v[0] = st.year
            q = Q_INFERRED_YEAR
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

    def scan(self, bytes order, bytes text):
        cdef int64_t out = 0
        cdef bint zoned = False
        cdef int q = scan_ts(&self.st, <const unsigned char *>order, len(order),
                             <const unsigned char *>text, len(text), &out, &zoned)
        return out, q, zoned
