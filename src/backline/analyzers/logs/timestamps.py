"""Timestamps found in log headers, turned into aware UTC datetimes.

Each known shape has a name, a regular expression for its text and a parser.
:class:`TsParser` parses one file's timestamps: it reads them in the zone
given by ``--tz`` (unless the text carries an offset), infers the year for
shapes that have none (syslog, logcat, Apache-less ``MM-DD``) and rolls the
year over at New Year (a month that goes back by more than six months).

>>> from zoneinfo import ZoneInfo
>>> p = TsParser(ZoneInfo("UTC"), default_year=2005)
>>> p.parse("syslog", "Dec 31 23:59:59")
(datetime.datetime(2005, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc), <TsQuality.INFERRED_YEAR: 'inferred_year'>)
>>> p.parse("syslog", "Jan  1 00:00:01")[0].year
2006
>>> p.parse("iso", "2015-10-18 18:01:47,978")[0].isoformat()
'2015-10-18T18:01:47.978000+00:00'
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Callable
from zoneinfo import ZoneInfo

from backline.model import TsQuality

MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}

#: Regex text of each timestamp shape (no anchors, no groups of its own).
TS_REGEX: dict[str, str] = {
    # 2015-10-18 18:01:47,978 / 2015-10-18T18:01:47.978Z / +02:00 offsets
    "iso": r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?",
    # 2016/09/28 04:30:30(.123)
    "ymd_slash": r"\d{4}/\d\d/\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?",
    # BGL 2005-06-03-15.42.50.675872
    "bgl": r"\d{4}-\d\d-\d\d-\d\d\.\d\d\.\d\d(?:\.\d{1,9})?",
    # syslog RFC 3164 "Jun 14 15:16:01", "Jul  1 09:00:55"
    "syslog": r"[A-Z][a-z]{2} [ \d]?\d \d\d:\d\d:\d\d",
    # Apache error "Sun Dec 04 04:47:44 2005" (also ctime with fraction)
    "ctime": r"[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]?\d \d\d:\d\d:\d\d(?:\.\d+)? \d{4}",
    # Apache access "10/Oct/2000:13:55:36 -0700"
    "clf": r"\d\d/[A-Z][a-z]{2}/\d{4}[: ]\d\d:\d\d:\d\d(?: [+-]\d{4})?",
    # HDFS "081109 203615"
    "yymmdd": r"\d{6} \d{6}",
    # Spark "17/06/09 20:10:40"
    "yy_slash": r"\d\d/\d\d/\d\d \d\d:\d\d:\d\d(?:[.,]\d+)?",
    # Android logcat "03-17 16:13:38.811"
    "logcat": r"\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?",
    # HealthApp-like "20171223-22:15:29:606"
    "compact": r"\d{8}-\d\d:\d\d:\d\d(?::\d{1,3})?",
    # Proxifier-like "10.30 16:49:06" (month.day)
    "md_dot": r"\d\d\.\d\d \d\d:\d\d:\d\d",
    # epoch seconds / milliseconds (2001..2033)
    "epoch": r"1\d{9}(?:\.\d+)?",
    "epoch_ms": r"1\d{12}",
}

_NUM = re.compile(r"\d+")


def _frac(text: str) -> int:
    """Microseconds from a fraction's digits."""
    return int((text + "000000")[:6]) if text else 0


class TsParser:
    """Parses one file's timestamps; keeps the state needed for year inference."""

    def __init__(self, tz: ZoneInfo | timezone = timezone.utc, default_year: int | None = None):
        self.tz = timezone.utc if getattr(tz, "key", None) in ("UTC", "Etc/UTC") else tz
        self.year = default_year or datetime.now(timezone.utc).year
        self._last_month = 0
        self._last_text = ""
        self._last_kind = ""
        self._last: tuple[datetime | None, TsQuality] = (None, TsQuality.NONE)
        self._parsers: dict[str, Callable[[str], tuple[datetime, TsQuality]]] = {
            "iso": self._iso, "ymd_slash": self._iso, "bgl": self._bgl, "syslog": self._syslog,
            "ctime": self._ctime, "clf": self._clf, "yymmdd": self._yymmdd,
            "yy_slash": self._yy_slash, "logcat": self._logcat, "compact": self._compact,
            "md_dot": self._md_dot, "epoch": self._epoch, "epoch_ms": self._epoch_ms,
            "epoch_us": self._epoch_us,
        }

    # -- public --------------------------------------------------------
    def parse(self, kind: str, text: str) -> tuple[datetime | None, TsQuality]:
        """Parse ``text`` of shape ``kind``; ``(None, NONE)`` when it does not parse."""
        if text == self._last_text and kind == self._last_kind:
            return self._last
        fn = self._parsers.get(kind)
        if fn is None or not text:
            return None, TsQuality.NONE
        try:
            res = fn(text.strip())
        except (ValueError, IndexError, KeyError, OverflowError):
            res = (None, TsQuality.NONE)
        self._last_text, self._last_kind, self._last = text, kind, res
        return res

    # -- helpers -------------------------------------------------------
    def _local(self, y: int, mo: int, d: int, h: int, mi: int, s: int, us: int = 0) -> datetime:
        dt = datetime(y, mo, d, h, mi, s, us, tzinfo=self.tz)
        return dt if self.tz is timezone.utc else dt.astimezone(timezone.utc)

    def _infer_year(self, month: int) -> int:
        if self._last_month and month < self._last_month - 6:
            self.year += 1          # New Year roll-over
        elif self._last_month and month > self._last_month + 6:
            self.year -= 1          # file went backwards over New Year
        self._last_month = month
        return self.year

    # -- shapes --------------------------------------------------------
    def _iso(self, t: str) -> tuple[datetime, TsQuality]:
        try:                                   # C fast path (Python 3.11 reads most ISO forms)
            dt = datetime.fromisoformat(t)
        except ValueError:
            dt = None
        if dt is not None:
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=self.tz)
                return (dt if self.tz is timezone.utc else dt.astimezone(timezone.utc)), TsQuality.EXACT
            return dt.astimezone(timezone.utc), TsQuality.EXACT
        n = [int(x) for x in _NUM.findall(t[:19])]
        us = 0
        rest = t[19:]
        if rest[:1] in (".", ","):
            m = _NUM.match(rest, 1)
            us = _frac(m.group()) if m else 0
            rest = rest[1 + (len(m.group()) if m else 0):]
        if rest == "Z":
            return datetime(n[0], n[1], n[2], n[3], n[4], n[5], us, tzinfo=timezone.utc), TsQuality.EXACT
        if rest[:1] in "+-" and rest:
            sign = -1 if rest[0] == "-" else 1
            digits = rest[1:].replace(":", "")
            off = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0)) * sign
            return (datetime(n[0], n[1], n[2], n[3], n[4], n[5], us, tzinfo=timezone(off))
                    .astimezone(timezone.utc), TsQuality.EXACT)
        return self._local(n[0], n[1], n[2], n[3], n[4], n[5], us), TsQuality.EXACT

    def _bgl(self, t: str) -> tuple[datetime, TsQuality]:
        n = _NUM.findall(t)
        return self._local(*(int(x) for x in n[:6]), _frac(n[6]) if len(n) > 6 else 0), TsQuality.EXACT

    def _syslog(self, t: str) -> tuple[datetime, TsQuality]:
        mon = MONTHS[t[:3].lower()]
        day, h, mi, s = (int(x) for x in _NUM.findall(t[3:])[:4])
        return self._local(self._infer_year(mon), mon, day, h, mi, s), TsQuality.INFERRED_YEAR

    def _ctime(self, t: str) -> tuple[datetime, TsQuality]:
        parts = t.split()
        mon = MONTHS[parts[1][:3].lower()]
        h, mi, s = parts[3].split(":")
        sec, _, frac = s.partition(".")
        return (self._local(int(parts[4]), mon, int(parts[2]), int(h), int(mi), int(sec), _frac(frac)),
                TsQuality.EXACT)

    def _clf(self, t: str) -> tuple[datetime, TsQuality]:
        t = t[:11] + ":" + t[12:]           # Python's http.server writes a space there
        dt = datetime.strptime(t, "%d/%b/%Y:%H:%M:%S %z" if " " in t else "%d/%b/%Y:%H:%M:%S")
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=self.tz)
        return dt.astimezone(timezone.utc), TsQuality.EXACT

    def _yymmdd(self, t: str) -> tuple[datetime, TsQuality]:
        d, tm = t.split()
        return (self._local(2000 + int(d[:2]), int(d[2:4]), int(d[4:6]), int(tm[:2]), int(tm[2:4]),
                            int(tm[4:6])), TsQuality.EXACT)

    def _yy_slash(self, t: str) -> tuple[datetime, TsQuality]:
        n = _NUM.findall(t)
        return (self._local(2000 + int(n[0]), int(n[1]), int(n[2]), int(n[3]), int(n[4]), int(n[5]),
                            _frac(n[6]) if len(n) > 6 else 0), TsQuality.EXACT)

    def _logcat(self, t: str) -> tuple[datetime, TsQuality]:
        n = _NUM.findall(t)
        mon = int(n[0])
        return (self._local(self._infer_year(mon), mon, int(n[1]), int(n[2]), int(n[3]), int(n[4]),
                            _frac(n[5]) if len(n) > 5 else 0), TsQuality.INFERRED_YEAR)

    def _compact(self, t: str) -> tuple[datetime, TsQuality]:
        d, _, rest = t.partition("-")
        n = rest.split(":")
        ms = int(n[3]) * 1000 if len(n) > 3 else 0
        return (self._local(int(d[:4]), int(d[4:6]), int(d[6:8]), int(n[0]), int(n[1]), int(n[2]), ms),
                TsQuality.EXACT)

    def _md_dot(self, t: str) -> tuple[datetime, TsQuality]:
        n = _NUM.findall(t)
        mon = int(n[0])
        return (self._local(self._infer_year(mon), mon, int(n[1]), int(n[2]), int(n[3]), int(n[4])),
                TsQuality.INFERRED_YEAR)

    def _epoch(self, t: str) -> tuple[datetime, TsQuality]:
        return datetime.fromtimestamp(float(t), tz=timezone.utc), TsQuality.EXACT

    def _epoch_us(self, t: str) -> tuple[datetime, TsQuality]:
        v = int(t)
        return (datetime.fromtimestamp(v // 1_000_000, tz=timezone.utc) + timedelta(microseconds=v % 1_000_000),
                TsQuality.EXACT)

    def _epoch_ms(self, t: str) -> tuple[datetime, TsQuality]:
        return datetime.fromtimestamp(int(t) / 1000.0, tz=timezone.utc), TsQuality.EXACT


def file_year(path: str) -> int | None:
    """Year of a file's modification time: the start year for stamps without one."""
    import os

    try:
        return datetime.fromtimestamp(os.stat(path).st_mtime, tz=timezone.utc).year
    except (OSError, ValueError, OverflowError):
        return None


_FIND_ORDER = ("iso", "bgl", "ymd_slash", "ctime", "clf", "syslog", "compact", "yy_slash",
               "yymmdd", "logcat", "md_dot", "epoch_ms", "epoch")
_FINDERS = [(k, re.compile(TS_REGEX[k])) for k in _FIND_ORDER]


def find_timestamp(text: str, within: int = 64) -> tuple[str, int, int] | None:
    """Find the first timestamp starting in the first ``within`` characters.

    Returns ``(kind, start, end)``, or ``None``.

    >>> find_timestamp("[Sun Dec 04 04:47:44 2005] [notice] ok")
    ('ctime', 1, 25)
    """
    best: tuple[str, int, int] | None = None
    head = text[: within + 40]
    for kind, rx in _FINDERS:
        m = rx.search(head)
        if m and m.start() < within:
            if best is None or m.start() < best[1] or (m.start() == best[1] and m.end() > best[2]):
                best = (kind, m.start(), m.end())
    return best
