"""Business calendars: opening hours in a time zone, minus holidays.

Calendars are data (the ``calendars`` section of ``sla_policies.json``).
``"hours": "24x7"`` means always open (holidays still close whole days).

>>> from datetime import datetime, timezone, timedelta
>>> cal = BusinessCalendar.from_json("b", {"timezone": "UTC",
...     "hours": {"mon": [["09:00", "17:00"]]}, "holidays": []})
>>> mon = datetime(2026, 11, 23, 16, 0, tzinfo=timezone.utc)      # a Monday
>>> cal.add(mon, timedelta(hours=2))                                 # one hour today, one next Monday
datetime.datetime(2026, 11, 30, 10, 0, tzinfo=datetime.timezone.utc)
>>> cal.business_time(mon, mon + timedelta(days=7, hours=-6))
datetime.timedelta(seconds=7200)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterator, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from backline.errors import UsageError

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAY = ((time(0, 0), None),)          # None close = midnight of the next day
#: How far ahead a deadline is searched before the calendar is called unusable.
MAX_SPAN = timedelta(days=3 * 366)

Interval = tuple[datetime, datetime]


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    name: str
    tz: ZoneInfo
    hours: Mapping[int, tuple[tuple[time, time | None], ...]]   # weekday (0=Mon) -> open windows
    holidays: frozenset[date]

    @classmethod
    def from_json(cls, name: str, spec: Mapping[str, Any]) -> "BusinessCalendar":
        try:
            tz = ZoneInfo(spec.get("timezone", "UTC"))
        except (ZoneInfoNotFoundError, ValueError):
            raise UsageError(f"unknown time zone {spec.get('timezone')!r}", artifact=f"calendar {name}") from None
        try:
            raw = spec.get("hours", "24x7")
            if raw == "24x7":
                hours = {d: _FULL_DAY for d in range(7)}
            else:
                hours = {}
                for day, windows in raw.items():
                    idx = _DAYS.index(day.lower()[:3])
                    parsed = []
                    for open_, close in windows:
                        o = time.fromisoformat(open_)
                        c = None if close in ("24:00", "24:00:00") else time.fromisoformat(close)
                        if c is not None and c <= o:
                            raise ValueError(f"{day}: {open_}-{close} closes before it opens")
                        parsed.append((o, c))
                    hours[idx] = tuple(sorted(parsed))
            holidays = frozenset(date.fromisoformat(d) for d in spec.get("holidays", ()))
        except (ValueError, TypeError, AttributeError) as exc:
            raise UsageError(f"malformed calendar: {exc}", artifact=f"calendar {name}") from None
        if not any(hours.values()):
            raise UsageError("calendar has no opening hours", artifact=f"calendar {name}")
        return cls(name, tz, hours, holidays)

    @classmethod
    def always(cls) -> "BusinessCalendar":
        return cls("24x7", ZoneInfo("UTC"), {d: _FULL_DAY for d in range(7)}, frozenset())

    def windows(self, start: datetime, end: datetime) -> Iterator[Interval]:
        """Open intervals (UTC) inside ``[start, end)``, in order."""
        if end <= start:
            return
        day = start.astimezone(self.tz).date() - timedelta(days=1)
        last = end.astimezone(self.tz).date()
        while day <= last:
            if day not in self.holidays:
                for o, c in self.hours.get(day.weekday(), ()):
                    lo = wall_to_utc(day, o, self.tz)
                    close_day = day if c is not None else day + timedelta(days=1)
                    hi = wall_to_utc(close_day, c or time(0, 0), self.tz)
                    lo, hi = max(lo, start), min(hi, end)
                    if lo < hi:
                        yield lo, hi
            day += timedelta(days=1)

    def business_time(self, start: datetime, end: datetime) -> timedelta:
        """Open time between two moments."""
        return sum((hi - lo for lo, hi in self.windows(start, end)), timedelta())

    def add(self, start: datetime, amount: timedelta) -> datetime:
        """The moment ``amount`` of open time after ``start``."""
        return walk(self.windows(start, start + MAX_SPAN), amount, self.name)


def wall_to_utc(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The instant (UTC) a wall-clock time of a calendar's zone names.

    A time repeated when the clocks go back is its first occurrence; a time skipped when
    they go forward (02:30 on the night of the spring change) is the moment the clocks
    jump, the first instant after the gap.  Both keep the mapping in step with the wall
    clock, so ordered opening windows stay ordered and never overlap on DST nights.

    >>> from zoneinfo import ZoneInfo
    >>> berlin = ZoneInfo("Europe/Berlin")            # 2026-03-29 02:00 CET -> 03:00 CEST
    >>> wall_to_utc(date(2026, 3, 29), time(2, 30), berlin).isoformat()
    '2026-03-29T01:00:00+00:00'
    >>> wall_to_utc(date(2026, 3, 29), time(3, 30), berlin).isoformat()
    '2026-03-29T01:30:00+00:00'
    >>> wall_to_utc(date(2026, 10, 25), time(2, 30), berlin).isoformat()    # CEST, the first 02:30
    '2026-10-25T00:30:00+00:00'
    """
    local = datetime.combine(day, at, tz)
    utc = local.astimezone(timezone.utc)
    if utc.astimezone(tz).replace(tzinfo=None) == local.replace(tzinfo=None):
        return utc
    # in a gap: fold=1 reads the time with the offset after the change (an instant before the
    # jump), fold=0 with the offset before it (an instant after); the jump lies in between
    before = local.replace(fold=1).astimezone(timezone.utc)
    after_off = local.replace(fold=1).utcoffset()
    lo, hi = before, utc                  # offset(lo) != after_off, offset(hi) == after_off
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        mid = mid - timedelta(microseconds=mid.microsecond)
        if mid <= lo:
            break
        if mid.astimezone(tz).utcoffset() == after_off:
            hi = mid
        else:
            lo = mid
    return hi


def walk(intervals: Iterator[Interval], amount: timedelta, what: str = "calendar") -> datetime:
    """The moment at which ``amount`` of time inside ``intervals`` has passed."""
    left = amount
    last: datetime | None = None
    for lo, hi in intervals:
        last = lo
        span = hi - lo
        if span >= left:
            return lo + left
        left -= span
    raise UsageError(f"no deadline within {MAX_SPAN.days} days (calendar has too few open hours)"
                     + ("" if last else ""), artifact=what)


def intersect(a: list[Interval], b: Iterator[Interval]) -> Iterator[Interval]:
    """Intersection of sorted interval lists (``a`` small and materialised)."""
    for lo, hi in b:
        for alo, ahi in a:
            if ahi <= lo:
                continue
            if alo >= hi:
                break
            x, y = max(lo, alo), min(hi, ahi)
            if x < y:
                yield x, y
