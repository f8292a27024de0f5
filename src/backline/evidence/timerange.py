"""Cheap time-range probes: first and last time of a capture, event log or text
log, and the time a minidump was written.

Only record headers (captures, event logs) or the head and tail of a text
file are read; nothing is decoded in full.  A probe never raises: damage it
meets is returned as a problem (e.g. a capture cut in the middle of a packet).

>>> from datetime import datetime, timezone
>>> filetime_to_utc(116444736000000000) == datetime(1970, 1, 1, tzinfo=timezone.utc)
True
"""

from __future__ import annotations

import mmap
import re
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO

from backline.evidence.classify import Classification
from backline.model.core import ArtifactKind

UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Walk at most this many capture records from the start (well under a second); past
#: that the end time is found from the tail of the file.
MAX_RECORDS = 1_000_000
TAIL_BYTES = 1 << 20
#: Captures larger than this are not walked: first record from the start, last
#: record from a chain of headers in the tail (falling back to a walk if none).
WALK_BYTES = 2 << 20
TEXT_PROBE = 64 * 1024


@dataclass(frozen=True, slots=True)
class TimeProbe:
    start: datetime | None = None
    end: datetime | None = None
    problems: tuple[str, ...] = ()


def filetime_to_utc(ft: int) -> datetime:
    """Windows FILETIME (100 ns since 1601) to an aware UTC datetime."""
    return datetime(1601, 1, 1, tzinfo=UTC) + timedelta(microseconds=ft // 10)


def _epoch(sec: float) -> datetime | None:
    try:
        return _EPOCH + timedelta(seconds=sec)
    except OverflowError:
        return None


def _span(times: list[float], scale: float = 1.0) -> tuple[datetime | None, datetime | None]:
    if not times:
        return None, None
    return _epoch(min(times) * scale), _epoch(max(times) * scale)


# ------------------------------------------------------------------ captures

def _pcap(f: BinaryIO, size: int, nano: bool) -> TimeProbe:
    hdr = f.read(24)
    if len(hdr) < 24:
        return TimeProbe(problems=("truncated: pcap global header incomplete",))
    e = "<" if hdr[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    div = 1e9 if nano else 1e6
    unpack = struct.Struct(e + "IIII").unpack_from
    if size > WALK_BYTES and size >= 24 + 16:
        sec, frac, incl, _orig = unpack(f.read(16))
        first = sec + frac / div
        last = _pcap_tail_time(f, size, e, div)
        if last is not None and 24 + 16 + incl <= size:
            return TimeProbe(_epoch(first), _epoch(max(first, last)))
        f.seek(24)                      # no clean chain to the end: walk to find the damage
    lo = hi = None
    off, n = 24, 0
    problems: tuple[str, ...] = ()
    with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:   # no per-record syscalls
        while n < MAX_RECORDS:
            if off >= size:
                break
            if off + 16 > size:
                problems = (f"truncated: record header {n + 1} at offset 0x{off:x} is cut short",)
                break
            sec, frac, incl, _orig = unpack(mm, off)
            if incl > 0x4000000:
                problems = (f"corrupt: record {n + 1} at offset 0x{off:x} claims {incl} bytes",)
                break
            if off + 16 + incl > size:
                problems = (f"truncated: record {n + 1} at offset 0x{off:x} is cut short "
                            f"({size - off - 16} of {incl} bytes)",)
                break
            t = sec + frac / div
            if lo is None:
                lo = hi = t
            elif t > hi:
                hi = t
            elif t < lo:
                lo = t
            off += 16 + incl
            n += 1
    if lo is None:
        return TimeProbe(problems=problems)
    if n >= MAX_RECORDS:
        last = _pcap_tail_time(f, size, e, div)
        if last is None:
            problems += (f"time range end not probed past record {n}",)
        else:
            hi = max(hi, last)  # type: ignore[type-var]
    return TimeProbe(_epoch(lo), _epoch(hi), problems)  # type: ignore[arg-type]


def _pcap_tail_time(f: BinaryIO, size: int, e: str, div: float) -> float | None:
    """Time of the last record, found by looking in the tail for an offset from
    which a chain of plausible record headers ends exactly at the end of the file."""
    tail_len = min(size - 24, TAIL_BYTES)
    f.seek(size - tail_len)
    buf = f.read(tail_len)
    unpack = struct.Struct(e + "IIII").unpack_from
    # A chain that fails from one offset fails from every offset on it, so each offset is
    # walked at most once (a cut capture used to re-walk the same chain from every start:
    # quadratic, minutes for a cut file of small packets).
    dead = bytearray(len(buf) + 1)
    for start in range(0, max(0, len(buf) - 16)):
        if dead[start]:
            continue
        pos, last, count = start, None, 0
        visited = []
        while pos + 16 <= len(buf) and not dead[pos]:
            sec, frac, incl, orig = unpack(buf, pos)
            if incl > 0x40000 or orig < incl or frac >= div:
                break
            visited.append(pos)
            pos += 16 + incl
            last, count = sec + frac / div, count + 1
        if pos == len(buf) and count >= 2:
            return last
        for v in visited:
            dead[v] = 1
        dead[start] = 1
    return None


def _pcapng(f: BinaryIO, size: int) -> TimeProbe:
    if size > WALK_BYTES:
        first = _pcapng_walk(f, size, first_only=True)
        if isinstance(first, _Walk) and first.start is not None:
            last = _pcapng_last(f, size, first.meta)
            if last is not None:
                return TimeProbe(first.start, max(first.start, last))
    walked = _pcapng_walk(f, size)
    assert isinstance(walked, TimeProbe)
    return walked


def _pcapng_last(f: BinaryIO, size: int, state: tuple) -> datetime | None:
    """Time of the last packet block, walking back by the trailing block lengths."""
    e, resol = state
    end = size
    for _ in range(64):
        if end < 12:
            return None
        f.seek(end - 4)
        (blen,) = struct.unpack(e + "I", f.read(4))
        if blen < 12 or blen % 4 or blen > end:
            return None
        f.seek(end - blen)
        head = f.read(20)
        btype, lead = struct.unpack_from(e + "II", head)
        if lead != blen:
            return None
        if btype == 6:
            iface, th, tl = struct.unpack_from(e + "III", head, 8)
            res = resol[iface] if iface < len(resol) else 1e-6
            return _epoch(((th << 32) | tl) * res)
        end -= blen
    return None


@dataclass(frozen=True, slots=True)
class _Walk:
    start: datetime | None
    end: datetime | None
    problems: tuple[str, ...]
    meta: tuple


def _pcapng_walk(f: BinaryIO, size: int, first_only: bool = False) -> "_Walk | TimeProbe":
    e = "<"
    resol: list[float] = []
    lo = hi = None
    off, n = 0, 0
    while n < MAX_RECORDS and off + 12 <= size:
        f.seek(off)
        head = f.read(28)
        if len(head) < 12:
            break
        btype = struct.unpack_from(e + "I", head)[0]
        if btype == 0x0A0D0D0A:
            e = "<" if head[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
            resol = []
        (blen,) = struct.unpack_from(e + "I", head, 4)
        if blen < 12 or blen % 4 or off + blen > size:
            what = "cut short" if off + blen > size and blen >= 12 else f"has a bad length {blen}"
            return TimeProbe(_epoch(lo) if lo is not None else None, _epoch(hi) if hi is not None else None,
                             (f"{'truncated' if 'short' in what else 'corrupt'}: block at offset 0x{off:x} {what}",))
        if btype == 1:                                     # interface description
            f.seek(off + 16)
            body = f.read(min(blen - 20, 4096))
            res = 1e-6
            p = 0
            while p + 4 <= len(body):
                code, olen = struct.unpack_from(e + "HH", body, p)
                if code == 0:
                    break
                if code == 9 and olen >= 1:
                    v = body[p + 4]
                    res = 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0 ** -v
                p += 4 + ((olen + 3) & ~3)
            resol.append(res)
        elif btype in (6, 2):                              # enhanced / obsolete packet
            if btype == 6:
                iface, th, tl = struct.unpack_from(e + "III", head, 8)
            else:
                iface = struct.unpack_from(e + "H", head, 8)[0]
                th, tl = struct.unpack_from(e + "II", head, 12)
            res = resol[iface] if iface < len(resol) else 1e-6
            t = ((th << 32) | tl) * res
            lo = t if lo is None or t < lo else lo
            hi = t if hi is None or t > hi else hi
            n += 1
            if first_only:
                return _Walk(_epoch(t), None, (), (e, list(resol)))
        off += blen
    return TimeProbe(_epoch(lo) if lo is not None else None, _epoch(hi) if hi is not None else None)


def _netmon2(f: BinaryIO, size: int) -> TimeProbe:
    hdr = f.read(32)
    if len(hdr) < 32:
        return TimeProbe(problems=("truncated: Network Monitor header incomplete",))
    minor = hdr[4]
    year, month, _dow, day, hour, minute, sec, ms = struct.unpack_from("<8H", hdr, 8)
    table_off, table_len = struct.unpack_from("<II", hdr, 24)
    if table_off + table_len > size:
        return TimeProbe(problems=(f"truncated: frame table at 0x{table_off:x} lies past the end of the file",))
    f.seek(table_off)
    table = f.read(min(table_len, 4 * MAX_RECORDS))
    offsets = struct.unpack(f"<{len(table) // 4}I", table[: len(table) // 4 * 4])
    if not offsets:
        return TimeProbe()
    try:
        base = datetime(year, month, day, hour, minute, sec, ms * 1000, tzinfo=UTC)
    except ValueError:
        base = None
    times: list[datetime] = []
    for o in (offsets[0], offsets[-1]):
        f.seek(o)
        fh = f.read(16)
        if len(fh) < 16:
            return TimeProbe(problems=(f"truncated: frame at 0x{o:x} is past the end of the file",))
        delta, _wire, cap = struct.unpack("<QII", fh)
        if minor >= 1:       # 2.1+: every frame carries a UTC FILETIME in its trailer
            f.seek(o + 16 + cap + 6)
            ft = f.read(8)
            if len(ft) == 8:
                times.append(filetime_to_utc(struct.unpack("<Q", ft)[0]))
                continue
        if base is not None:  # header time is the capturing machine's local time
            times.append(base + timedelta(microseconds=delta))
    if len(times) < 2:
        return TimeProbe()
    return TimeProbe(min(times), max(times))


# ------------------------------------------------------------------ evtx

def _evtx(f: BinaryIO, size: int) -> TimeProbe:
    """Earliest and latest record written-time over every chunk (records are
    not in time order across chunks, and dirty files have unlisted chunks)."""
    lo = hi = None
    off = 0x1000
    while off + 0x200 <= size:
        f.seek(off)
        chunk = f.read(0x10000)
        if chunk[:8] == b"ElfChnk\x00":
            (free_off,) = struct.unpack_from("<I", chunk, 0x30)
            end = min(free_off, len(chunk)) if free_off >= 0x200 else len(chunk)
            pos = 0x200
            while pos + 24 <= end and chunk[pos:pos + 4] == b"\x2a\x2a\x00\x00":
                rsize, _rid, ft = struct.unpack_from("<IQQ", chunk, pos + 4)
                if ft:
                    lo = ft if lo is None or ft < lo else lo
                    hi = ft if hi is None or ft > hi else hi
                if rsize < 24:
                    break
                pos += rsize
        off += 0x10000
    if lo is None:
        return TimeProbe(problems=("no event record found in any chunk",))
    return TimeProbe(filetime_to_utc(lo), filetime_to_utc(hi))  # type: ignore[arg-type]


# ------------------------------------------------------------------ text logs

_MON = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?"
                  r"\s?(Z|[+-]\d{2}:?\d{2})?")
_DASHDOT = re.compile(r"(\d{4})-(\d{2})-(\d{2})-(\d{2})\.(\d{2})\.(\d{2})(?:\.(\d{1,9}))?")
_CTIME = re.compile(r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (" + "|".join(_MON) +
                    r") +(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))? (\d{4})")
_CLF = re.compile(r"\[(\d{1,2})/(" + "|".join(_MON) + r")/(\d{4})[: ](\d{2}):(\d{2}):(\d{2})(?: ([+-]\d{4}))?\]")
_COMPACT = re.compile(r"^(\d{2})(\d{2})(\d{2}) (\d{2})(\d{2})(\d{2})\b")            # yyMMdd HHmmss
_STAMP8 = re.compile(r"^(\d{4})(\d{2})(\d{2})-(\d{1,2}):(\d{1,2}):(\d{1,2})(?::(\d{1,3}))?")


def _frac(s: str | None) -> int:
    return int((s or "0").ljust(6, "0")[:6])


def parse_line_time(line: str) -> datetime | None:
    """The timestamp at the start of a log line (within its first 96 characters).

    Only forms that carry a year are used; a stamp without zone is taken as UTC.

    >>> parse_line_time("2015-10-18 18:01:47,978 INFO x").isoformat()
    '2015-10-18T18:01:47.978000+00:00'
    >>> parse_line_time("[Sun Dec 04 04:47:44 2005] [notice] x").isoformat()
    '2005-12-04T04:47:44+00:00'
    >>> parse_line_time('10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200').isoformat()
    '2000-10-10T20:55:36+00:00'
    """
    start = line[:96]
    try:
        m = _ISO.search(start)
        if m:
            y, mo, d, h, mi, s, fr, tz = m.groups()
            dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), _frac(fr), tzinfo=UTC)
            if tz and tz != "Z":
                sign = 1 if tz[0] == "+" else -1
                hh, mm = int(tz[1:3]), int(tz[-2:])
                dt -= sign * timedelta(hours=hh, minutes=mm)
            return dt
        m = _DASHDOT.search(start)
        if m:
            y, mo, d, h, mi, s, fr = m.groups()
            return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), _frac(fr), tzinfo=UTC)
        m = _CTIME.search(start)
        if m:
            mon, d, h, mi, s, fr, y = m.groups()
            return datetime(int(y), _MON[mon], int(d), int(h), int(mi), int(s), _frac(fr), tzinfo=UTC)
        m = _CLF.search(start)
        if m:
            d, mon, y, h, mi, s, tz = m.groups()
            dt = datetime(int(y), _MON[mon], int(d), int(h), int(mi), int(s), tzinfo=UTC)
            if tz:
                sign = 1 if tz[0] == "+" else -1
                dt -= sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[3:5]))
            return dt
        m = _STAMP8.match(start)
        if m:
            y, mo, d, h, mi, s, ms = m.groups()
            return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), int(ms or 0) * 1000, tzinfo=UTC)
        m = _COMPACT.match(start)
        if m:
            yy, mo, d, h, mi, s = (int(g) for g in m.groups())
            return datetime(2000 + yy if yy < 70 else 1900 + yy, mo, d, h, mi, s, tzinfo=UTC)
    except ValueError:
        return None
    return None


def _text(f: BinaryIO, size: int, encoding: str) -> TimeProbe:
    codec = {"utf-16le": "utf-16-le", "utf-16be": "utf-16-be", "utf-8-sig": "utf-8", "empty": "utf-8"}.get(
        encoding, encoding or "utf-8")
    head = f.read(TEXT_PROBE)
    tail_off = max(0, size - TEXT_PROBE)
    if codec.startswith("utf-16"):
        tail_off -= tail_off % 2
    f.seek(tail_off)
    tail = f.read(TEXT_PROBE)
    first = last = None
    for line in head.decode(codec, "replace").splitlines():
        first = parse_line_time(line)
        if first:
            break
    for line in reversed(tail.decode(codec, "replace").splitlines()):
        last = parse_line_time(line)
        if last:
            break
    if first and last and last < first:
        first, last = last, first
    return TimeProbe(first, last or first)


def _minidump_time(path: Path) -> tuple[datetime | None, datetime | None, tuple[str, ...]]:
    """The minidump header's TimeDateStamp (when the dump was written), as start and end."""
    try:
        with open(path, "rb") as f:
            head = f.read(32)
    except OSError as exc:
        return None, None, (f"time probe failed: {exc}",)
    (stamp,) = struct.unpack_from("<I", head, 20)
    when = _epoch(stamp) if stamp else None
    return when, when, ()


def probe_time_range(path: Path, cls: Classification, size: int) -> tuple[datetime | None, datetime | None,
                                                                          tuple[str, ...]]:
    """``(start, end, problems)`` for captures, event logs, text logs and minidumps;
    Nones otherwise."""
    kind = cls.kind
    if kind is ArtifactKind.MINIDUMP and not cls.problems and size >= 32:
        return _minidump_time(path)
    if size == 0 or kind not in (ArtifactKind.CAPTURE, ArtifactKind.EVTX, ArtifactKind.TEXT_LOG):
        return None, None, ()
    try:
        with open(path, "rb") as f:
            if kind is ArtifactKind.CAPTURE:
                if cls.format in ("pcap", "pcap-ns"):
                    p = _pcap(f, size, cls.format == "pcap-ns")
                elif cls.format == "pcapng":
                    p = _pcapng(f, size)
                elif cls.format == "netmon2":
                    p = _netmon2(f, size)
                else:
                    p = TimeProbe()
            elif kind is ArtifactKind.EVTX:
                p = _evtx(f, size) if cls.format == "evtx" else TimeProbe()
            else:
                p = _text(f, size, cls.encoding)
    except (OSError, struct.error, LookupError) as exc:
        return None, None, (f"time probe failed: {exc}",)
    return p.start, p.end, p.problems
