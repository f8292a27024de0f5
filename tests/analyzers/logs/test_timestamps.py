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
    ("bgl", "2005-06-03-15.42.50.675872", datetime(2005, 6, 3, 15, 42, 50, 675872, UTC)),
    ("ctime", "Sun Dec 04 04:47:44 2005", datetime(2005, 12, 4, 4, 47, 44, tzinfo=UTC)),
    ("yymmdd", "081109 203615", datetime(2008, 11, 9, 20, 36, 15, tzinfo=UTC)),
    ("yy_slash", "17/06/09 20:10:40", datetime(2017, 6, 9, 20, 10, 40, tzinfo=UTC)),
    ("clf", "10/Oct/2000:13:55:36 -0700", datetime(2000, 10, 10, 20, 55, 36, tzinfo=UTC)),
    ("epoch", "1117838570", datetime(2005, 6, 3, 22, 42, 50, tzinfo=UTC)),
    ("epoch_ms", "1117838570123", datetime(2005, 6, 3, 22, 42, 50, 123000, UTC)),
    ("compact", "20171223-22:15:29:606", datetime(2017, 12, 23, 22, 15, 29, 606000, UTC)),
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
    ts, q = TsParser(UTC, default_year=2016).parse("logcat", "03-17 16:13:38.811")
    assert ts == datetime(2016, 3, 17, 16, 13, 38, 811000, UTC) and q is TsQuality.INFERRED_YEAR


def test_unparsable_is_none():
    assert TsParser(UTC).parse("iso", "2024-13-45 99:99:99") == (None, TsQuality.NONE)
    assert TsParser(UTC).parse("nope", "x") == (None, TsQuality.NONE)


def test_find_timestamp_prefers_earliest():
    assert find_timestamp("2016-09-28 04:30:30, Info CBS x")[0] == "iso"
    assert find_timestamp("Jun 14 15:16:01 combo sshd[1]: x")[0] == "syslog"
    assert find_timestamp("no time here") is None
