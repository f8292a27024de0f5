"""Property tests: every supported time stamp layout round-trips.

A moment is written in one layout (the way a program would print it: padded or not,
with or without a fraction, a zone, AM/PM, a weekday name), parsed back with that
layout's kind, and must give the same instant.  Layouts without a year or a date get
the year / date from the parser, as they do from the file.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from backline.analyzers.logs.timestamps import FAMILIES, ORDERS, SHAPES, TsParser, find_timestamp

MON = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
DAY = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ZONES = ("UTC", "Asia/Kolkata", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe")

PROPS = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


def _p(v: int, pad: bool, w: int = 2) -> str:
    return f"{v:0{w}d}" if pad else str(v)


def _frac(us: int, digits: int, sep: str = ".") -> str:
    if digits == 0:
        return ""
    return sep + f"{us:06d}{'000'}"[:digits]


def _zone(off: timedelta, style: str) -> str:
    total = int(off.total_seconds()) // 60
    sign = "-" if total < 0 else "+"
    h, m = divmod(abs(total), 60)
    return {"colon": f"{sign}{h:02d}:{m:02d}", "plain": f"{sign}{h:02d}{m:02d}",
            "space": f" {sign}{h:02d}{m:02d}", "Z": "Z"}[style]


# kind -> (writer(local wall time, variant draws) -> text, fraction digits it can carry, has year, has date)
def write(kind: str, t: datetime, v: dict) -> str:
    pad, fd = v["pad"], v["frac"]
    Y, M, D, h, m, s, us = t.year, t.month, t.day, t.hour, t.minute, t.second, t.microsecond
    hms = f"{_p(h, pad)}:{m:02d}:{s:02d}"
    y2 = f"{Y % 100:02d}"
    if kind == "iso":
        return (f"{Y}-{_p(M, pad)}-{_p(D, pad)}{v['sep']}{_p(h, pad)}:{_p(m, pad)}:{_p(s, pad)}"
                + _frac(us, fd, v["fsep"]))
    if kind == "ymd_dots":
        return f"{Y}-{M:02d}-{D:02d}-{_p(h, pad)}.{m:02d}.{s:02d}" + _frac(us, fd)
    if kind == "ymd_slash":
        return f"{Y}/{_p(M, pad)}/{_p(D, pad)} {hms}" + _frac(us, fd)
    if kind == "ymd_compact":
        return f"{Y}{M:02d}{D:02d}-{_p(h, pad)}:{_p(m, pad)}:{_p(s, pad)}" + (
            f":{us // 1000:03d}" if fd == 3 and v["fsep"] == "," else _frac(us, fd))
    if kind == "ctime":
        day = f"{D:02d}" if pad else f"{D:>2}"
        return f"{DAY[t.weekday()]} {MON[M - 1]} {day} {h:02d}:{m:02d}:{s:02d} {Y}"
    if kind == "rfc2822":
        return f"{DAY[t.weekday()]}, {_p(D, pad)} {MON[M - 1]} {Y} {hms}"
    if kind == "clf":
        return f"{D:02d}/{MON[M - 1]}/{Y}:{h:02d}:{m:02d}:{s:02d}"
    if kind == "d_mon_y":
        return f"{D:02d}{v['dsep']}{MON[M - 1]}{v['dsep']}{Y} {hms}" + _frac(us, fd)
    if kind == "mon_d_y":
        if v["ampm"]:
            h12 = h % 12 or 12
            return f"{MON[M - 1]} {_p(D, pad)}, {Y} {h12}:{m:02d}:{s:02d}{_frac(us, fd)} {'PM' if h >= 12 else 'AM'}"
        return f"{MON[M - 1]} {_p(D, pad)}, {Y} {hms}" + _frac(us, fd)
    if kind == "syslog":
        return f"{MON[M - 1]} {(f'{D:02d}' if pad else f'{D:>2}')} {h:02d}:{m:02d}:{s:02d}" + _frac(us, fd)
    if kind == "yymmdd":
        return f"{y2}{M:02d}{D:02d} {h:02d}{m:02d}{s:02d}"
    if kind == "glog":
        return f"{M:02d}{D:02d} {hms}" + _frac(us, fd)
    if kind in ("epoch_ns", "epoch_us", "epoch_ms", "epoch"):
        d = t.replace(tzinfo=None) - EPOCH.replace(tzinfo=None)
        us_total = (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds
        if kind == "epoch_ns":
            return str(us_total * 1000 + v["ns"])
        if kind == "epoch_us":
            return str(us_total)
        if kind == "epoch_ms":
            return str(us_total // 1000)
        return str(us_total // 1_000_000) + _frac(us, fd)
    # ambiguous families: the kind's own field order
    seps = {"slash": "/", "dot": ".", "dash": "-"}
    fam, _, order = kind.partition("_")
    if fam in seps:
        sep = seps[fam]
        year = f"{Y}" if v["y4"] and order != "ymd" else y2
        parts = {"y": year, "m": _p(M, pad), "d": _p(D, pad)}
        return sep.join(parts[c] for c in order) + " " + hms + _frac(us, fd)
    if kind in ("md_dash", "dm_dash", "md_dot", "dm_dot", "md_slash", "dm_slash"):
        sep = {"dash": "-", "dot": ".", "slash": "/"}[kind.split("_")[1]]
        a, b = (M, D) if kind.startswith("md") else (D, M)
        return f"{_p(a, pad)}{sep}{_p(b, pad)} {hms}" + _frac(us, fd)
    if kind == "time":
        return f"{_p(h, pad)}:{m:02d}:{s:02d}" + _frac(us, fd)
    raise AssertionError(f"no writer for {kind}")


#: fraction digits each layout can carry (0 = whole seconds only)
FRACTION = {k: (0, 3, 6, 9) for k in ORDERS}
FRACTION.update({k: (0,) for k in ("ctime", "rfc2822", "clf", "yymmdd", "epoch_ms")})
FRACTION.update({"epoch_ns": (6,), "epoch_us": (6,), "epoch_ms": (3,)})
NO_YEAR = {"glog", "syslog", "md_dash", "dm_dash", "md_dot", "dm_dot", "md_slash", "dm_slash", "time"}
ZONED = {"epoch_ns", "epoch_us", "epoch_ms", "epoch"}


def test_every_kind_has_a_writer():
    moment = datetime(2021, 3, 4, 5, 6, 7, 890123)
    v = dict(pad=True, frac=0, sep=" ", fsep=".", dsep="-", ampm=False, ns=0, y4=True)
    for kind in ORDERS:
        assert write(kind, moment, v), kind


variants = st.fixed_dictionaries(dict(
    pad=st.booleans(), sep=st.sampled_from(" T"), fsep=st.sampled_from(".,"), dsep=st.sampled_from("- "),
    ampm=st.booleans(), ns=st.integers(0, 999), y4=st.booleans(),
    zone=st.sampled_from((None, "Z", "colon", "plain", "space"))))

# epoch layouts start with 1 (2001-09-09 .. 2033-05-18) and two-digit years are read as 20yy
moments = st.datetimes(min_value=datetime(2001, 9, 10), max_value=datetime(2033, 5, 17))


def _quantise(t: datetime, digits: int) -> datetime:
    keep = 10 ** (6 - min(digits, 6))
    return t.replace(microsecond=t.microsecond // keep * keep)


def _local_exists(wall: datetime, tz: ZoneInfo) -> bool:
    """False for a wall time skipped or repeated by a DST change (it names no single instant)."""
    a, b = wall.replace(tzinfo=tz, fold=0), wall.replace(tzinfo=tz, fold=1)
    if a.utcoffset() != b.utcoffset():
        return False
    return a.astimezone(timezone.utc).astimezone(tz).replace(tzinfo=None) == wall


@PROPS
@given(kind=st.sampled_from(sorted(ORDERS)), wall=moments, zone=st.sampled_from(ZONES), v=variants,
       fd=st.integers(0, 3))
@example(kind="mon_d_y", wall=datetime(2020, 1, 1, 0, 30), zone="UTC",
         v=dict(pad=True, sep=" ", fsep=".", dsep="-", ampm=True, ns=0, y4=True, zone=None), fd=0)
@example(kind="mon_d_y", wall=datetime(2020, 1, 1, 12, 30), zone="UTC",
         v=dict(pad=False, sep=" ", fsep=".", dsep="-", ampm=True, ns=0, y4=True, zone=None), fd=0)
@example(kind="syslog", wall=datetime(2024, 2, 29, 23, 59, 59), zone="UTC",
         v=dict(pad=False, sep=" ", fsep=".", dsep="-", ampm=False, ns=0, y4=True, zone=None), fd=0)
def test_layout_round_trip(kind, wall, zone, v, fd):
    digits = FRACTION[kind][fd % len(FRACTION[kind])]
    wall = _quantise(wall, digits)
    tz = ZoneInfo(zone)
    v = {**v, "frac": digits}
    zone_style = v["zone"] if kind == "iso" else None
    if kind in ZONED:
        expected = wall.replace(tzinfo=timezone.utc)          # epoch numbers are UTC by definition
        text = write(kind, wall, v)
    elif zone_style:
        # the stamp carries its own offset: the parser's zone must not matter
        off = timedelta(minutes=330) if zone_style != "Z" else timedelta(0)
        expected = (wall - off).replace(tzinfo=timezone.utc)
        text = write(kind, wall, v) + _zone(off, zone_style)
    else:
        assume(_local_exists(wall, tz))
        expected = wall.replace(tzinfo=tz).astimezone(timezone.utc)
        text = write(kind, wall, v)
    # the parser knows the file's year and date (both from the file's time)
    parser = TsParser(tz, default_year=wall.year, default_date=wall.date())
    got, quality = parser.parse(kind, text)
    assert got == expected, (kind, text, got, expected)
    assert got.tzinfo is not None and got.utcoffset() == timedelta(0)
    assert (quality.value != "exact") == (kind in NO_YEAR), (kind, quality)


@PROPS
@given(kind=st.sampled_from(sorted(SHAPES)), wall=moments, v=variants, fd=st.integers(0, 3))
def test_unambiguous_layouts_are_found_whole(kind, wall, v, fd):
    """``find_timestamp`` spots a stamp of every unambiguous layout at the start of a line, whole,
    and the kind it names reads the same instant."""
    digits = FRACTION[kind][fd % len(FRACTION[kind])]
    wall = _quantise(wall, digits)
    text = write(kind, wall, {**v, "frac": digits})
    line = text + " worker-3 INFO request done"
    found = find_timestamp(line)
    assert found is not None, line
    got_kind, start, end = found
    assert (start, end) == (0, len(text)), (line, found)
    p1 = TsParser(timezone.utc, default_year=wall.year, default_date=wall.date())
    p2 = TsParser(timezone.utc, default_year=wall.year, default_date=wall.date())
    assert p1.parse(got_kind, text)[0] == p2.parse(kind, text)[0], (text, got_kind, kind)


@PROPS
@given(fam=st.sampled_from(sorted(k for k in FAMILIES if k != "time")), wall=moments, v=variants)
def test_ambiguous_layouts_are_found_as_their_family(fam, wall, v):
    kind = FAMILIES[fam][1][0]
    text = write(kind, wall.replace(microsecond=0), {**v, "frac": 0})
    found = find_timestamp(text + " x")
    assert found is not None and found[1:] == (0, len(text)), (text, found)
    assert found[0] in FAMILIES[fam][1]


@PROPS
@given(gaps=st.lists(st.integers(0, 60), min_size=1, max_size=30),
       start=st.dates(min_value=date(2010, 1, 1), max_value=date(2030, 12, 31)))
def test_year_less_stamps_in_order_stay_in_order(gaps, start):
    """A year-less log whose stamps are in time order (crossing New Year) reads back with
    every stamp on its own day: the year rolls over, never back."""
    days = [sum(gaps[:i + 1]) for i in range(len(gaps))]
    stamps = [datetime.combine(start + timedelta(days=d), datetime.min.time()).replace(hour=12) for d in days]
    parser = TsParser(timezone.utc, default_year=stamps[0].year, default_date=stamps[-1].date())
    for t in stamps:
        got = parser.parse("syslog", f"{MON[t.month - 1]} {t.day:>2} 12:00:00")[0]
        assert got is not None and got.replace(tzinfo=None) == t, (t, got)
