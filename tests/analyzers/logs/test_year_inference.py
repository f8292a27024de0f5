"""Year-less time stamps are never inferred into the future.

A stamp without a year (BSD syslog ``Dec 31 23:59:59``) takes its year from the file;
the year must never put an event after the evidence was collected: the file's
modification time (kept by archives and intake), and never after now - give or take
``COLLECTED_SLACK_US`` (26 h: archive times in whole seconds, a host's clock ahead, a
local-time file read as UTC), within which a stamp keeps the collection's year.  Each test
sets the file's mtime and checks every path that reads stamps: the record engine
(``logs.text``), the line engine (``logs templates``) and the Python reader (JSON lines).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from backline.analyzers.logs.mine_file import mine_file
from backline.analyzers.logs.reader import open_log
from backline.analyzers.logs.records import read_records
from backline.analyzers.logs.timestamps import FileClock, TsParser, collected_at

UTC = timezone.utc


def _write(path, lines, mtime: datetime):
    path.write_text("".join(line + "\n" for line in lines))
    ts = mtime.timestamp()
    os.utime(path, (ts, ts))
    return path


def _years(path, tz=UTC):
    return [r.ts for r in read_records(open_log(path), tz) if r.ts is not None]


SPANS_NEW_YEAR = ["Dec 30 22:00:01 host app[1]: starting", "Dec 31 23:59:59 host app[1]: still up",
                  "Jan  1 00:00:01 host app[1]: new year", "Jan  2 10:00:00 host app[1]: error: disk full"]


def test_file_spanning_new_year_collected_in_january(tmp_path):
    collected = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    p = _write(tmp_path / "messages", SPANS_NEW_YEAR, collected)
    got = _years(p)
    assert [t.year for t in got] == [2025, 2025, 2026, 2026]
    assert max(got) <= collected
    assert got == sorted(got)


def test_stamps_after_the_collection_day_go_back_a_year(tmp_path):
    # collected on 7 December: a "Dec 20" stamp cannot be from this December
    collected = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    p = _write(tmp_path / "old.log", ["Dec 20 10:00:00 h a: x", "Dec 21 10:00:00 h a: y"], collected)
    got = _years(p)
    assert [t.year for t in got] == [2025, 2025]


def test_issue_shape_november_to_february_never_reaches_the_future(tmp_path):
    # the shape of the report: a file written Nov..Feb, copied (mtime) in December
    collected = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
    lines = ["Nov 20 08:00:00 h a: begin", "Dec 24 08:00:00 h a: mid", "Feb  3 08:00:00 h a: end"]
    p = _write(tmp_path / "syslog", lines, collected)
    got = _years(p)
    assert max(got) <= collected
    assert [(t.year, t.month) for t in got] == [(2025, 11), (2025, 12), (2026, 2)]


def test_the_same_day_as_collection_keeps_the_year(tmp_path):
    collected = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
    p = _write(tmp_path / "app.log", ["Mar 10 17:59:00 h a: late", "Mar 10 17:59:59 h a: later"], collected)
    assert [t.year for t in _years(p)] == [2026, 2026]


def test_mtime_in_the_future_is_capped_by_now(tmp_path):
    now = datetime.now(UTC)
    p = _write(tmp_path / "x.log", [f"{(now + timedelta(days=20)).strftime('%b %d')} 10:00:00 h a: x"],
               now + timedelta(days=400))
    assert collected_at(str(p)) <= datetime.now(UTC)
    (t,) = _years(p)
    assert t <= datetime.now(UTC)


def test_zone_of_the_file_counts(tmp_path):
    # collected 2026-01-01 00:30 UTC = 2025-12-31 19:30 in New York; with the slack the bound is
    # 2026-01-01 21:30 New York wall time, or 2026-01-02 02:30 read as UTC: a stamp "Jan 1 23:00"
    # is past the bound in New York (so from 2025), within it in UTC (2026)
    collected = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
    p = _write(tmp_path / "ny.log", ["Jan  1 23:00:00 h a: x"], collected)
    (t,) = _years(p, ZoneInfo("America/New_York"))
    assert t.astimezone(ZoneInfo("America/New_York")).year == 2025 and t <= collected
    (t_utc,) = _years(p, UTC)
    assert t_utc == datetime(2026, 1, 1, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize("after", [timedelta(seconds=0.06), timedelta(seconds=2), timedelta(minutes=5),
                                   timedelta(hours=2)])
def test_a_stamp_just_after_the_collection_keeps_its_year(tmp_path, after):
    """Tar keeps a member's time in whole seconds, ZIP in two: the last lines of a log packed at once
    are a fraction of a second 'after' it; a host's clock may run minutes ahead of the packer's; a
    log in UTC+2 local time read as UTC is two hours 'ahead'.  None of them is a year old."""
    collected = datetime(2026, 12, 7, 20, 22, 46, tzinfo=UTC)
    last = collected + after
    lines = [f"{(last - timedelta(seconds=30)).strftime('%b %d %H:%M:%S')} h a: before",
             f"{last.strftime('%b %d %H:%M:%S')}.{last.microsecond:06d} h a: last"]
    p = _write(tmp_path / "x.log", lines, collected)
    got = _years(p)
    assert [t.year for t in got] == [2026, 2026], got
    assert got == sorted(got)


def test_line_engine_templates_are_not_in_the_future(tmp_path):
    collected = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    p = _write(tmp_path / "messages", SPANS_NEW_YEAR * 5, collected)
    mined = mine_file(p)
    lasts = [row[2] for row in mined.rows.values() if row[2] is not None]
    firsts = [row[1] for row in mined.rows.values() if row[1] is not None]
    assert lasts and max(lasts) <= collected
    assert min(firsts).year == 2025


def test_json_lines_reader_is_not_in_the_future(tmp_path):
    collected = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    rows = [{"time": s.split(" host")[0], "level": "info", "msg": "m"} for s in SPANS_NEW_YEAR]
    p = _write(tmp_path / "app.jsonl", [json.dumps(r) for r in rows], collected)
    got = _years(p)
    assert got and max(got) <= collected
    assert [t.year for t in got] == [2025, 2025, 2026, 2026]


@pytest.mark.parametrize("month_day", ["Jan  1", "Jun 15", "Jun 16", "Jun 17", "Dec 31"])
def test_parser_never_returns_a_stamp_after_the_limit(tmp_path, month_day):
    from backline.analyzers.logs.timestamps import COLLECTED_SLACK_US
    collected = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
    bound = collected + timedelta(microseconds=COLLECTED_SLACK_US)
    p = _write(tmp_path / "f.log", [], collected)
    parser = TsParser(UTC, clock=FileClock(str(p)))
    for hms in ("00:00:00", "12:00:00", "12:00:01", "23:59:59"):
        dt, _q = parser.parse("syslog", f"{month_day} {hms}")
        assert dt <= bound
        assert dt > collected - timedelta(days=366)


def test_bundle_member_time_bounds_the_year(tmp_path):
    """In a bundle the file's own mtime is gone (intake writes the bytes into the store
    today): the archive member's time is the bound, carried by intake in ``meta``."""
    import zipfile

    from backline.analyzers.base import AnalysisContext
    from backline.analyzers.logs.text_analyzer import LogsTextAnalyzer
    from backline.evidence import collect
    from backline.storage.blobs import BlobStore

    lines = [ln.replace("app[1]: ", "app[1]: error: ") for ln in SPANS_NEW_YEAR]
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w") as z:
        z.writestr(zipfile.ZipInfo("var/log/messages", date_time=(2025, 1, 5, 12, 0, 0)),
                   "".join(ln + "\n" for ln in lines))
    intake = collect([bundle], tmp_path / "work", store=BlobStore(tmp_path / "store"))
    (art,) = intake.artifacts
    assert art.meta["mtime"].startswith("2025-01-05T12:00:00")
    out = list(LogsTextAnalyzer().analyze(art, AnalysisContext()))
    stamps = sorted(o.ts for o in out if getattr(o, "ts", None) is not None)
    assert stamps, "no events"
    # a bundle packed in January 2025: its events are Dec 2024 .. Jan 2025 (the file's
    # own time, today, would have allowed Dec 2025 .. Jan 2026)
    assert max(stamps) <= datetime(2025, 1, 5, 12, 0, tzinfo=UTC)
    assert min(stamps).year == 2024
