"""Property tests of SLA clock arithmetic on business calendars, across DST changes and holidays.

Calendars are drawn at random: a zone (with DST changes at 02:00, at midnight, of 30 minutes,
or none), opening windows per weekday on a quarter-hour grid (``24:00`` included) and holidays.

* adding business time and measuring it back gives the same amount;
* adding more never gives an earlier deadline; a later end never measures less;
* measuring is additive over a split point;
* open windows are in order, never overlap, and never touch a holiday (in the calendar's zone).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from backline.cases.calendar import BusinessCalendar

PROPS = settings(max_examples=120, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago",
         "America/Havana", "Asia/Kolkata")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LO, HI = datetime(2025, 1, 1, tzinfo=timezone.utc), datetime(2027, 6, 30, tzinfo=timezone.utc)


def _hhmm(q: int) -> str:
    return "24:00" if q == 96 else f"{q // 4:02d}:{q % 4 * 15:02d}"


@st.composite
def day_windows(draw):
    n = draw(st.sampled_from((0, 2, 2, 4)))
    qs = sorted(draw(st.sets(st.integers(0, 96), min_size=n, max_size=n)))
    return [[_hhmm(qs[i]), _hhmm(qs[i + 1])] for i in range(0, len(qs), 2)]


@st.composite
def calendars(draw):
    zone = draw(st.sampled_from(ZONES))
    if draw(st.integers(0, 5)) == 0:
        hours = "24x7"
    else:
        hours = {d: draw(day_windows()) for d in DAYS}
        assume(any(hours.values()))
    holidays = draw(st.lists(st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 12, 31)), max_size=30))
    # DST days and their neighbours as holidays now and then
    spec = {"timezone": zone, "hours": hours, "holidays": sorted({d.isoformat() for d in holidays})}
    return BusinessCalendar.from_json("prop", spec)


instants = st.datetimes(min_value=LO.replace(tzinfo=None), max_value=HI.replace(tzinfo=None)).map(
    lambda d: d.replace(tzinfo=timezone.utc))
amounts = st.integers(0, 200 * 3600).map(lambda s: timedelta(seconds=s))

BERLIN_GAP = BusinessCalendar.from_json("gap", {"timezone": "Europe/Berlin", "hours": {
    "sun": [["02:15", "02:45"], ["03:00", "04:00"]]}, "holidays": []})
SPRING_2026 = datetime(2026, 3, 28, 12, tzinfo=timezone.utc)      # the day before Berlin's spring change


@PROPS
@given(cal=calendars(), start=instants, amount=amounts)
@example(cal=BERLIN_GAP, start=SPRING_2026, amount=timedelta(minutes=90))
def test_add_then_measure_gives_the_amount(cal, start, amount):
    end = cal.add(start, amount)
    assert end >= start
    assert cal.business_time(start, end) == amount, (cal, start, amount, end)


@PROPS
@given(cal=calendars(), start=instants, a=amounts, b=amounts)
@example(cal=BERLIN_GAP, start=SPRING_2026, a=timedelta(minutes=20), b=timedelta(minutes=40))
def test_deadlines_are_monotonic(cal, start, a, b):
    a, b = min(a, b), max(a, b)
    assert cal.add(start, a) <= cal.add(start, b)
    ea, eb = start + a, start + b
    assert cal.business_time(start, ea) <= cal.business_time(start, eb)


@PROPS
@given(cal=calendars(), start=instants, d1=amounts, d2=amounts)
def test_measuring_is_additive(cal, start, d1, d2):
    mid, end = start + d1, start + d1 + d2
    assert cal.business_time(start, end) == cal.business_time(start, mid) + cal.business_time(mid, end)


@PROPS
@given(cal=calendars(), start=instants, days=st.integers(1, 40))
@example(cal=BERLIN_GAP, start=SPRING_2026, days=2)
def test_windows_are_ordered_disjoint_and_never_on_a_holiday(cal, start, days):
    end = start + timedelta(days=days)
    prev_hi = None
    for lo, hi in cal.windows(start, end):
        assert start <= lo < hi <= end
        assert lo.tzinfo is not None and lo.utcoffset() == timedelta(0)
        if prev_hi is not None:
            assert lo >= prev_hi, ("overlapping or unordered windows", prev_hi, lo, hi)
        prev_hi = hi
        for moment in (lo, hi - timedelta(microseconds=1)):
            local = moment.astimezone(cal.tz)
            assert local.date() not in cal.holidays, ("open on a holiday", lo, hi, local)
            assert local.weekday() in cal.hours and cal.hours[local.weekday()], ("open on a closed day", local)


@PROPS
@given(cal=calendars(), day=st.dates(min_value=date(2025, 1, 2), max_value=date(2027, 6, 1)))
def test_a_holiday_counts_nothing(cal, day):
    cal = BusinessCalendar(cal.name, cal.tz, cal.hours, cal.holidays | {day})
    lo = datetime.combine(day, time(0), cal.tz).astimezone(timezone.utc)
    hi = datetime.combine(day + timedelta(days=1), time(0), cal.tz).astimezone(timezone.utc)
    assert cal.business_time(lo, hi) == timedelta(0)


def test_opening_hours_skipped_by_the_spring_change_are_not_counted():
    """Regression: a window inside the skipped hour (02:15-02:45 on the spring-change night) used to
    be read with the winter offset and overlap the 03:00-04:00 window, so deadlines went backwards."""
    start = SPRING_2026
    wins = list(BERLIN_GAP.windows(start, start + timedelta(days=2)))
    assert wins == [(datetime(2026, 3, 29, 1, 0, tzinfo=timezone.utc), datetime(2026, 3, 29, 2, 0, tzinfo=timezone.utc))]
    assert BERLIN_GAP.add(start, timedelta(minutes=20)) == datetime(2026, 3, 29, 1, 20, tzinfo=timezone.utc)
    assert BERLIN_GAP.business_time(start, start + timedelta(days=2)) == timedelta(hours=1)
