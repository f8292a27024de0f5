"""Time stamps found in log headers, turned into aware UTC datetimes.

A time stamp *shape* (a "kind") is a regular expression for its text plus a
*field order* such as ``YMDhmsf`` (year, month, day, hour, minute, second,
fraction).  One compiled scanner (:class:`._engine.TsScanner`) reads every
shape by its order: fields may be unpadded or of any width (``22:16:0:119``),
month names may stand for the month, ``AM``/``PM`` and zones (``Z``,
``+02:00``, ``-0700``, ``UTC``) are understood, 8- and 6-digit runs are split
(``20171223``, ``081109 203615``).

Day and month order is not guessed per line: shapes whose order is ambiguous
(``10.30``, ``03/04/2024``, ``17/06/09``) form a family, and :func:`resolve_kind`
picks the order from a sample of the file (a field above 12 cannot be the
month; the field that varies most is the day).

:class:`TsParser` reads one file's stamps in the zone given by ``--tz``
(unless the text carries a zone), infers the year for shapes without one
(rolling over at New Year) and the date for time-of-day-only stamps (from the
file's modification date, rolling over at midnight).

>>> from zoneinfo import ZoneInfo
>>> p = TsParser(ZoneInfo("UTC"), default_year=2005)
>>> p.parse("syslog", "Dec 31 23:59:59")
(datetime.datetime(2005, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc), <TsQuality.INFERRED_YEAR: 'inferred_year'>)
>>> p.parse("syslog", "Jan  1 00:00:01")[0].year
2006
>>> p.parse("iso", "2015-10-18 18:01:47,978")[0].isoformat()
'2015-10-18T18:01:47.978000+00:00'
>>> p.parse("ymd_compact", "20171223-22:16:0:119")[0].isoformat()
'2017-12-23T22:16:00.119000+00:00'
"""

from __future__ import annotations

import math

import re
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from backline.analyzers.logs._engine import TsScanner
from backline.model import TsQuality

_FRAC = r"(?:[.,]\d{1,9})?"
_FRAC_MS = r"(?:[.,:]\d{1,9})?"
_HMS = r"\d{1,2}:\d{1,2}:\d{1,2}"
#: a 12-hour clock's AM/PM after the time of day
_AMPM = r"(?: ?[AP]M(?![A-Za-z]))?"

#: Unambiguous shapes: name -> (regex text without anchors or groups of its own, field order).
#: Listed most specific first; :func:`find_timestamp` takes the leftmost match, and of
#: matches that start at the same place the first one listed.
SHAPES: dict[str, tuple[str, str]] = {
    # 2015-10-18 18:01:47,978 / 2015-10-18T18:01:47.978Z / +02:00 / 2024-1-5 7:3:9; a zone
    # after one space belongs to the stamp too: "... 10:01:06.161 +01:00", " -0500", " Z"
    "iso": (r"\d{4}-\d{1,2}-\d{1,2}[T ]" + _HMS + _FRAC +
            r"(?:Z(?![A-Za-z])|[+-]\d\d:?\d\d(?!\d)| [+-]\d{4}(?!\d)"
            r"| [+-](?:0\d|1[0-4]):[0-5]\d(?![\d:])| Z(?!\w))?", "YMDhmsf"),
    # 2005-06-03-15.42.50.675872 (dots in the time of day)
    "ymd_dots": (r"\d{4}-\d\d-\d\d-\d{1,2}\.\d\d\.\d\d(?:\.\d{1,9})?", "YMDhmsf"),
    # 2016/09/28 04:30:30(.123), Go's log package, nginx error logs
    "ymd_slash": (r"\d{4}/\d{1,2}/\d{1,2}[ T:-]" + _HMS + _FRAC, "YMDhmsf"),
    # 20171223-22:15:29:606 (unpadded fields too: 20171223-22:16:0:119)
    "ymd_compact": (r"(?<!\d)\d{8}[-T ]?" + _HMS + _FRAC_MS, "YMDhmsf"),
    # Sun Dec 04 04:47:44 2005 (C ctime, Apache error log)
    "ctime": (r"[A-Z][a-z]{2} [A-Z][a-z]{2} {1,2}\d{1,2} \d{1,2}:\d\d:\d\d(?:\.\d+)? \d{4}", "MDhmsfY"),
    # Mon, 07 Dec 2026 11:30:01 +0000 (RFC 2822)
    "rfc2822": (r"[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d{1,2}:\d\d:\d\d(?: [+-]\d{4}| GMT| UTC)?",
                "DMYhms"),
    # 10/Oct/2000:13:55:36 -0700 (common log format)
    "clf": (r"\d{1,2}/[A-Z][a-z]{2}/\d{4}[: ]\d{1,2}:\d\d:\d\d(?: [+-]\d{4})?", "DMYhms"),
    # 07-Dec-2026 11:30:01.123, 07 Dec 2026 11:30:01
    "d_mon_y": (r"\d{1,2}[- ][A-Z][a-z]{2}[- ]\d{4}[ :]" + _HMS + _FRAC, "DMYhmsf"),
    # Dec 07, 2026 11:30:01 AM (java.util.logging)
    "mon_d_y": (r"[A-Z][a-z]{2} \d{1,2},? \d{4},? " + _HMS + _FRAC + r"(?: [AP]M)?", "MDYhmsf"),
    # Jun 14 15:16:01, Jul  1 09:00:55 (BSD syslog, no year)
    "syslog": (r"[A-Z][a-z]{2} {1,2}\d{1,2} \d{1,2}:\d\d:\d\d(?:\.\d{1,9})?", "MDhmsf"),
    # 081109 203615
    "yymmdd": (r"(?<!\d)\d{6}[ -]\d{6}(?!\d)", "yMDhms"),
    # epoch seconds (optionally with a fraction), milli-, micro-, nanoseconds: years 2001..2033
    "epoch_ns": (r"(?<![\d.])1\d{18}(?![\d.])", "n"),
    "epoch_us": (r"(?<![\d.])1\d{15}(?![\d.])", "U"),
    "epoch_ms": (r"(?<![\d.])1\d{12}(?![\d.])", "L"),
    "epoch": (r"(?<![\d.])1\d{9}(?:\.\d{1,9})?(?![\d.])", "E"),
}

#: Shapes whose day/month/year order a single stamp cannot tell: family -> (regex, candidate
#: kinds, first = the default).  The kinds are in :data:`ORDERS`.
FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "slash3": (r"(?<![\d/])\d{1,2}/\d{1,2}/\d{2,4}[ T:,-]" + _HMS + _FRAC_MS + _AMPM,
               ("slash_mdy", "slash_dmy", "slash_ymd")),
    "dot3": (r"(?<![\d.])\d{1,2}\.\d{1,2}\.\d{2,4}[ T,-]" + _HMS + _FRAC_MS + _AMPM,
             ("dot_dmy", "dot_mdy", "dot_ymd")),
    "dash3": (r"(?<![\d-])\d{1,2}-\d{1,2}-\d{2,4}[ T,]" + _HMS + _FRAC_MS + _AMPM,
              ("dash_dmy", "dash_mdy", "dash_ymd")),
    "md_dash": (r"(?<![\d-])\d{1,2}-\d{1,2}[ T]" + _HMS + _FRAC_MS, ("md_dash", "dm_dash")),
    "md_dot": (r"(?<![\d.])\d{1,2}\.\d{1,2} " + _HMS + _FRAC_MS, ("md_dot", "dm_dot")),
    "md_slash": (r"(?<![\d/])\d{1,2}/\d{1,2} " + _HMS + _FRAC_MS, ("md_slash", "dm_slash")),
    # a time of day alone (12:34:56.789, logback's default): the date comes from the file
    "time": (r"(?<![\w:.-])\d{1,2}:\d\d:\d\d(?:[.,]\d{1,9})?(?![\d:])", ("time",)),
}

#: Field order of every kind (see :class:`._engine.TsScanner`).
ORDERS: dict[str, str] = {k: o for k, (_, o) in SHAPES.items()}
ORDERS.update({
    "slash_mdy": "MDYhmsf", "slash_dmy": "DMYhmsf", "slash_ymd": "yMDhmsf",
    "dot_dmy": "DMYhmsf", "dot_mdy": "MDYhmsf", "dot_ymd": "yMDhmsf",
    "dash_dmy": "DMYhmsf", "dash_mdy": "MDYhmsf", "dash_ymd": "yMDhmsf",
    "md_dash": "MDhmsf", "dm_dash": "DMhmsf", "md_dot": "MDhmsf", "dm_dot": "DMhmsf",
    "md_slash": "MDhmsf", "dm_slash": "DMhmsf", "time": "hmsf",
})
_FAMILY_OF = {k: fam for fam, (_, kinds) in FAMILIES.items() for k in kinds}

#: Regex text of each kind (no anchors, no groups of its own).
TS_REGEX: dict[str, str] = {k: rx for k, (rx, _) in SHAPES.items()}
TS_REGEX.update({k: FAMILIES[fam][0] for k, fam in _FAMILY_OF.items()})
# E1207 17:25:03.379799 (glog: a level letter, then month and day, no year): read by its
# library format only (the letter is the level), never searched for on its own
ORDERS["glog"] = "MDhmsf"
TS_REGEX["glog"] = r"(?<=^[IWEF])\d{4} " + _HMS + _FRAC

_ORDER_BYTES = {k: o.encode() for k, o in ORDERS.items()}
_QUALITY = (TsQuality.NONE, TsQuality.EXACT, TsQuality.INFERRED_YEAR, TsQuality.INFERRED)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

_NAMES = [*SHAPES, *FAMILIES]
_FIND = re.compile("|".join(f"(?P<k{i}>{rx})" for i, rx in
                            enumerate([*(r for r, _ in SHAPES.values()), *(r for r, _ in FAMILIES.values())])))


class TsParser:
    """Parses one file's time stamps; keeps the state needed for year and date inference."""

    def __init__(self, tz: ZoneInfo | timezone = timezone.utc, default_year: int | None = None,
                 default_date: date | None = None, clock: "FileClock | None" = None):
        self.tz = timezone.utc if getattr(tz, "key", None) in ("UTC", "Etc/UTC") else tz
        if clock is not None:
            self.year = default_year or clock.year
            self._scanner = TsScanner(self.year, clock.day)
            self._scanner.set_limit(clock.limit_us)
        else:
            today = default_date or datetime.now(timezone.utc).date()
            self.year = default_year or today.year
            self._scanner = TsScanner(self.year, (today.year, today.month, today.day))
        self._last_text = ""
        self._last_kind = ""
        self._last: tuple[datetime | None, TsQuality] = (None, TsQuality.NONE)

    def parse(self, kind: str, text: str) -> tuple[datetime | None, TsQuality]:
        """Parse ``text`` of shape ``kind``; ``(None, NONE)`` when it does not parse."""
        if text == self._last_text and kind == self._last_kind:
            return self._last
        order = _ORDER_BYTES.get(kind)
        if order is None or not text:
            return None, TsQuality.NONE
        us, q, zoned = self._scanner.scan(order, text.encode("utf-8", "replace"))
        if not q:
            res: tuple[datetime | None, TsQuality] = (None, TsQuality.NONE)
        else:
            try:
                dt = _EPOCH + timedelta(microseconds=us)
                if not zoned and self.tz is not timezone.utc:
                    dt = dt.replace(tzinfo=None).replace(tzinfo=self.tz).astimezone(timezone.utc)
                res = (dt, _QUALITY[q])
            except OverflowError:
                res = (None, TsQuality.NONE)
        self._last_text, self._last_kind, self._last = text, kind, res
        return res


def file_year(path: str) -> int | None:
    """Year of a file's modification time: the start year for stamps without one."""
    d = file_date(path)
    return d.year if d else None


def file_date(path: str) -> date | None:
    """Date (UTC) of a file's modification time: the date of time-of-day-only stamps."""
    import os

    try:
        return datetime.fromtimestamp(os.stat(path).st_mtime, tz=timezone.utc).date()
    except (OSError, ValueError, OverflowError):
        return None


def collected_at(path: str | None) -> datetime:
    """When the evidence was collected, as far as one file tells: its modification time
    (set by the tool that wrote or packed it, kept by archives and by intake), never
    later than now; now when the file has no usable time."""
    import os

    now = datetime.now(timezone.utc)
    if not path:
        return now
    try:
        mtime = datetime.fromtimestamp(os.stat(path).st_mtime, tz=timezone.utc)
    except (OSError, ValueError, OverflowError):
        return now
    return min(mtime, now)


def wall_us(when: datetime, tz: ZoneInfo | timezone = timezone.utc) -> int:
    """``when`` as microseconds of wall time in ``tz`` (the scanner's unzoned scale)."""
    local = when.astimezone(tz).replace(tzinfo=None)
    return (local - datetime(1970, 1, 1)) // timedelta(microseconds=1)


#: Bytes read at each end of a file to choose the year of stamps that have none.
YEAR_PROBE = 64 * 1024


def start_year(path: str | None, limit_us: int, year: int, day: tuple[int, int, int]) -> int:
    """The year to give the first year-less stamp of the file at ``path``.

    The stamps of the file's head and tail are read in order with ``year`` as the start
    (the scanner rolls the year at New Year); when the last of them would fall after
    ``limit_us`` (when the evidence was collected, wall time), the start goes back a year
    at a time until it does not.  A file that spans New Year and was collected in
    January thus starts in December of the year before.  The scanner itself also never
    puts a stamp after the limit (:class:`._engine.TsScanner`), this only keeps a file's
    years in order when the limit would otherwise pull its end back alone.
    """
    import os

    if not path:
        return year
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(YEAR_PROBE)
            tail = b""
            if size > 2 * YEAR_PROBE:
                f.seek(size - YEAR_PROBE)
                tail = f.read(YEAR_PROBE).split(b"\n", 1)[-1]
            elif size > YEAR_PROBE:
                tail = f.read()
    except OSError:
        return year
    found_: list[tuple[str, str]] = []
    for chunk in (head, tail):
        for raw in chunk.split(b"\n")[:-1] if chunk else ():
            line = raw[:200].decode("utf-8", "replace")
            found = find_timestamp(line)
            if found is None:
                continue
            kind, a, b = found
            found_.append((kind, line[a:b]))
    # a day/month order is the file's, not one stamp's (10.03 alone reads as October 3)
    by_family: dict[str, list[str]] = {}
    for kind, text in found_:
        by_family.setdefault(family(kind), []).append(text)
    resolved = {fam: resolve_kind(fam, ts) for fam, ts in by_family.items()}
    texts: list[tuple[bytes, str]] = []
    for kind, text in found_:
        kind = resolved.get(family(kind), kind)
        order = ORDERS.get(kind, "")
        if "M" not in order or "Y" in order or "y" in order:
            continue
        texts.append((_ORDER_BYTES[kind], text))
    if not texts:
        return year
    for _ in range(4):
        sc = TsScanner(year, day)
        last = None
        for order, text in texts:
            us, q, _zoned = sc.scan(order, text.encode("utf-8", "replace"))
            if q == 2:
                last = us
        if last is None or last <= limit_us:
            break
        year -= 1
    return year


#: How far after the collection time a year-less stamp may fall and keep the collection's year:
#: archive members keep whole seconds (ZIP two), a host's clock runs minutes ahead of the one that
#: packed its logs, and a file written in local time is read as UTC when nothing says its zone
#: (up to 14 hours ahead).  Only a stamp later than that is taken for the year before (a file
#: that spans New Year); without the slack, a line 0.06 s after a tar member's time went back a year.
COLLECTED_SLACK_US = 26 * 3600 * 1_000_000


class FileClock:
    """What the stamps of one file are read against: the start year for stamps without
    one, the date for stamps with a time of day only, and the latest wall time an
    inferred year may give (:func:`collected_at`, or ``collected`` when the evidence
    says earlier: an archive member's time; plus :data:`COLLECTED_SLACK_US`).

    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "x.log")
    >>> _ = open(p, "w").write("Dec 30 10:00:00 a\\nJan  2 10:00:00 b\\n")
    >>> os.utime(p, (1767571200, 1767571200))         # collected 2026-01-05
    >>> c = FileClock(p)
    >>> c.year, c.day
    (2025, (2026, 1, 5))
    """

    __slots__ = ("year", "day", "limit_us", "collected")

    def __init__(self, path: str | None, tz: ZoneInfo | timezone = timezone.utc,
                 collected: datetime | None = None):
        self.collected = collected_at(path)
        if collected is not None:       # what the bundle says (the archive member's time)
            self.collected = min(self.collected, collected)
        d = self.collected.date()
        self.day = (d.year, d.month, d.day)
        self.limit_us = wall_us(self.collected, tz) + COLLECTED_SLACK_US
        self.year = start_year(path, self.limit_us, d.year, self.day)


def find_timestamp(text: str, within: int = 64) -> tuple[str, int, int] | None:
    """Find the first time stamp starting in the first ``within`` characters.

    Returns ``(kind, start, end)``, or ``None``.  For a shape whose day/month order is
    ambiguous the kind is the order this one stamp allows (see :func:`resolve_kind`
    for a whole file).

    >>> find_timestamp("[Sun Dec 04 04:47:44 2005] [notice] ok")
    ('ctime', 1, 25)
    >>> find_timestamp("[10.30 16:49:06] chrome.exe - x")
    ('md_dot', 1, 15)
    """
    m = _FIND.search(text, 0, within + 48)
    if m is None or m.start() >= within:
        return None
    name = _NAMES[int(m.lastgroup[1:])]  # type: ignore[index]
    kind = name
    if name in FAMILIES:
        kind = resolve_kind(name, [m.group()])
    return kind, m.start(), m.end()


_DIGITS = re.compile(r"\d+")


def family(kind: str) -> str:
    """The family of an ambiguous kind (``dm_dot`` -> ``md_dot``), else the kind itself."""
    return _FAMILY_OF.get(kind, kind)


def _recency(rows: list[list[int]], yi: int, mi: int, di: int, today) -> float:
    """How recent the latest date of ``rows`` read in this order is: minus its age in days when it
    falls in the year before today (or tomorrow, for clocks ahead), else minus infinity."""
    latest = None
    for r in rows:
        if len(r) <= max(yi, mi, di):
            continue
        y = r[yi] + 2000 if r[yi] < 100 else r[yi]
        try:
            d = date(y, r[mi], r[di])
        except ValueError:
            continue
        latest = d if latest is None or d > latest else latest
    if latest is None:
        return -math.inf
    age = (today - latest).days
    return -float(age) if -1 <= age <= 366 else -math.inf


def resolve_kind(kind: str, texts: list[str]) -> str:
    """The day/month/year order of an ambiguous shape, from the stamps of one file.

    An order is possible when every stamp has a month 1..12 and a day 1..31 in it; of
    the possible orders the one whose day field takes the most values wins (days vary
    more than months and years), then the order whose year is nearest this year, then -
    when the stamps say nothing (one day, ``07/12/2026``) - the order that reads them as the
    more recent date within the past year (logs sent to support are days old, not months:
    7 December, not 12 July, when read on 7 December), then the family's default.

    >>> resolve_kind("md_dot", ["10.30 16:49:06", "10.31 01:02:03"])
    'md_dot'
    >>> resolve_kind("slash3", ["17/06/09 20:10:40", "17/06/10 01:00:00", "17/06/11 01:00:00"])
    'slash_ymd'
    >>> resolve_kind("dot3", ["24.12.2026 10:00:00"])
    'dot_dmy'
    """
    fam = _FAMILY_OF.get(kind, kind)
    if fam not in FAMILIES:
        return kind
    kinds = FAMILIES[fam][1]
    if len(kinds) == 1:
        return kinds[0]
    rows = []
    for t in texts:
        nums = [int(x) for x in _DIGITS.findall(t)[:3]]
        rows.append(nums)
    best, best_key = kinds[0], (-1, 0, 0)
    today = datetime.now(timezone.utc).date()
    this_year = today.year
    for rank, k in enumerate(kinds):
        order = ORDERS[k].lower().replace("y", "Y").upper()
        mi, di = ORDERS[k].index("M"), ORDERS[k].index("D")
        ok = all(len(r) > max(mi, di) and 1 <= r[mi] <= 12 and 1 <= r[di] <= 31 for r in rows)
        if not ok:
            continue
        yi = order.find("Y")
        near = 0
        recent = -math.inf
        if 0 <= yi < 3 and rows and len(rows[0]) > yi:
            y = rows[0][yi]
            near = -abs((y + 2000 if y < 100 else y) - this_year)
            recent = _recency(rows, yi, mi, di, today)
        key = (len({r[di] for r in rows}), near, recent, -rank)
        if key > best_key:
            best, best_key = k, key
    return best
