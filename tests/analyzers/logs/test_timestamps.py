"""Timestamp shapes, zones, year inference."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from backline.analyzers.logs.timestamps import TsParser, find_timestamp
from backline.model import TsQuality

UTC = timezone.utc


@pytest.mark.parametrize("kind,text,expect", [
    ("iso", "2015-10-18 18:01:47,978", datetime(2015, 10, 18, 18, 1, 47, 978000, UTC)),
    ("iso", "2015-10-18T18:01:47.5Z", datetime(2015, 10, 18, 18, 1, 47, 500000, UTC)),
    ("iso", "2015-10-18T20:01:47+02:00", datetime(2015, 10, 18, 18, 1, 47, tzinfo=UTC)),
    ("ymd_dots", "2005-06-03-15.42.50.675872", datetime(2005, 6, 3, 15, 42, 50, 675872, UTC)),
    ("ctime", "Sun Dec 04 04:47:44 2005", datetime(2005, 12, 4, 4, 47, 44, tzinfo=UTC)),
    ("yymmdd", "081109 203615", datetime(2008, 11, 9, 20, 36, 15, tzinfo=UTC)),
    ("slash_ymd", "17/06/09 20:10:40", datetime(2017, 6, 9, 20, 10, 40, tzinfo=UTC)),
    ("clf", "10/Oct/2000:13:55:36 -0700", datetime(2000, 10, 10, 20, 55, 36, tzinfo=UTC)),
    ("epoch", "1117838570", datetime(2005, 6, 3, 22, 42, 50, tzinfo=UTC)),
    ("epoch_ms", "1117838570123", datetime(2005, 6, 3, 22, 42, 50, 123000, UTC)),
    ("ymd_compact", "20171223-22:15:29:606", datetime(2017, 12, 23, 22, 15, 29, 606000, UTC)),
])
def test_exact_shapes(kind, text, expect):
    ts, q = TsParser(UTC).parse(kind, text)
    assert ts == expect and q is TsQuality.EXACT


def test_zone_applies_to_naive_stamps_only():
    p = TsParser(ZoneInfo("Europe/Berlin"))
    assert p.parse("iso", "2024-07-01 12:00:00")[0] == datetime(2024, 7, 1, 10, 0, tzinfo=UTC)
    assert p.parse("iso", "2024-07-01T12:00:00Z")[0] == datetime(2024, 7, 1, 12, 0, tzinfo=UTC)


def test_syslog_year_inferred_and_rolls_over():
    p = TsParser(UTC, default_year=2019)
    a, qa = p.parse("syslog", "Dec 31 23:59:58")
    b, qb = p.parse("syslog", "Jan  1 00:00:02")
    assert (a.year, b.year) == (2019, 2020) and b > a
    assert qa is qb is TsQuality.INFERRED_YEAR


def test_logcat_year_inferred():
    ts, q = TsParser(UTC, default_year=2016).parse("md_dash", "03-17 16:13:38.811")
    assert ts == datetime(2016, 3, 17, 16, 13, 38, 811000, UTC) and q is TsQuality.INFERRED_YEAR


def test_unparsable_is_none():
    assert TsParser(UTC).parse("iso", "2024-13-45 99:99:99") == (None, TsQuality.NONE)
    assert TsParser(UTC).parse("nope", "x") == (None, TsQuality.NONE)


def test_find_timestamp_prefers_earliest():
    assert find_timestamp("2016-09-28 04:30:30, Info CBS x")[0] == "iso"
    assert find_timestamp("Jun 14 15:16:01 combo sshd[1]: x")[0] == "syslog"
    assert find_timestamp("no time here") is None


@pytest.mark.parametrize("kind,text,expect", [
    ("ymd_compact", "20171223-22:16:0:119", datetime(2017, 12, 23, 22, 16, 0, 119000, UTC)),   # unpadded
    ("iso", "2025-12-06 5:46:40.296", datetime(2025, 12, 6, 5, 46, 40, 296000, UTC)),          # %tk hour
    ("iso", "2024-03-01 10:00:00 -0500", datetime(2024, 3, 1, 15, 0, tzinfo=UTC)),
    ("dot_dmy", "06.12.25 05:46:40", datetime(2025, 12, 6, 5, 46, 40, tzinfo=UTC)),
    ("slash_mdy", "12/06/2025 05:46:51 PM", datetime(2025, 12, 6, 17, 46, 51, tzinfo=UTC)),
    ("mon_d_y", "Dec 06, 2025 5:46:40 AM", datetime(2025, 12, 6, 5, 46, 40, tzinfo=UTC)),
    ("mon_d_y", "Dec 06, 2025 12:00:01 AM", datetime(2025, 12, 6, 0, 0, 1, tzinfo=UTC)),
    ("d_mon_y", "07-Dec-2026 11:30:01.123", datetime(2026, 12, 7, 11, 30, 1, 123000, UTC)),
    ("rfc2822", "Mon, 07 Dec 2026 11:30:01 +0100", datetime(2026, 12, 7, 10, 30, 1, tzinfo=UTC)),
    ("epoch", "1765000000.481109", datetime(2025, 12, 6, 5, 46, 40, 481109, UTC)),
    ("epoch_us", "1700000000123456", datetime(2023, 11, 14, 22, 13, 20, 123456, UTC)),
    ("epoch_ns", "1700000000123456789", datetime(2023, 11, 14, 22, 13, 20, 123456, UTC)),
])
def test_variable_width_and_other_shapes(kind, text, expect):
    ts, q = TsParser(UTC).parse(kind, text)
    assert ts == expect and q is TsQuality.EXACT


def test_time_of_day_only_takes_the_file_date_and_rolls_at_midnight():
    from datetime import date
    p = TsParser(UTC, default_date=date(2026, 12, 7))
    a, qa = p.parse("time", "23:59:58.5")
    b, _ = p.parse("time", "00:00:01")
    assert a == datetime(2026, 12, 7, 23, 59, 58, 500000, UTC) and qa is TsQuality.INFERRED
    assert b == datetime(2026, 12, 8, 0, 0, 1, tzinfo=UTC)


@pytest.mark.parametrize("family,texts,kind", [
    ("md_dot", ["10.30 16:49:06", "10.31 01:02:03"], "md_dot"),         # month.day
    ("md_dot", ["30.10 16:49:06", "31.10 01:02:03"], "dm_dot"),         # day.month
    ("md_dot", ["01.02 16:49:06", "01.03 01:02:03", "01.04 00:00:00"], "md_dot"),   # the day varies most
    ("md_dot", ["02.01 16:49:06", "03.01 01:02:03", "04.01 00:00:00"], "dm_dot"),
    ("slash3", ["17/06/09 20:10:40", "17/06/10 20:10:40"], "slash_ymd"),
    ("slash3", ["03/25/2024 10:00:00"], "slash_mdy"),
    ("slash3", ["25/03/2024 10:00:00"], "slash_dmy"),
])
def test_day_month_order_from_the_file(family, texts, kind):
    from backline.analyzers.logs.timestamps import resolve_kind
    assert resolve_kind(family, texts) == kind


def test_time_of_day_inside_a_word_is_not_a_stamp():
    # a file name holding a time stamp before the real one
    hit = find_timestamp("nova-api.log.1.2017-05-16_13:53:08 2017-05-16 00:00:00.008 25746 INFO x")
    assert hit[0] == "iso" and hit[1] == 35


def test_an_ambiguous_day_month_order_reads_as_the_recent_date():
    """A file whose stamps are all of one day (``07/12/2026``) says nothing about its order: read in
    the past year, the more recent date is taken (logs sent to support are days old); old stamps
    keep the family's default (month first); stamps that do say (a day above 12) decide."""
    from datetime import datetime, timedelta, timezone

    from backline.analyzers.logs.timestamps import resolve_kind

    today = datetime.now(timezone.utc).date()
    recent = today - timedelta(days=2)
    if recent.day > 12 or recent.day == recent.month:
        recent = today.replace(day=5) if today.day > 5 else (today.replace(day=1) - timedelta(days=20)).replace(day=5)
    if recent.month == recent.day:
        recent = recent - timedelta(days=1)
    dd_mm = f"{recent.day:02d}/{recent.month:02d}/{recent.year} 18:22:56.495"
    mm_dd = f"{recent.month:02d}/{recent.day:02d}/{recent.year} 08:22:56 PM"
    assert resolve_kind("slash3", [dd_mm]) == "slash_dmy"
    assert resolve_kind("slash3", [mm_dd]) == "slash_mdy"
    assert resolve_kind("slash3", ["07/12/2015 18:22:56"]) == "slash_mdy"            # old: the default
    assert resolve_kind("slash3", ["13/06/2015 10:00:00", "07/06/2015 10:00:00"]) == "slash_dmy"
